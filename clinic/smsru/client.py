"""The sms.ru client: one method per API method of smsru.md, typed results, typed errors.

Retries: reads (status, cost, balance, limits, lists, auth check) are repeated on
:class:`SmsRuRetryableError` (codes 220/500, timeouts, connection failures, proxy 5xx)
with exponential backoff, because asking again cannot change anything at sms.ru.
Writes are never repeated here. For ``sms/send`` that is the whole point: after a timeout
the SMS may already be on its way, and only the caller's ledger can decide what to do
(see ``SmsRuError.outcome_unknown``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from clinic.security import mask
from clinic.smsru import replies
from clinic.smsru.batching import MAX_RECIPIENTS
from clinic.smsru.errors import SmsRuRetryableError, TooManyRecipientsError
from clinic.smsru.results import CostResult, DailyLimit, FreeAllowance, SendResult, StatusResult
from clinic.smsru.transport import ExchangeHook, Transport

log = logging.getLogger("clinic.smsru")

DEFAULT_BASE_URL = "https://sms.ru"
TTL_RANGE = range(1, 1441)  # minutes (§2.1)

_T = TypeVar("_T")


@dataclass(frozen=True)
class RetryPolicy:
    """How reads are retried: `attempts` in total, sleeping backoff·2ⁿ (capped) between."""

    attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 5.0

    def delay(self, failed_attempt: int) -> float:
        return min(self.backoff * 2 ** (failed_attempt - 1), self.max_backoff)


def clean_phone(phone: str) -> str:
    """Digits only, as sms.ru's examples send them ("+7 916 123-45-67" → "79161234567")."""
    digits = "".join(ch for ch in str(phone) if ch.isdigit())
    if not digits:
        raise ValueError(f"no digits in phone number {phone!r}")
    return digits


