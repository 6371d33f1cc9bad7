"""One HTTP exchange with sms.ru: POST a form, get JSON, translate transport failures.

The split between :class:`SmsRuConnectError` and :class:`SmsRuTimeout` is the point of this
module: httpx tells us whether the failure happened while connecting (nothing reached
sms.ru, safe to send again) or after the request body went out (sms.ru may have sent the
SMS; the caller's ledger must mark the outcome unknown).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from clinic.smsru.errors import SmsRuBadResponse, SmsRuConnectError, SmsRuError, SmsRuTimeout
from clinic.smsru.masking import mask_payload, mask_text

log = logging.getLogger("clinic.smsru")

USER_AGENT = "mis-telephony-smsru/0.1"

# Failures that happen before any byte of the request reaches sms.ru.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True)
class Exchange:
    """One request/response pair, already masked, for the exchange log (журнал обмена)."""

    method: str
    url: str
    request: dict[str, Any]
    http_status: int | None
    response: str | None
    elapsed: float
    error: str | None
    attempt: int


ExchangeHook = Callable[[Exchange], None]


class Transport:
    def __init__(
        self,
        base_url: str,
        api_id: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        http: httpx.Client | None = None,
        on_exchange: ExchangeHook | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_id = api_id
        self._owns_http = http is None
        # Writing a small form and waiting for a pooled connection get the connect budget.
        timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=connect_timeout, pool=connect_timeout
        )
        self._http = http or httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._timeout = timeout
        self._on_exchange = on_exchange

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def mask(self, text: str) -> str:
        return mask_text(text, self._api_id)

    def post(self, method: str, params: Mapping[str, str], attempt: int = 1) -> Any:
        """POST `params` to `method`; return the decoded JSON or raise a transport error."""
        url = f"{self.base_url}/{method}"
        started = time.monotonic()
        status: int | None = None
        text: str | None = None
        try:
            status, text = self._exchange(method, url, params)
            # The key has no business in a reply; a server echoing it ("wrong api_id X")
            # must not carry it into exception texts, results or the exchange log.
            text = self.mask(text)
            if status != 200:
                # sms.ru answers 200 even for API errors (§1); anything else is a proxy in trouble.
                raise SmsRuBadResponse(
                    f"sms.ru {method}: HTTP {status}; the request may have been processed", method=method
                )
            try:
                # Money stays Decimal from the wire on (see lenient.as_decimal).
                body = json.loads(text, parse_float=Decimal)
            except ValueError:
                raise SmsRuBadResponse(
                    f"sms.ru {method}: reply is not JSON; the request may have been processed", method=method
                ) from None
        except SmsRuError as exc:
            self._record(method, url, params, status, text, started, str(exc), attempt)
            raise
        self._record(method, url, params, status, text, started, None, attempt)
        return body

    def _exchange(self, method: str, url: str, params: Mapping[str, str]) -> tuple[int, str]:
        try:
            response = self._http.post(url, data=dict(params), timeout=self._timeout)
        except _NOT_SENT as exc:
            raise self._error(SmsRuConnectError, method, "could not connect, nothing was sent", exc) from None
        except httpx.TimeoutException as exc:
            raise self._error(
                SmsRuTimeout, method, "no reply in time; sms.ru may have processed the request", exc
            ) from None
        except httpx.TransportError as exc:
            raise self._error(
                SmsRuBadResponse, method, "connection broke; sms.ru may have processed the request", exc
            ) from None
        return response.status_code, response.text

    def _error(self, cls: type[SmsRuError], method: str, what: str, exc: Exception) -> SmsRuError:
        # The httpx exception is not chained: it holds the request, whose body has the api_id.
        detail = self.mask(f"{type(exc).__name__}: {exc}")
        return cls(f"sms.ru {method}: {what} ({detail})", method=method)

    def _record(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        status: int | None,
        text: str | None,
        started: float,
        error: str | None,
        attempt: int,
    ) -> None:
        elapsed = time.monotonic() - started
        if error is None:
            log.debug("sms.ru %s: HTTP %s in %.3f s (attempt %d)", method, status, elapsed, attempt)
        else:
            log.warning("sms.ru %s failed in %.3f s (attempt %d): %s", method, elapsed, attempt, error)
        if self._on_exchange is None:
            return
        record = Exchange(
            method=method,
            url=url,
            request=mask_payload(params, self._api_id),
            http_status=status,
            response=text,
            elapsed=elapsed,
            error=error,
            attempt=attempt,
        )
        try:
            self._on_exchange(record)
        except Exception:  # a broken exchange log must not turn a sent SMS into an error
            log.exception("sms.ru exchange hook failed for %s", method)
