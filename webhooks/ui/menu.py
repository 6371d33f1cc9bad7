"""The top menu. Blueprints add their own entries here instead of editing base.html."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, request

from clinic.models import User


@dataclass(frozen=True)
class MenuItem:
    title: str
    endpoint: str
    admin_only: bool = False

    @property
    def blueprint(self) -> str:
        return self.endpoint.rpartition(".")[0]


def add_menu_item(app: Flask, title: str, endpoint: str, *, admin_only: bool = False) -> None:
    app.extensions.setdefault("mis_menu", []).append(MenuItem(title, endpoint, admin_only))


def visible_menu(user: User | None) -> list[tuple[MenuItem, bool]]:
    """(item, is_current) pairs the user may open; admin pages are hidden from registrars."""
    if user is None:
        return []
    items: list[MenuItem] = current_app.extensions.get("mis_menu", [])
    return [
        (item, item.blueprint == request.blueprint) for item in items if user.is_admin or not item.admin_only
    ]


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
