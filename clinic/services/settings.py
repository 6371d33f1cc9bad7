"""«ЛПУ → Параметры»: reading, validating and saving the single ClinicSettings row.

Used by the admin page and the REST API alike. `update_settings` takes only the fields it is
given (a PATCH), validates all of them together with the stored values they depend on (the
RTP range, the SIP port against it) and changes nothing unless everything is valid.

The SIP port and the RTP range are also checked against every other port of the installation
(`PortPlan`: ARI, AMI, FastAGI, the web and hooks listeners, the call-control API, a trunk on
the same machine) and against the number of telephony users, so Asterisk is never handed a
configuration that is bound to fail. `check_update` validates without writing: the admin page
asks Asterisk to take the new telephony values first and saves them only when it did.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic.config import Config
from clinic.hosts import is_host
from clinic.models import ClinicSettings, User
from clinic.phones import PhoneError, normalize
from clinic.services import ValidationError, as_text, parse_bool, parse_int

# Tabs of the page, in the order of the original «Элемент справочника» dialog.
REQUISITES_FIELDS = ("name", "full_name", "address", "phone", "timezone")
SERVICE_FIELDS = (
    "sms_api_key",
    "sms_sender",
    "sms_quiet_from",
    "sms_quiet_to",
    "sip_domain",
    "sip_port",
    "rtp_start",
    "rtp_end",
)
SECURITY_FIELDS = ("lockout_enabled", "lockout_attempts", "strong_passwords", "exchange_log_days")
ALL_FIELDS = REQUISITES_FIELDS + SERVICE_FIELDS + SECURITY_FIELDS

# Changing any of these changes what Asterisk must be configured with (pjsip.conf, rtp.conf).
TELEPHONY_FIELDS = frozenset({"sip_domain", "sip_port", "rtp_start", "rtp_end"})

# Set (truthy) together with an empty key to remove the stored SMS key; an empty key alone
# means "keep the stored one", because the page never echoes the key back.
CLEAR_SMS_KEY = "sms_api_key_clear"

LABELS = {
    "name": "Наименование",
    "full_name": "Наименование полное",
    "address": "Адрес",
    "phone": "Телефон",
    "timezone": "Часовой пояс",
    "sms_api_key": "Ключ СМС-шлюза",
    "sms_sender": "Имя отправителя СМС",
    "sms_quiet_from": "Тихие часы с",
    "sms_quiet_to": "Тихие часы до",
    "sip_domain": "Домен SIP",
    "sip_port": "Порт SIP",
    "rtp_start": "RTP с",
    "rtp_end": "RTP по",
    "lockout_enabled": "Блокировать учетные записи пользователей",
    "lockout_attempts": "Количество попыток ввода пароля",
    "strong_passwords": "Требовать строгий пароль",
    "exchange_log_days": "Хранить журнал обмена, дней",
}

# Time zones of Russia, offered first in the page's list; any IANA zone is accepted.
RUSSIAN_TIMEZONES = (
    ("Europe/Kaliningrad", "Калининград (МСК−1)"),
    ("Europe/Moscow", "Москва (МСК)"),
    ("Europe/Samara", "Самара (МСК+1)"),
    ("Asia/Yekaterinburg", "Екатеринбург (МСК+2)"),
    ("Asia/Omsk", "Омск (МСК+3)"),
    ("Asia/Novosibirsk", "Новосибирск (МСК+4)"),
    ("Asia/Krasnoyarsk", "Красноярск (МСК+4)"),
    ("Asia/Irkutsk", "Иркутск (МСК+5)"),
    ("Asia/Yakutsk", "Якутск (МСК+6)"),
    ("Asia/Vladivostok", "Владивосток (МСК+7)"),
    ("Asia/Magadan", "Магадан (МСК+8)"),
    ("Asia/Kamchatka", "Петропавловск-Камчатский (МСК+9)"),
)

LOCKOUT_ATTEMPTS_MAX = 100
EXCHANGE_LOG_DAYS_MAX = 3650
_TEXT_LIMITS = {"name": 200, "full_name": 400, "address": 400}
_SMS_KEY = re.compile(r"[A-Za-z0-9-]{8,128}")
# sms.ru alpha sender: up to 11 characters, Latin letters, digits and a few signs ("company.com").
_SMS_SENDER = re.compile(r"[A-Za-z0-9 .\-_!]{1,11}")

# Asterisk drops root right after start, so it cannot bind the privileged ports below this.
FIRST_UNPRIVILEGED_PORT = 1024
# Each channel takes an even RTP port and the RTCP port after it. A registrar's call has two
# channels (registrar, patient) and a third while transferring or in a conference.
PORTS_PER_CHANNEL = 2
CHANNELS_PER_LINE = 3
MIN_RTP_PORTS = 20
# Ranges offered when the entered one collides with something (the first free one is named).
_SUGGESTED_RTP_STARTS = (10000, 20000, 30000, 40000)


@dataclass(frozen=True)
class PortPlan:
    """What the SIP port and the RTP range must leave alone on this installation."""

    taken: Mapping[int, str] = dataclasses.field(default_factory=dict)  # port → what listens there (Russian)
    lines: int = 0  # telephony users: each may hold a call of its own

    @property
    def rtp_ports_needed(self) -> int:
        return max(MIN_RTP_PORTS, self.lines * CHANNELS_PER_LINE * PORTS_PER_CHANNEL)


@dataclass(frozen=True)
class SettingsUpdate:
    """What `update_settings` changed; `warnings` are advice that did not block saving."""

    changed: frozenset[str]
    warnings: tuple[str, ...] = ()

    @property
    def telephony_changed(self) -> bool:
        return bool(self.changed & TELEPHONY_FIELDS)


def get_settings(session: Session) -> ClinicSettings:
    """The clinic's settings row, created with defaults on first use."""
    row = session.scalars(select(ClinicSettings).order_by(ClinicSettings.id).limit(1)).first()
    if row is None:
        row = ClinicSettings()
        session.add(row)
        session.flush()  # fills the column defaults in

    return row


