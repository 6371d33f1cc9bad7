"""The own robot's settings: read (defaults when never saved) and saved with checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.models.voice_robot import VoiceRobotSettings
from clinic.services import ValidationError

INT_FIELDS: dict[str, tuple[str, int, int]] = {
    # field: (label, min, max)
    "trunk_channels": ("Линий транка всего", 2, 500),
    "robot_channels": ("Линий для робота", 1, 499),
    "retries": ("Повторных звонков", 0, 10),
    "retry_minutes": ("Повтор через, мин", 1, 1440),
    "ring_seconds": ("Ждать ответа, с", 10, 120),
    "dtmf_seconds": ("Ждать нажатия клавиши, с", 3, 60),
    "sms_wait_minutes": ("Ждать ответа на СМС, мин", 1, 2880),
}


def defaults() -> VoiceRobotSettings:
    row = VoiceRobotSettings()
    for column in VoiceRobotSettings.__table__.columns:
        if column.default is not None and getattr(row, column.key) is None:
            setattr(row, column.key, column.default.arg)
    return row


def read(session: Session) -> VoiceRobotSettings:
    """The stored row, or an unsaved one with the defaults (a GET never inserts it)."""
    row = session.scalars(select(VoiceRobotSettings).order_by(VoiceRobotSettings.id).limit(1)).first()
    return row if row is not None else defaults()


def _hhmm(value: str) -> int | None:
    try:
        hours, minutes = value.strip().split(":")
        h, m = int(hours), int(minutes)
    except ValueError:
        return None
    return h * 60 + m if 0 <= h < 24 and 0 <= m < 60 and len(minutes) == 2 else None


def minutes_of(value: str) -> int:
    found = _hhmm(value)
    return 0 if found is None else found


def save(session: Session, data: Mapping[str, Any]) -> VoiceRobotSettings:
    """Check everything first (Russian messages per field), then write; the caller commits."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, (label, low, high) in INT_FIELDS.items():
        raw = str(data.get(name, "")).strip()
        if not raw.isdigit() or not low <= int(raw) <= high:
            errors[name] = f"«{label}»: целое число от {low} до {high}"
        else:
            clean[name] = int(raw)
    if (
        "trunk_channels" in clean
        and "robot_channels" in clean
        and (clean["robot_channels"] > clean["trunk_channels"] - 1)
    ):
        errors["robot_channels"] = (
            "Роботу — не больше линий транка минус одна: хотя бы одна остаётся регистраторам"
        )
    for name, label in (("hours_from", "Звонить с"), ("hours_to", "Звонить до")):
        raw = str(data.get(name, "")).strip()
        if _hhmm(raw) is None:
            errors[name] = f"«{label}»: время в виде ЧЧ:ММ"
        else:
            clean[name] = raw
    if (
        "hours_from" in clean
        and "hours_to" in clean
        and _hhmm(clean["hours_from"]) >= _hhmm(clean["hours_to"])
    ):  # type: ignore[operator]
        errors["hours_to"] = "«Звонить до» должно быть позже «Звонить с»"
    greeting = str(data.get("greeting", "")).strip()
    if len(greeting) > 300:
        errors["greeting"] = "Приветствие — не длиннее 300 символов"
    clean["greeting"] = greeting
    for flag in ("send_sms", "inbound_confirm"):
        clean[flag] = str(data.get(flag, "")).lower() in ("1", "on", "true", "yes")
    if errors:
        raise ValidationError(errors)
    row = session.scalars(select(VoiceRobotSettings).order_by(VoiceRobotSettings.id).limit(1)).first()
    if row is None:
        row = VoiceRobotSettings()
        session.add(row)
    for key, value in clean.items():
        setattr(row, key, value)
    session.flush()
    return row
