"""«Внешние информационные системы»: validation of the Mango Office entry, its client,
the custom-field lookup («Проверить подключение») and the exchange log writer."""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.inputs import parse_id
from clinic.mango import (
    Clock,
    MangoClient,
    MangoError,
    MangoSettings,
    MissingCustomFieldError,
    TransportError,
)
from clinic.mango.client import Exchange
from clinic.models import ExchangeLogEntry, ExternalSystem, utcnow
from clinic.models.robot import SYSTEM_MANGO

log = logging.getLogger(__name__)

NO_CONNECTION = "Не удалось подключиться к Mango Office: проверьте адрес API и доступ к нему из сети клиники"

# role → (label in the form, default name of the Mango custom field)
FIELD_ROLES: dict[str, tuple[str, str]] = {
    "time": ("Поле «Время»", "Время"),
    "date": ("Поле «Дата»", "Дата"),
    "service": ("Поле «Услуга»", "Услуга"),
    "doctor": ("Поле «Специалист»", "Специалист"),
    "patient": ("Поле «Пациент_ФИО»", "Пациент_ФИО"),
}

LABELS = {
    "name": "Наименование",
    "api_key": "Уникальный код",
    "api_salt": "Ключ авторизации",
    "campaign_id": "ID кампании исходящего обзвона",
    "base_url": "Адрес API",
    "webhook_secret": "Секрет вебхука",
    "webhook_ips": "Разрешённые IP-адреса",
    "digit_status": "Цифра → статус",
    "rate_per_s": "Запросов task/add в секунду",
    **{f"field_{role}": label for role, (label, _) in FIELD_ROLES.items()},
}


