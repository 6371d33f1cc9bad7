"""Jinja filters for Russian dates, times and phone numbers."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask

from clinic.phones import display

WEEKDAYS = ("Понедельник", "Вторник", "Среда", "Четверг", "Пятница", "Суббота", "Воскресенье")


def ru_date(value: date | datetime | None) -> str:
    return value.strftime("%d.%m.%Y") if value else ""


def ru_datetime(value: datetime | None) -> str:
    return value.strftime("%d.%m.%Y %H:%M") if value else ""


def hhmm(value: datetime | None) -> str:
    return value.strftime("%H:%M") if value else ""


def weekday(value: date) -> str:
    return WEEKDAYS[value.weekday()]


def age(birth: date | None, today: date | None = None) -> int | None:
    if birth is None:
        return None
    today = today or date.today()
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def years(n: int) -> str:
    """Russian plural: 1 год, 2 года, 5 лет, 11 лет, 21 год."""
    if n % 10 == 1 and n % 100 != 11:
        word = "год"
    elif 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        word = "года"
    else:
        word = "лет"
    return f"{n} {word}"


def init_filters(app: Flask) -> None:
    app.jinja_env.filters.update(
        ru_date=ru_date, ru_datetime=ru_datetime, hhmm=hhmm, weekday=weekday, phone=display, years=years
    )