def read_settings(session: Session) -> ClinicSettings:
    """The settings for reading only: the stored row, or an unsaved one holding the defaults.

    Pages that merely show the clinic's name or use its time zone call this, so a GET never
    inserts the row (two first requests at once would otherwise race to create it).
    """
    row = session.scalars(select(ClinicSettings).order_by(ClinicSettings.id).limit(1)).first()
    if row is not None:
        return row
    defaults = {
        column.key: column.default.arg
        for column in ClinicSettings.__table__.columns
        if column.default is not None and not callable(column.default.arg)
    }
    return ClinicSettings(**defaults)


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _same_machine(config: Config) -> bool:
    """Whether Asterisk runs beside our own processes (their ports then share one machine)."""
    if config.pbx.mode == "local":
        return True
    return _is_loopback(urlsplit(config.pbx.ari_url).hostname or "")


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def port_plan(session: Session, config: Config) -> PortPlan:
    """The ports Asterisk's other listeners and our processes hold, and the telephony users."""
    pbx = config.pbx
    taken: dict[int, str] = {pbx.http_port: "HTTP/ARI Asterisk", pbx.ami_port: "AMI Asterisk"}
    if _same_machine(config):
        taken.setdefault(pbx.agi_port, "FastAGI")
        control_port = urlsplit(pbx.control_url).port
        if control_port:
            taken.setdefault(control_port, "API управления звонками")
        taken.setdefault(config.web_port, "веб-интерфейс")
        taken.setdefault(config.hooks_port, "приём вебхуков Mango Office и sms.ru")
    row = read_settings(session)
    trunk_host = (row.trunk_host or "").strip()
    # A trunk elsewhere listens on its own machine; one on ours shares the ports.
    if trunk_host and (_is_loopback(trunk_host) or trunk_host.lower() == (row.sip_domain or "").lower()):
        taken.setdefault(row.trunk_port, f"транк {trunk_host}:{row.trunk_port}")
    users = session.scalars(select(User).where(User.is_active.is_(True))).all()
    return PortPlan(taken=taken, lines=sum(1 for user in users if user.has_telephony))


def _port(value: object, label: str) -> tuple[int | None, str | None]:
    number = parse_int(value)
    if number is None:
        return None, f"{label}: укажите целое число от 1 до 65535"
    if not 1 <= number <= 65535:
        return None, f"{label}: порт должен быть в диапазоне от 1 до 65535"
    return number, None


