"""HTTP client for the Mango Office VPBX outbound-campaign methods (reference/mango.md).

Retry policy, and why:

* 429 / 5008 (rate limit): Mango refused the request without processing it, so every
  method is repeated after a back-off (API §1.4.4 "сделайте паузу").
* The connection could not be opened: nothing reached Mango; every method is repeated.
* The request went out and no answer came back (read timeout, dropped connection):
  read-only methods are repeated; task/add, tasks/push and task/delete are not, because
  Mango may already have acted. They raise OutcomeUnknownError and the caller decides.
* Any other result code is raised at once as its typed error.

Back-off sleeps on the client's clock, so tests inject a ManualClock and never wait.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .clock import Clock, SystemClock
from .errors import (
    HTTP_RATE_LIMIT,
    SERVICE_UNAVAILABLE,
    AccessBlockedError,
    BadResponseError,
    CampaignError,
    MangoError,
    OutcomeUnknownError,
    RateLimitError,
    ServerError,
    TransportError,
    error_for,
    is_success,
)
from .masking import mask_form, redact
from .models import CLINIC_FIELD_NAMES, CampaignReport, CustomField, Task
from .ratelimit import DEFAULT_LIMITS, RateLimiter
from .signing import signed_form

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://app.mango-office.ru/vpbx/"


@dataclass(frozen=True)
class MangoSettings:
    """Connection settings. In the clinic's terms `api_key` is «уникальный код» and
    `api_salt` is «ключ авторизации» (mango.md §0); neither appears in repr()."""

    api_key: str = field(repr=False)
    api_salt: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    # Requests per second per path ("*" = all requests); None turns client throttling off.
    rate_limits: Mapping[str, float] | None = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    rate_margin: float = 1.0  # pace at this fraction of rate_limits
    rate_guard: float = 0.0  # seconds added to the one-second window the client counts in
    max_retries: int = 3  # extra attempts after a rate-limit answer or a safe failure
    backoff_base: float = 1.0  # seconds; doubles on each retry
    backoff_max: float = 30.0


@dataclass(frozen=True)
class Exchange:
    """One HTTP round trip, secrets masked, for the exchange log (журнал обмена)."""

    path: str
    request: Mapping[str, str]
    http_status: int | None
    response: str | None
    elapsed_ms: int
    error: str | None = None


class MissingCustomFieldError(LookupError):
    """The campaign's product lacks custom fields the robot text needs."""

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing = tuple(missing)
        super().__init__("Mango custom fields not found: " + ", ".join(self.missing))


def tls12_context() -> ssl.SSLContext:
    """Mango accepts TLS 1.2 only ("не поддерживается протокол TLS версий 1.0, 1.1, 1.3")."""
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _normalise_name(name: str) -> str:
    return " ".join(name.split()).casefold()


def _result_code(value: Any) -> int | None:
    # Some Mango answers carry the code as a string ("result":"1000" in API §3.2.1).
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


