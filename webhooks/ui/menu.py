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