def validate_settings(
    current: ClinicSettings, data: Mapping[str, object], plan: PortPlan | None = None
) -> tuple[dict[str, object], list[str]]:
    """Check the given fields; return (clean values to assign, warnings) or raise ValidationError.

    Fields absent from `data` keep their stored values and are not checked on their own,
    but the stored values take part in cross-field rules (RTP range, SIP port). `plan` adds
    the installation's other ports and its number of lines to the SIP/RTP rules.
    """
    clean: dict[str, object] = {}
    errors: dict[str, str] = {}
    warnings: list[str] = []

    for field, limit in _TEXT_LIMITS.items():
        if field in data:
            text = as_text(data[field])
            if field == "name" and not text:
                errors[field] = "Укажите наименование ЛПУ"
            elif len(text) > limit:
                errors[field] = f"{LABELS[field]}: не длиннее {limit} символов"
            else:
                clean[field] = text

    if "phone" in data:
        text = as_text(data["phone"])
        if not text:
            clean["phone"] = ""
        else:
            try:
                clean["phone"] = normalize(text)
            except PhoneError as exc:
                errors["phone"] = str(exc)

    if "timezone" in data:
        text = as_text(data["timezone"])
        if text in _timezones():
            clean["timezone"] = text
        else:
            errors["timezone"] = "Выберите часовой пояс из списка"

    if parse_bool(data.get(CLEAR_SMS_KEY)):
        clean["sms_api_key"] = ""
    elif "sms_api_key" in data:
        key = as_text(data["sms_api_key"])
        if key and not _SMS_KEY.fullmatch(key):
            errors["sms_api_key"] = (
                "Ключ СМС-шлюза: от 8 до 128 символов — латинские буквы, цифры и дефис "
                "(скопируйте «Ваш api_id» из личного кабинета sms.ru)"
            )
        elif key:
            clean["sms_api_key"] = key

    if "sms_sender" in data:
        sender = as_text(data["sms_sender"])
        if sender and not (_SMS_SENDER.fullmatch(sender) and re.search(r"[A-Za-z]", sender)):
            errors["sms_sender"] = (
                "Имя отправителя: до 11 символов — латинские буквы (хотя бы одна), цифры, "
                "пробел и знаки . - _ !"
            )
        else:
            clean["sms_sender"] = sender

    for field in ("sms_quiet_from", "sms_quiet_to"):
        if field in data and as_text(data[field]) != "":  # empty: keep the stored hour
            hour = parse_int(data[field])
            if hour is None or not 0 <= hour <= 23:
                errors[field] = f"{LABELS[field]}: час от 0 до 23 (одинаковые значения — без тихих часов)"
            else:
                clean[field] = hour

    if "sip_domain" in data:
        domain = as_text(data["sip_domain"])
        if not domain:
            errors["sip_domain"] = "Укажите домен SIP: адрес машины, где установлена телефония"
        elif not is_host(domain):
            errors["sip_domain"] = (
                "Домен SIP: укажите имя хоста латинскими буквами (например, pbx.clinic.ru) или IP-адрес"
            )
        else:
            clean["sip_domain"] = domain.lower()

    _check_ports(current, data, plan or PortPlan(), clean, errors, warnings)

    for field in ("lockout_enabled", "strong_passwords"):
        if field in data:
            flag = parse_bool(data[field])
            if flag is None:
                errors[field] = f"{LABELS[field]}: некорректное значение"
            else:
                clean[field] = flag

    if "lockout_attempts" in data:
        attempts = parse_int(data["lockout_attempts"])
        if attempts is None or not 1 <= attempts <= LOCKOUT_ATTEMPTS_MAX:
            errors["lockout_attempts"] = (
                f"Количество попыток ввода пароля: целое число от 1 до {LOCKOUT_ATTEMPTS_MAX}"
            )
        else:
            clean["lockout_attempts"] = attempts

    if "exchange_log_days" in data:
        days = parse_int(data["exchange_log_days"])
        if days is None or not 0 <= days <= EXCHANGE_LOG_DAYS_MAX:
            errors["exchange_log_days"] = (
                f"Хранить журнал обмена: от 0 (бессрочно) до {EXCHANGE_LOG_DAYS_MAX} дней"
            )
        else:
            clean["exchange_log_days"] = days

    if errors:
        raise ValidationError(errors)
    return clean, warnings


def _check_ports(
    current: ClinicSettings,
    data: Mapping[str, object],
    plan: PortPlan,
    clean: dict[str, object],
    errors: dict[str, str],
    warnings: list[str],
) -> None:
    """SIP port and RTP range: each a valid unprivileged port, apart from each other and from
    every port in `plan`, the range wide enough for the clinic's lines. The first problem of
    a field is the one reported."""
    ports: dict[str, int | None] = {}
    for name in ("sip_port", "rtp_start", "rtp_end"):
        if name in data:
            number, error = _port(data[name], LABELS[name])
            if error:
                errors[name] = error
            else:
                clean[name] = number
            ports[name] = number
        else:
            ports[name] = getattr(current, name)
    start, end, sip_port = ports["rtp_start"], ports["rtp_end"], ports["sip_port"]
    if sip_port is not None:
        _check_sip_port(sip_port, plan, errors)
    if start is None or end is None:
        return
    if start >= end:
        errors.setdefault("rtp_end", "RTP: порт «по» должен быть больше порта «с»")
        return
    if start < FIRST_UNPRIVILEGED_PORT:
        errors.setdefault("rtp_start", _privileged("RTP с", start))
        return
    if sip_port is not None and start <= sip_port <= end:
        errors.setdefault("sip_port", f"Порт SIP {sip_port} не должен попадать в диапазон RTP {start}–{end}")
    _check_rtp_range(start, end, sip_port, plan, errors)
    if "rtp_start" in clean and start % 2 and "rtp_start" not in errors:
        warnings.append(
            "RTP с: рекомендуется чётный номер порта (RTP занимает чётные порты, RTCP — нечётные)"
        )