class MangoClient:
    """Signed calls to `<base_url><path>`; thread-safe (httpx.Client and the limiter are)."""

    def __init__(
        self,
        settings: MangoSettings,
        *,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
        on_exchange: Callable[[Exchange], None] | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock or SystemClock()
        self._on_exchange = on_exchange
        self._limiter = (
            RateLimiter(
                settings.rate_limits, self._clock, margin=settings.rate_margin, guard=settings.rate_guard
            )
            if settings.rate_limits is not None
            else None
        )
        base = settings.base_url if settings.base_url.endswith("/") else settings.base_url + "/"
        self._base_url = base
        self._http = httpx.Client(
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.connect_timeout,
            ),
            verify=tls12_context() if base.startswith("https:") else True,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MangoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the documented methods -------------------------------------------------------

    def custom_fields(self) -> list[CustomField]:
        """POST custom-type/list (API §4.6.20): the product's custom fields."""
        body = self.request("custom-type/list", {}, repeatable=True)
        items = body.get("result")
        if not isinstance(items, list):
            raise BadResponseError(0, "custom-type/list: no list in 'result'", path="custom-type/list")
        return [CustomField.from_json(item) for item in items]

    def custom_field_ids(self, names: Iterable[str] = CLINIC_FIELD_NAMES) -> dict[str, int]:
        """Map each wanted field name to its numeric id; tasks must use the ids.

        Names match ignoring case and extra spaces, since they are typed by hand in the
        Mango UI. Raises MissingCustomFieldError naming every field that is absent.
        """
        by_name = {_normalise_name(f.name): f.id for f in self.custom_fields()}
        wanted = list(names)
        missing = [n for n in wanted if _normalise_name(n) not in by_name]
        if missing:
            raise MissingCustomFieldError(missing)
        return {n: by_name[_normalise_name(n)] for n in wanted}

    def add_task(self, campaign_id: int, task: Task) -> int:
        """POST task/add (API §4.6.8): one task, synchronously; returns Mango's task_id.

        Works only in an unfinished endless campaign (else CampaignStateError). Never
        repeated after a lost answer: raises OutcomeUnknownError instead.
        """
        payload = {"campaign_id": campaign_id, **task.to_json()}
        body = self.request("task/add", payload, repeatable=False)
        task_id = _result_code(body.get("task_id"))
        if task_id is None:
            # Accepted (1000) but no id: the task exists and we cannot name it.
            raise BadResponseError(1000, "task/add accepted without a task_id", path="task/add")
        return task_id

    def push_tasks(self, campaign_id: int, tasks: Sequence[Task]) -> None:
        """POST tasks/push (API §4.6.7): many tasks, asynchronously; no ids come back."""
        if not tasks:
            raise ValueError("push_tasks needs at least one task")
        payload = {"campaign_id": campaign_id, "tasks": [t.to_json() for t in tasks]}
        self.request("tasks/push", payload, repeatable=False)

    def delete_task(self, campaign_id: int, task_id: int) -> None:
        """POST task/delete (API §4.6.16), e.g. when the appointment was cancelled first."""
        self.request("task/delete", {"campaign_id": campaign_id, "task_id": task_id}, repeatable=False)

    def campaign_report(self, campaign_id: int) -> CampaignReport:
        """POST campaign-report/create (API §4.6.12): attempts per task, with the digit
        pressed and the transcribed answer. Despite its name it returns the data at once."""
        body = self.request("campaign-report/create", {"campaign_id": campaign_id}, repeatable=True)
        data = body.get("data")
        if not isinstance(data, dict):
            raise BadResponseError(0, "no 'data' object in the report", path="campaign-report/create")
        return CampaignReport.from_json(data)

    # ---- transport ----------------------------------------------------------------------

    def request(self, path: str, payload: Any, *, repeatable: bool) -> dict[str, Any]:
        """Sign and POST `payload` to `path`; return the decoded success body.

        `repeatable` says whether the call may be sent again after its answer was lost.
        """
        path = path.strip("/")
        s = self.settings
        form = signed_form(s.api_key, s.api_salt, payload)
        attempt = 0
        while True:
            if self._limiter is not None:
                self._limiter.acquire(path)
            try:
                return self._send_once(path, form, repeatable=repeatable)
            except RateLimitError as err:
                if attempt >= s.max_retries:
                    raise
                self._back_off(path, attempt, err.retry_after, err)
            except TransportError as err:
                if isinstance(err, OutcomeUnknownError) or attempt >= s.max_retries:
                    raise
                self._back_off(path, attempt, None, err)
            except ServerError as err:
                # A generic 5xxx on a read is worth another try; campaign rules (51xx) are not.
                if not repeatable or isinstance(err, CampaignError) or attempt >= s.max_retries:
                    raise
                self._back_off(path, attempt, None, err)
            attempt += 1

    def _back_off(self, path: str, attempt: int, retry_after: float | None, err: MangoError) -> None:
        s = self.settings
        delay = min(s.backoff_max, s.backoff_base * (2**attempt))
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.backoff_max))
        log.warning("mango %s: %s; retry %d in %.1f s", path, err, attempt + 1, delay)
        self._clock.sleep(delay)

    def _send_once(self, path: str, form: dict[str, str], *, repeatable: bool) -> dict[str, Any]:
        s = self.settings
        started = time.perf_counter()
        if self._limiter is not None:
            self._limiter.mark_sent()
        try:
            response = self._http.post(self._base_url + path, data=form)
        except httpx.HTTPError as exc:
            elapsed = int((time.perf_counter() - started) * 1000)
            sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
            what = f"{type(exc).__name__}: {redact(str(exc), s.api_key, s.api_salt)}"
            self._record(Exchange(path, mask_form(form, s.api_key, s.api_salt), None, None, elapsed, what))
            log.warning("mango %s: no answer (%s) after %d ms", path, what, elapsed)
            if isinstance(exc, httpx.UnsupportedProtocol):
                raise TransportError(what, path=path, sent=False) from None
            if sent and not repeatable:
                raise OutcomeUnknownError(
                    f"request sent, no answer ({what}); Mango may have acted on it", path=path
                ) from None
            raise TransportError(what, path=path, sent=sent) from None
        elapsed = int((time.perf_counter() - started) * 1000)
        text = redact(response.text, s.api_key, s.api_salt)
        self._record(
            Exchange(path, mask_form(form, s.api_key, s.api_salt), response.status_code, text, elapsed)
        )
        body = self._parse(path, response, text)
        log.info("mango %s: ok in %d ms", path, elapsed)
        return body

    def _record(self, exchange: Exchange) -> None:
        if self._on_exchange is None:
            return
        try:
            self._on_exchange(exchange)
        except Exception:
            # A broken exchange-log writer must not turn a delivered task into a failure
            # (the caller would then re-send it); it is reported and the call goes on.
            log.exception("mango exchange-log callback failed for %s", exchange.path)

    def _parse(self, path: str, response: httpx.Response, text: str) -> dict[str, Any]:
        status = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        message = ""
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            message = redact(body["message"], self.settings.api_key, self.settings.api_salt)

        # VPBX rate limit: HTTP 429 and {"status":429,"message":"Rate limit exceeded."}.
        if status == HTTP_RATE_LIMIT or (isinstance(body, dict) and _result_code(body.get("status")) == 429):
            raise error_for(
                HTTP_RATE_LIMIT, message, path=path, http_status=status, retry_after=_retry_after(response)
            )
        if status == 401:
            raise AccessBlockedError(
                401, message or "access blocked after bad requests", path=path, http_status=status
            )
        if isinstance(body, dict):
            code = _result_code(body.get("result"))
            if code is not None:
                if is_success(code):
                    return body
                raise error_for(
                    code, message, path=path, http_status=status, retry_after=_retry_after(response)
                )
            # custom-type/list answers {"result":[...],"status":200} (API §4.6.20), so its
            # code sits in "status"; an error there may well come the same way.
            status_code = _result_code(body.get("status"))
            if status_code is not None and status_code >= 1000 and not is_success(status_code):
                raise error_for(status_code, message, path=path, http_status=status)
            if isinstance(body.get("result"), list) and 200 <= status < 300:
                return body
        if status == 503:
            # "Что делать, если получили ошибку 503 и/или 5008? Сделайте паузу" (API §1.4.4).
            raise error_for(
                SERVICE_UNAVAILABLE,
                "HTTP 503",
                path=path,
                http_status=status,
                retry_after=_retry_after(response),
            )
        if status >= 500:
            raise ServerError(5000, f"HTTP {status} without a result code", path=path, http_status=status)
        snippet = text[:200]
        raise BadResponseError(0, f"unexpected answer: {snippet!r}", path=path, http_status=status)
