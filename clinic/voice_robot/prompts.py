"""The robot's words, in Russian, as the TTS reads them (times and dates spelled so the
synthesizer says them naturally)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

MONTHS = (
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
)
MENU = "Нажмите 1, чтобы подтвердить запись. 2 — чтобы отменить. 0 — чтобы соединиться с регистратором."
INBOUND_MENU = (
    "Нажмите 1, чтобы подтвердить запись, 2 — чтобы отменить. "
    "Чтобы поговорить с регистратором, нажмите 0 или оставайтесь на линии."
)
CONFIRMED = "Спасибо! Запись подтверждена. До свидания."
CANCELLED = "Запись отменена. Спасибо, до свидания."
STALE = "Ваша запись уже изменена. Уточните её, пожалуйста, у регистратора. До свидания."
UNKNOWN_DIGIT = "Такой клавиши нет в меню."
OPERATOR = "Соединяю с регистратором. Пожалуйста, оставайтесь на линии."
GENERIC = (
    "Здравствуйте! Вас беспокоит клиника. Напоминаем о вашей записи на приём. "
    "Нажмите 1, чтобы подтвердить запись. 2 — чтобы отменить. 0 — чтобы соединиться с регистратором."
)
GENERIC_INBOUND = (
    "Здравствуйте! У вас есть запись на приём. Нажмите 1, чтобы подтвердить её, 2 — чтобы отменить. "
    "Чтобы поговорить с регистратором, нажмите 0 или оставайтесь на линии."
)


@dataclass(frozen=True)
class Visit:
    starts_at: datetime  # clinic wall clock
    doctor: str  # full name
    specialty: str
    service: str


def _when(starts_at: datetime, today: date) -> str:
    day = starts_at.date()
    said = f"{day.day} {MONTHS[day.month - 1]}"
    if (day - today).days == 1:
        said = f"завтра, {said},"
    elif day == today:
        said = f"сегодня, {said},"
    minutes = f" {starts_at.minute:02d}" if starts_at.minute else " ровно"
    return f"{said} в {starts_at.hour}{minutes}"


def visit_sentence(visit: Visit, today: date) -> str:
    who = f"{visit.specialty} {visit.doctor}".strip() if visit.specialty else visit.doctor
    text = f"{_when(visit.starts_at, today)}, приём у врача: {who}"
    if visit.service:
        text += f", услуга: {visit.service}"
    return text + "."


def outbound(greeting: str, visits: list[Visit], today: date) -> str:
    lead = "У вас запись" if len(visits) == 1 else "У вас записи"
    body = " ".join(visit_sentence(v, today) for v in visits)
    return f"{greeting.strip()} {lead}: {body} {MENU}".strip()


def inbound(visits: list[Visit], today: date) -> str:
    lead = "У вас запись" if len(visits) == 1 else "У вас записи"
    body = " ".join(visit_sentence(v, today) for v in visits)
    return f"Здравствуйте! {lead}: {body} {INBOUND_MENU}"


def sms_text(clinic: str, visits: list[Visit], clinic_phone: str) -> str:
    parts = [f"{v.starts_at:%d.%m %H:%M} — {v.doctor}" for v in visits]
    text = f"{clinic + ': ' if clinic else ''}не дозвонились до вас. Вы записаны: {'; '.join(parts)}."
    if clinic_phone:
        text += f" Подтвердите или отмените запись по тел. {clinic_phone}"
    return text