def _privileged(label: str, port: int) -> str:
    return (
        f"{label}: порт {port} ниже {FIRST_UNPRIVILEGED_PORT} — такие порты может открыть только root, "
        "а Asterisk работает от своего пользователя; выберите порт от 1024 (для SIP обычно 5060)"
    )


def _check_sip_port(sip_port: int, plan: PortPlan, errors: dict[str, str]) -> None:
    if sip_port < FIRST_UNPRIVILEGED_PORT:
        errors.setdefault("sip_port", _privileged("Порт SIP", sip_port))
    elif sip_port in plan.taken:
        errors.setdefault("sip_port", f"Порт SIP {sip_port} уже занят: {plan.taken[sip_port]}")


def _check_rtp_range(
    start: int, end: int, sip_port: int | None, plan: PortPlan, errors: dict[str, str]
) -> None:
    inside = sorted(port for port in plan.taken if start <= port <= end)
    if inside:
        what = ", ".join(f"{port} ({plan.taken[port]})" for port in inside)
        ports = "занятый порт" if len(inside) == 1 else "занятые порты"
        errors.setdefault(
            "rtp_start", f"Диапазон RTP {start}–{end} включает {ports} {what}{_suggestion(plan, sip_port)}"
        )
        return
    size, needed = end - start + 1, plan.rtp_ports_needed
    if size < needed:
        errors.setdefault(
            "rtp_end",
            f"Диапазон RTP {start}–{end} мал: {size} портов, а нужно не меньше {needed} "
            f"(абонентов телефонии: {plan.lines}; на линию — {CHANNELS_PER_LINE} канала разговора "
            f"с переводом, по {PORTS_PER_CHANNEL} порта на канал){_suggestion(plan, sip_port)}",
        )


def _suggestion(plan: PortPlan, sip_port: int | None) -> str:
    """«, например 10000–10999»: the first usual range clear of every port in use."""
    size = max(1000, plan.rtp_ports_needed)
    for start in _SUGGESTED_RTP_STARTS:
        end = start + size - 1
        busy = set(plan.taken) | ({sip_port} if sip_port is not None else set())
        if end <= 65535 and not any(start <= port <= end for port in busy):
            return f": выберите другой диапазон, например {start}–{end}"
    return ": выберите другой диапазон"


@dataclass(frozen=True)
class SettingsChange:
    """A validated change not yet written: the clean values and what they would change."""

    clean: dict[str, object]
    changed: frozenset[str]
    warnings: tuple[str, ...] = ()

    @property
    def telephony(self) -> dict[str, object]:
        """The changed fields Asterisk's configuration is made of."""
        return {name: self.clean[name] for name in sorted(self.changed & TELEPHONY_FIELDS)}


def check_update(
    session: Session, data: Mapping[str, object], plan: PortPlan | None = None
) -> SettingsChange:
    """Validate the given fields against the stored row (or the defaults); nothing is
    written, so the PBX can be asked first. Raises ValidationError."""
    row = read_settings(session)
    clean, warnings = validate_settings(row, data, plan)
    changed = frozenset(name for name, value in clean.items() if getattr(row, name) != value)
    return SettingsChange(clean=clean, changed=changed, warnings=tuple(warnings))


def save_change(session: Session, change: SettingsChange) -> SettingsUpdate:
    """Write a change `check_update` accepted (flushed, not committed)."""
    row = get_settings(session)
    changed = frozenset(name for name in change.clean if getattr(row, name) != change.clean[name])
    for name in changed:
        setattr(row, name, change.clean[name])
    session.flush()
    return SettingsUpdate(changed=changed, warnings=change.warnings)


def update_settings(
    session: Session, data: Mapping[str, object], plan: PortPlan | None = None
) -> SettingsUpdate:
    """Validate and apply the given fields to the settings row (flushed, not committed)."""
    return save_change(session, check_update(session, data, plan))
