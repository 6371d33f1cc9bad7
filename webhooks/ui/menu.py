"""The top menu. Blueprints add their own entries here instead of editing base.html."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, request

from clinic.models import User

# Menu groups, in the order they appear; the manual's words («Сервис → Администрирование»).
GROUP_PHONE = "Телефония"
GROUP_SMS = "СМС"
GROUP_ROBOT = "Голосовой робот"
GROUP_ADMIN = "Администрирование"


@dataclass(frozen=True)
class MenuItem:
    title: str
    endpoint: str
    admin_only: bool = False
    group: str = ""  # "" = a top-level link

    @property
    def blueprint(self) -> str:
        return self.endpoint.rpartition(".")[0]


@dataclass(frozen=True)
class MenuEntry:
    """A top-level link (`group` empty, one item) or a drop-down group of links."""

    group: str
    items: list[tuple[MenuItem, bool]]  # (item, is_current)

    @property
    def is_current(self) -> bool:
        return any(current for _, current in self.items)


def add_menu_item(
    app: Flask, title: str, endpoint: str, *, admin_only: bool = False, group: str = ""
) -> None:
    app.extensions.setdefault("mis_menu", []).append(MenuItem(title, endpoint, admin_only, group))


def visible_menu(user: User | None) -> list[MenuEntry]:
    """What the user may open, grouped; admin pages are hidden from registrars."""
    if user is None:
        return []
    entries: list[MenuEntry] = []
    groups: dict[str, MenuEntry] = {}
    for item in current_app.extensions.get("mis_menu", []):
        if item.admin_only and not user.is_admin:
            continue
        pair = (item, item.blueprint == request.blueprint)
        if not item.group:
            entries.append(MenuEntry("", [pair]))
        elif item.group in groups:
            groups[item.group].items.append(pair)
        else:
            groups[item.group] = MenuEntry(item.group, [pair])
            entries.append(groups[item.group])
    # Top-level links first, then the groups in their fixed order (others after, as added).
    order = {"": 0, GROUP_PHONE: 1, GROUP_SMS: 2, GROUP_ROBOT: 3, GROUP_ADMIN: 4}
    return sorted(entries, key=lambda entry: order.get(entry.group, 3))


@dataclass(frozen=True)
class AppointmentAction:
    title: str
    endpoint: str  # takes `appointment_id`; a GET page that shows the action and its result


def add_appointment_action(app: Flask, title: str, endpoint: str) -> None:
    """An entry of the appointment's context menu in the scheduler (right click or «⋯»)."""
    app.extensions.setdefault("mis_appointment_actions", []).append(AppointmentAction(title, endpoint))
    app.jinja_env.globals["appointment_actions"] = _appointment_actions


def _appointment_actions() -> list[AppointmentAction]:
    return current_app.extensions.get("mis_appointment_actions", [])