class SmsRuClient:
    """A synchronous sms.ru client. Thread-safe as far as httpx.Client is (it is)."""

    def __init__(
        self,
        api_id: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        test_mode: bool = False,
        default_sender: str | None = None,
        partner_id: str | None = None,
        retry: RetryPolicy | None = None,
        on_exchange: ExchangeHook | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_id:
            raise ValueError("api_id is required")
        self._api_id = api_id
        self.test_mode = test_mode
        self.default_sender = default_sender
        # Never a library author's affiliate id (smsru.md §13): only what the clinic configured.
        self.partner_id = partner_id
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._transport = Transport(
            base_url,
            api_id,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            http=http,
            on_exchange=on_exchange,
        )

    def __repr__(self) -> str:
        return (
            f"SmsRuClient(base_url={self.base_url!r}, api_id={mask(self._api_id)!r}, "
            f"test_mode={self.test_mode})"
        )

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> SmsRuClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending ------------------------------------------------------------------------

    def send(
        self,
        to: str | Iterable[str],
        text: str,
        *,
        sender: str | None = None,
        ttl: int | None = None,
        daytime: bool = False,
        translit: bool = False,
        at: datetime | int | None = None,
        ip: str | None = None,
    ) -> SendResult:
        """Send the same `text` to up to 100 numbers (``sms/send`` with ``to`` + ``msg``).

        Never retried. On :class:`SmsRuError` with ``outcome_unknown`` the SMS may have
        gone out; otherwise sms.ru certainly did not send anything.
        """
        phones = self._phones([to] if isinstance(to, str) else to)
        params = self._params(to=",".join(phones), msg=text)
        self._send_options(params, sender, ttl, daytime, translit, at, ip)
        body = self._transport.post("sms/send", params)
        return replies.parse_send(body, phones, test=self.test_mode)

    def send_each(
        self,
        texts: Mapping[str, str],
        *,
        sender: str | None = None,
        ttl: int | None = None,
        daytime: bool = False,
        translit: bool = False,
        at: datetime | int | None = None,
        ip: str | None = None,
    ) -> SendResult:
        """Send a different text to each of up to 100 numbers (``to[<phone>]=<text>``)."""
        per_phone = self._texts(texts)
        params = self._params(**{f"to[{phone}]": text for phone, text in per_phone.items()})
        self._send_options(params, sender, ttl, daytime, translit, at, ip)
        body = self._transport.post("sms/send", params)
        return replies.parse_send(body, list(per_phone), test=self.test_mode)

    def cost(
        self, to: str | Iterable[str], text: str, *, sender: str | None = None, translit: bool = False
    ) -> CostResult:
        """Price and part count of sending `text` to up to 100 numbers (``sms/cost``)."""
        phones = self._phones([to] if isinstance(to, str) else to)
        params = self._params(to=",".join(phones), msg=text)
        self._cost_options(params, sender, translit)
        return self._read("sms/cost", params, lambda body: replies.parse_cost(body, phones))

    def cost_each(
        self, texts: Mapping[str, str], *, sender: str | None = None, translit: bool = False
    ) -> CostResult:
        per_phone = self._texts(texts)
        params = self._params(**{f"to[{phone}]": text for phone, text in per_phone.items()})
        self._cost_options(params, sender, translit)
        return self._read("sms/cost", params, lambda body: replies.parse_cost(body, list(per_phone)))

    def status(self, sms_ids: str | Iterable[str]) -> StatusResult:
        """Delivery state of up to 100 messages (``sms/status``)."""
        ids = [sms_ids] if isinstance(sms_ids, str) else [i.strip() for i in sms_ids]
        ids = list(dict.fromkeys(i for i in ids if i))
        if not ids:
            raise ValueError("no sms_id given")
        if len(ids) > MAX_RECIPIENTS:
            raise TooManyRecipientsError(
                f"sms.ru takes at most {MAX_RECIPIENTS} ids a request, got {len(ids)}; batch them"
            )
        return self._read("sms/status", self._params(sms_id=",".join(ids)), replies.parse_status)

    # -- account ------------------------------------------------------------------------

    def balance(self) -> Decimal:
        return self._read("my/balance", self._params(), replies.parse_balance)

    def limit(self) -> DailyLimit:
        return self._read("my/limit", self._params(), replies.parse_limit)

    def free(self) -> FreeAllowance:
        return self._read("my/free", self._params(), replies.parse_free)

    def senders(self) -> list[str]:
        return self._read("my/senders", self._params(), replies.parse_senders)

    def auth_check(self) -> None:
        """Return quietly if the api_id is valid; raise SmsRuAuthError (or another) if not."""
        self._read("auth/check", self._params(), lambda body: replies.check_envelope(body, "auth/check"))

    # -- stop list ----------------------------------------------------------------------

    def stoplist_add(self, phone: str, note: str = "") -> None:
        params = self._params(stoplist_phone=clean_phone(phone), stoplist_text=note)
        replies.check_envelope(self._transport.post("stoplist/add", params), "stoplist/add")

    def stoplist_del(self, phone: str) -> None:
        params = self._params(stoplist_phone=clean_phone(phone))
        replies.check_envelope(self._transport.post("stoplist/del", params), "stoplist/del")

    def stoplist_get(self) -> dict[str, str]:
        return self._read("stoplist/get", self._params(), replies.parse_stoplist)

    # -- callbacks ----------------------------------------------------------------------

    def callback_add(self, url: str) -> list[str]:
        """Register a delivery-status handler URL; returns the full list sms.ru now has."""
        body = self._transport.post("callback/add", self._params(url=url))
        return replies.parse_callbacks(body, "callback/add") or []

    def callback_del(self, url: str) -> list[str] | None:
        """Remove a handler; returns the remaining list, or None when the reply omits it
        (the real service does after the last URL is deleted, smsru.md §7)."""
        body = self._transport.post("callback/del", self._params(url=url))
        return replies.parse_callbacks(body, "callback/del")

    def callback_get(self) -> list[str]:
        return self._read(
            "callback/get", self._params(), lambda body: replies.parse_callbacks(body, "callback/get") or []
        )

    # -- plumbing -----------------------------------------------------------------------

    def _params(self, **fields: str) -> dict[str, str]:
        params = {"api_id": self._api_id, "json": "1"}
        if self.partner_id:
            params["partner_id"] = self.partner_id
        params.update(fields)
        return params

    def _phones(self, to: Iterable[str]) -> list[str]:
        # One entry per number: the reply is keyed by number, so duplicates are indistinguishable.
        phones = list(dict.fromkeys(clean_phone(p) for p in to))
        if not phones:
            raise ValueError("no recipients given")
        if len(phones) > MAX_RECIPIENTS:
            raise TooManyRecipientsError(
                f"sms.ru takes at most {MAX_RECIPIENTS} recipients a request, got {len(phones)}; batch them"
            )
        return phones

    def _texts(self, texts: Mapping[str, str]) -> dict[str, str]:
        per_phone = {clean_phone(phone): text for phone, text in texts.items()}
        self._phones(per_phone)
        return per_phone

    def _sender(self, sender: str | None) -> str | None:
        return sender if sender is not None else self.default_sender

    def _cost_options(self, params: dict[str, str], sender: str | None, translit: bool) -> None:
        if chosen := self._sender(sender):
            params["from"] = chosen
        if translit:
            params["translit"] = "1"

    def _send_options(
        self,
        params: dict[str, str],
        sender: str | None,
        ttl: int | None,
        daytime: bool,
        translit: bool,
        at: datetime | int | None,
        ip: str | None,
    ) -> None:
        self._cost_options(params, sender, translit)
        if ttl is not None:
            if ttl not in TTL_RANGE:
                raise ValueError(f"ttl must be 1..1440 minutes, got {ttl}")
            params["ttl"] = str(ttl)
        if daytime:
            params["daytime"] = "1"
        if at is not None:
            if isinstance(at, datetime):
                if at.tzinfo is None:
                    raise ValueError("a send time must carry its time zone")
                at = int(at.timestamp())
            params["time"] = str(int(at))
        if ip:
            params["ip"] = ip
        if self.test_mode:
            params["test"] = "1"

    def _read(self, method: str, params: dict[str, str], parse: Callable[[Any], _T]) -> _T:
        attempts = max(self.retry.attempts, 1)
        for attempt in range(1, attempts + 1):
            try:
                return parse(self._transport.post(method, params, attempt))
            except SmsRuRetryableError as exc:
                if attempt == attempts:
                    raise
                delay = self.retry.delay(attempt)
                log.warning("sms.ru %s: retrying in %.2f s after %s", method, delay, exc)
                self._sleep(delay)
        raise AssertionError("unreachable")  # the loop either returns or raises