class SystemValidationError(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def field_names(system: ExternalSystem) -> dict[str, str]:
    stored: dict[str, str] = json.loads(system.field_names) if system.field_names else {}
    return {role: stored.get(role) or default for role, (_, default) in FIELD_ROLES.items()}


def field_ids(system: ExternalSystem) -> dict[str, int]:
    """role → custom-field id, from the cache written by the last lookup."""
    return {k: int(v) for k, v in json.loads(system.field_ids).items()} if system.field_ids else {}


def parse_digit_status(raw: str) -> dict[str, int]:
    """ "1=1 2=2" → {"1": 1, "2": 2}; raises ValueError with a Russian message."""
    mapping: dict[str, int] = {}
    for part in raw.replace(",", " ").replace(";", " ").split():
        digit, sep, status = part.partition("=")
        if not sep or digit not in "0123456789*#" or len(digit) != 1 or status not in ("1", "2"):
            raise ValueError(
                "Формат: цифра=статус через пробел, статус 1 (подтверждена) или 2 (отменена), "
                "например «1=1 2=2»"
            )
        mapping[digit] = int(status)
    return mapping


def parse_networks(raw: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for part in raw.replace(",", " ").replace(";", " ").split():
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"«{part}» — не IP-адрес и не сеть") from exc
    return nets


def validate_system(data: Mapping[str, Any], existing: ExternalSystem | None) -> dict[str, Any]:
    """Clean the form; every problem as field → Russian message. An empty «Ключ авторизации»
    on an existing entry keeps the stored one (the form never shows it)."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}

    def text(key: str, limit: int = 200) -> str:
        value = str(data.get(key) or "").strip()
        if len(value) > limit:
            errors[key] = f"Не длиннее {limit} символов"
        return value

    clean["name"] = text("name") or "Mango Office"
    clean["is_active"] = str(data.get("is_active", "")).lower() in ("1", "on", "true", "yes")
    # The key and the webhook secret are never shown again: an empty field keeps the stored one.
    clean["api_key"] = text("api_key") or (existing.api_key if existing else "")
    if not clean["api_key"]:
        errors["api_key"] = "Укажите уникальный код (vpbx_api_key из личного кабинета Mango Office)"
    salt = text("api_salt")
    if salt:
        clean["api_salt"] = salt
    elif existing is None or not existing.api_salt:
        errors["api_salt"] = "Укажите ключ авторизации (vpbx_api_salt)"
    campaign = parse_id(text("campaign_id", 20))
    if campaign is None:
        errors["campaign_id"] = "ID кампании — целое положительное число"
    else:
        clean["campaign_id"] = campaign
    base_url = text("base_url", 300) or "https://app.mango-office.ru/vpbx/"
    if not base_url.startswith(("http://", "https://")):
        errors["base_url"] = "Адрес должен начинаться с http:// или https://"
    clean["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
    names = {}
    for role, (_, default) in FIELD_ROLES.items():
        names[role] = text(f"field_{role}", 100) or default
    clean["field_names"] = json.dumps(names, ensure_ascii=False)
    clean["webhook_secret"] = text("webhook_secret") or (existing.webhook_secret if existing else "")
    if str(data.get("webhook_secret_clear") or "") in ("1", "on"):
        clean["webhook_secret"] = ""
    if clean["webhook_secret"] and len(clean["webhook_secret"]) < 16:
        errors["webhook_secret"] = "Секрет — не короче 16 символов"
    clean["webhook_ips"] = text("webhook_ips", 2000)
    try:
        parse_networks(clean["webhook_ips"])
    except ValueError as exc:
        errors["webhook_ips"] = str(exc)
    clean["digit_status"] = text("digit_status", 100) or "1=1 2=2"
    try:
        parse_digit_status(clean["digit_status"])
    except ValueError as exc:
        errors["digit_status"] = str(exc)
    rate = parse_id(text("rate_per_s", 6) or "5")
    if rate is None or rate > 1000:
        errors["rate_per_s"] = "От 1 до 1000"
    else:
        clean["rate_per_s"] = rate
    if errors:
        raise SystemValidationError(errors)
    return clean


def save_system(session: Session, system: ExternalSystem | None, data: Mapping[str, Any]) -> ExternalSystem:
    clean = validate_system(data, system)
    if system is None:
        system = ExternalSystem(kind=SYSTEM_MANGO, field_ids="", last_check_message="")
        session.add(system)
    if system.field_names != clean["field_names"] or system.api_key != clean["api_key"]:
        system.field_ids = ""  # the cache belongs to other names or another account
        system.field_ids_at = None
    for key, value in clean.items():
        setattr(system, key, value)
    session.flush()
    return system


def active_mango(session: Session) -> ExternalSystem | None:
    return session.scalar(
        select(ExternalSystem)
        .where(ExternalSystem.kind == SYSTEM_MANGO, ExternalSystem.is_active.is_(True))
        .order_by(ExternalSystem.id)
    )


# ---------------------------------------------------------------- exchange log


def write_exchange(
    sessions: sessionmaker[Session],
    *,
    direction: str,
    owner: str,
    payload: Any,
    response: Any,
    elapsed_ms: int,
    http_status: int | None,
) -> None:
    """One row in its own transaction, so the log survives whatever the caller does next."""

    def as_text(value: Any) -> str:
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    try:
        with sessions() as session, session.begin():
            session.add(
                ExchangeLogEntry(
                    direction=direction,
                    owner=owner[:100],
                    payload=as_text(payload)[:20000],
                    response=as_text(response)[:20000],
                    elapsed_ms=elapsed_ms,
                    http_status=http_status,
                )
            )
    except Exception:  # the log must never break the exchange itself
        log.exception("журнал обмена: запись не удалась")


def exchange_logger(sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    """An `on_exchange` hook for MangoClient: Exchange (already masked) → exchange log."""

    def record(exchange: Exchange) -> None:
        response = (
            exchange.response if exchange.error is None else f"{exchange.error}: {exchange.response or ''}"
        )
        write_exchange(
            sessions,
            direction="out",
            owner=f"Mango Office {exchange.path}",
            payload=dict(exchange.request),
            response=response,
            elapsed_ms=exchange.elapsed_ms,
            http_status=exchange.http_status,
        )

    return record


class ExchangeBuffer:
    """Exchange-log rows held until the caller's transaction commits them (the export
    commits a batch's states and its log rows together)."""

    def __init__(self) -> None:
        self._rows: list[ExchangeLogEntry] = []

    @property
    def pending(self) -> int:
        return len(self._rows)

    def record(self, exchange: Exchange) -> None:
        response = (
            exchange.response if exchange.error is None else f"{exchange.error}: {exchange.response or ''}"
        )
        self._rows.append(
            ExchangeLogEntry(
                at=utcnow(),
                direction="out",
                owner=f"Mango Office {exchange.path}"[:100],
                payload=json.dumps(dict(exchange.request), ensure_ascii=False)[:20000],
                response=(response or "")[:20000],
                elapsed_ms=exchange.elapsed_ms,
                http_status=exchange.http_status,
            )
        )

    def flush_into(self, session: Session) -> None:
        session.add_all(self._rows)
        self._rows = []


# ---------------------------------------------------------------- client


# Paced 5 % under the configured rate, and never more than the rate in a window 60 ms
# longer than Mango's second (at 50/s that is 47.2/s): Mango's window is unknown, and
# against a strict sliding one, requests that reach it unevenly (30 ms was not enough on a
# loaded machine in bench/mango.py) would earn a 5008 and a back-off.
RATE_MARGIN = 0.95
RATE_GUARD_S = 0.06


@dataclass
class ClientOptions:
    """Test and benchmark hooks: a clock for the client's rate limiter and back-off, an
    httpx transport, and the read timeout."""

    clock: Clock | None = None
    transport: Any = None
    read_timeout: float = 30.0
    max_retries: int = 3
    backoff_base: float = 1.0


def make_client(
    system: ExternalSystem,
    sessions: sessionmaker[Session] | None,
    options: ClientOptions | None = None,
    *,
    on_exchange: Any = None,
) -> MangoClient:
    options = options or ClientOptions()
    settings = MangoSettings(
        api_key=system.api_key,
        api_salt=system.api_salt,
        base_url=system.base_url,
        read_timeout=options.read_timeout,
        rate_limits={"*": max(10.0, float(system.rate_per_s)), "task/add": float(system.rate_per_s)},
        rate_margin=RATE_MARGIN,
        rate_guard=RATE_GUARD_S,
        max_retries=options.max_retries,
        backoff_base=options.backoff_base,
    )
    return MangoClient(
        settings,
        clock=options.clock,
        transport=options.transport,
        on_exchange=on_exchange or (exchange_logger(sessions) if sessions is not None else None),
    )


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


def check_connection(
    session: Session,
    system: ExternalSystem,
    sessions: sessionmaker[Session] | None,
    options: ClientOptions | None = None,
    *,
    client: MangoClient | None = None,
) -> CheckResult:
    """«Проверить подключение»: a signed `custom-type/list`; on success the custom-field
    ids are cached on the entry. The caller commits. `client`: reuse the caller's (its
    rate limiter and exchange log)."""
    names = field_names(system)
    started = time.monotonic()
    try:
        if client is not None:
            ids = client.custom_field_ids(list(names.values()))
        else:
            # an admin is waiting on the button: one attempt, not the export's back-off
            interactive = options or ClientOptions(max_retries=0, read_timeout=10.0)
            with make_client(system, sessions, interactive) as own:
                ids = own.custom_field_ids(list(names.values()))
    except MissingCustomFieldError as exc:
        result = CheckResult(False, "В кампании нет пользовательских полей: " + ", ".join(exc.missing))
    except TransportError as exc:
        log.warning("Mango check: %s", exc.message)
        result = CheckResult(False, NO_CONNECTION)
    except MangoError as exc:
        result = CheckResult(False, f"Mango Office ответил ошибкой {exc.code}: {exc.message}")
    except Exception as exc:  # a bad URL and the like: the admin needs to see it, not a 500
        log.warning("Mango check failed: %r", exc)
        result = CheckResult(False, NO_CONNECTION)
    else:
        by_role = {role: ids[name] for role, name in names.items()}
        system.field_ids = json.dumps(by_role)
        system.field_ids_at = utcnow()
        listing = ", ".join(f"{name} = {ids[name]}" for name in names.values())
        ms = int((time.monotonic() - started) * 1000)
        result = CheckResult(True, f"Подключение установлено ({ms} мс). Поля: {listing}")
    system.last_check_at = utcnow()
    system.last_check_ok = result.ok
    system.last_check_message = result.message
    return result
