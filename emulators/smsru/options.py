"""Everything the sms.ru emulator can be told, at start-up (CLI, create_app) or at run time
(``POST /_emulator/config``). Defaults behave like a healthy real account."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

FAULT_KINDS = ("timeout", "http_status", "api_error", "raw")
FAULT_RATE_KINDS = ("timeout", "http500", "code220", "code500")


@dataclass
class FaultRule:
    """One injected fault for the next `count` requests to `path` ("*" = any API method).

    kinds: ``timeout`` holds the request until released or `hold` seconds pass (after
    processing it when `process`, so the client's timeout hides a real send);
    ``http_status`` answers HTTP `status` with an HTML body; ``api_error`` answers a
    top-level ERROR with `code`; ``raw`` answers `body` verbatim (canned quirks).
    """

    kind: str
    path: str = "*"
    count: int | None = 1  # None: every matching request, until the rules are replaced
    process: bool = True
    status: int | None = None  # http_status: 500 by default; raw: 200
    code: int = 220
    text: str | None = None
    body: str = ""
    content_type: str = "application/json; charset=utf-8"
    hold: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, got {self.kind!r}")
        self.path = self.path.strip("/") or "*"

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """CLI form ``KIND[:PATH[:COUNT]]``, e.g. ``timeout:sms/send:1``, ``api_error:*:3``."""
        kind, _, rest = spec.partition(":")
        path, _, count = rest.partition(":")
        return cls(kind=kind, path=path or "*", count=int(count) if count else 1)

    def matches(self, method: str) -> bool:
        return self.path in ("*", method) and (self.count is None or self.count > 0)


@dataclass
class EmulatorOptions:
    api_id: str = "00000000-0000-0000-0000-000000000000"
    balance: Decimal = Decimal("100")
    price_per_part: Decimal = Decimal("1.50")
    account_number: int = 0  # first half of every sms_id ("%06d-%d")
    senders: list[str] = field(default_factory=lambda: ["Klinika"])
    default_sender: str | None = None  # None: the first approved sender
    daily_limit: int = 1000  # my/limit total_limit; 206 when a send would pass it
    per_number_daily_limit: int | None = 100  # 230
    same_text_per_minute: int | None = None  # 231
    same_text_per_day: int | None = None  # 232
    total_free: int = 5
    russia_only: bool = False  # 214 for numbers outside +7
    global_stoplist: list[str] = field(default_factory=list)  # 215
    no_route_prefixes: list[str] = field(default_factory=list)  # 207
    forbidden_words: list[str] = field(default_factory=list)  # 216
    too_many_mode: str = "207"  # more than 100 numbers: "207" per number, or "213" top-level
    delivery_steps: tuple[float, float, float] = (1.0, 2.0, 2.0)  # 100→101, 101→102, 102→final
    default_outcome: int = 103
    delivery_outcomes: dict[str, int] = field(default_factory=dict)  # phone → final code
    status_times: bool = False  # add send_time/status_time to sms/status entries (§3, unverified)
    clock: str = "real"  # "manual": time moves only by POST /_emulator/advance
    start_time: float | None = None  # manual clock's initial unix time; None: now
    tick_interval: float = 0.2  # real clock: how often delivery and callbacks are pumped
    callback_urls: list[str] = field(default_factory=list)  # registered at start
    callback_format: str = "multipart"  # or "urlencoded" (§10: both are seen)
    callback_timeout: float = 5.0
    callback_retry_delay: float = 60.0  # the real service retries every 60 s …
    callback_backoff: float = 1.0  # … without growing the delay; >1 for exponential backoff
    callback_max_delay: float = 3600.0
    callback_max_age: float = 5 * 86400.0  # … for up to 5 days, then gives up
    callback_max_attempts: int | None = None
    heartbeat_interval: float | None = None  # prepend a "test" record when the last is older
    latency: float = 0.0  # seconds added to every API reply
    timeout_hold: float = 60.0  # how long a "timeout" fault keeps the request
    faults: list[FaultRule] = field(default_factory=list)
    fault_rates: dict[str, float] = field(default_factory=dict)  # random faults, see FAULT_RATE_KINDS
    seed: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.too_many_mode not in ("207", "213"):
            raise ValueError("too_many_mode must be '207' or '213'")
        if self.clock not in ("real", "manual"):
            raise ValueError("clock must be 'real' or 'manual'")
        if self.callback_format not in ("multipart", "urlencoded"):
            raise ValueError("callback_format must be 'multipart' or 'urlencoded'")
        if len(self.delivery_steps) != 3 or any(s < 0 for s in self.delivery_steps):
            raise ValueError("delivery_steps must be three non-negative durations")
        unknown = set(self.fault_rates) - set(FAULT_RATE_KINDS)
        if unknown:
            raise ValueError(f"unknown fault rates {sorted(unknown)}; known: {FAULT_RATE_KINDS}")

    @property
    def account_sender(self) -> str | None:
        return self.default_sender or (self.senders[0] if self.senders else None)

    def public(self) -> dict[str, Any]:
        """The options as JSON-able data, without the api_id."""
        data = dataclasses.asdict(self)
        data.pop("api_id")
        for key in ("balance", "price_per_part"):
            data[key] = str(data[key])
        data["delivery_steps"] = list(self.delivery_steps)
        return data

    def updated(self, changes: Mapping[str, Any]) -> EmulatorOptions:
        """A copy with `changes` applied (JSON types coerced); ValueError on a bad key or value."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown options: {sorted(unknown)}")
        coerced = {key: _coerce(key, value) for key, value in changes.items()}
        return dataclasses.replace(self, **coerced)


def _decimal(value: Any) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return result


def _coerce(key: str, value: Any) -> Any:
    if key in ("balance", "price_per_part"):
        return _decimal(value)
    if key == "faults":
        return [v if isinstance(v, FaultRule) else FaultRule(**v) for v in value or []]
    if key == "delivery_steps":
        return tuple(float(v) for v in value)
    if key == "delivery_outcomes":
        return {str(k): int(v) for k, v in (value or {}).items()}
    if key == "fault_rates":
        return {str(k): float(v) for k, v in (value or {}).items()}
    if key in ("senders", "global_stoplist", "no_route_prefixes", "forbidden_words", "callback_urls"):
        return [str(v) for v in value or []]
    return value
