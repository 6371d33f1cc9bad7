"""Who may get an SMS and when: phone and text checks, our stop list, consent, quiet hours
in the clinic's time zone, and the ttl that keeps a reminder from arriving after the visit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.clock import as_aware, zone_named
from clinic.models import ClinicSettings, Patient, SmsStopEntry
from clinic.phones import PhoneError, normalize
from clinic.services import ValidationError
from clinic.smsru.parts import MAX_PARTS, count_parts, max_length

MAX_TTL_MIN = 1440  # sms.ru accepts 1..1440 minutes


def sms_phone(raw: str | None, field: str = "phone") -> str:
    """The number as sms.ru wants it (digits of E.164, e.g. 79161234567), or ValidationError."""
    try:
        e164 = normalize(raw or "")
    except PhoneError as exc:
        raise ValidationError({field: str(exc)}) from None
    return e164.lstrip("+")


def text_problem(text: str) -> str | None:
    """A Russian reason the text cannot be sent, or None."""
    if not text or not text.strip():
        return "Текст сообщения пуст"
    parts = count_parts(text)
    if parts.too_long:
        return (
            f"Текст слишком длинный: {len(text)} символов, {parts.parts} частей СМС; допускается "
            f"не более {MAX_PARTS} частей ({max_length('ucs2')} символов кириллицей, "
            f"{max_length('gsm7')} латиницей)"
        )
    return None


def check_text(text: str, field: str = "text") -> None:
    problem = text_problem(text)
    if problem:
        raise ValidationError({field: problem})


def zone(settings: ClinicSettings) -> ZoneInfo:
    return zone_named(settings.timezone)


def quiet_until(settings: ClinicSettings, now: datetime) -> datetime | None:
    """If `now` (aware) falls in the clinic's quiet hours, the aware UTC moment they end."""
    start, end = settings.sms_quiet_from, settings.sms_quiet_to
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone(settings))
    hour = local.hour
    inside = start <= hour < end if start < end else (hour >= start or hour < end)
    if not inside:
        return None
    day = local.date() if hour < end else local.date() + timedelta(days=1)
    ends = datetime(day.year, day.month, day.day, end, tzinfo=zone(settings))
    return ends.astimezone(UTC)


def visit_moment(settings: ClinicSettings, starts_at: datetime) -> datetime:
    """An appointment's naive clinic-local start as an aware UTC moment."""
    return starts_at.replace(tzinfo=zone(settings)).astimezone(UTC)


def ttl_minutes(expires_at: datetime | None, now: datetime) -> int | None:
    """Minutes sms.ru may keep trying: never past the visit, at most a day. None: no limit;
    0: already too late."""
    if expires_at is None:
        return None
    left = int((as_aware(expires_at) - now).total_seconds() // 60)
    return max(0, min(MAX_TTL_MIN, left))


def stop_reason(session: Session, phone: str, patient: Patient | None) -> str | None:
    """Why this number/patient must not get an SMS, or None."""
    if session.scalar(select(SmsStopEntry.id).where(SmsStopEntry.phone == phone)) is not None:
        return "Номер в стоп-листе клиники"
    if patient is not None and not patient.consent_sms:
        return "Пациент не дал согласия на СМС"
    return None
