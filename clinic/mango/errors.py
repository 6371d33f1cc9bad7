"""Typed errors for Mango Office result codes ("Список кодов результатов" in the API PDF).

Codes are grouped in classes (1xxx OK, 2xxx billing, 3xxx bad request, 4xxx cannot perform,
5xxx server) and the doc asks clients to read an unknown code as its class, so the mapping
tries the exact code first, then the three-digit subclass, then the class.

Exception text is built from our own words and the server's message after masking; the key
and salt never appear in it (see masking.py).
"""

from __future__ import annotations

# Codes we name explicitly.
OK = 1000
BAD_PARAMS = 3100
NOT_POST = 3101
BAD_SIGN = 3102
MISSING_PARAM = 3103
BAD_FORMAT = 3104
BAD_KEY = 3105
NOT_FOUND = 3300
BAD_JSON = 3400
UNSUPPORTED = 4001
SERVICE_UNAVAILABLE = 5008  # also the Contact-Center "rate limit exceeded" answer (API §1.4.3)
NO_CC_PRODUCT = 5101
CAMPAIGN_STATE = 5106
CAMPAIGN_TASK_LIMIT = 5107
ACTIVE_TASK_LIMIT = 5108
DUPLICATE_NUMBER = 5109
TASK_STATE = 5111
GLOBAL_TASK_LIMIT = 5113
HTTP_RATE_LIMIT = 429  # VPBX API: {"status":429,"message":"Rate limit exceeded."} (API §1.4.2)


class MangoError(Exception):
    """Any failure of a Mango request. `code` is the Mango result code (or 429, or 0 when
    there was no usable answer); `message` is safe to show and to log."""

    def __init__(
        self,
        code: int,
        message: str = "",
        *,
        path: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.path = path
        self.http_status = http_status
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.path}: " if self.path else ""
        http = f" (HTTP {self.http_status})" if self.http_status is not None else ""
        detail = f" {self.message}" if self.message else ""
        return f"Mango {where}{self.code}{detail}{http}"


class BillingError(MangoError):
    """2xxx: the account is blocked, limited or out of money."""


class InvalidRequestError(MangoError):
    """3xxx: Mango rejected the request as malformed. Note that Mango allows one bad request
    per two minutes and answers 401 to everything for two minutes after more (API §1.4.1)."""


class BadSignError(InvalidRequestError):
    """3102: the signature did not match; the salt (ключ авторизации) is wrong."""


class MissingParameterError(InvalidRequestError):
    """3103: a required parameter is missing."""


class InvalidKeyError(InvalidRequestError):
    """3105: the key (уникальный код) is not known to Mango."""


class NotFoundError(InvalidRequestError):
    """33xx: the campaign, task or other object does not exist."""


class AccessBlockedError(MangoError):
    """HTTP 401: access blocked for two minutes after repeated bad requests (API §1.4.1)."""


class CannotPerformError(MangoError):
    """4xxx: the PBX cannot do this now."""


class ServerError(MangoError):
    """5xxx: a server-side failure."""


class RateLimitError(MangoError):
    """429 (VPBX API) or 5008 (Contact-Center API): too many requests; the request was not
    processed, so repeating it later is safe for every method."""

    def __init__(
        self,
        code: int,
        message: str = "",
        *,
        path: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(code, message, path=path, http_status=http_status)


class CampaignError(ServerError):
    """51xx: campaign and task rules."""


class CampaignStateError(CampaignError):
    """5106 / 5111: the campaign's or the task's status forbids the action (for example
    task/add into a finished or non-endless campaign)."""


class TaskLimitError(CampaignError):
    """5107 / 5108 / 5113: too many tasks in the campaign or active overall."""


class DuplicateNumberError(CampaignError):
    """5109: the phone number already has a task in this campaign."""


class TransportError(MangoError):
    """No usable answer from Mango (connection refused, timeout, dropped connection).

    `sent` is False when the request certainly never reached Mango (it failed while
    connecting), so it had no effect and may be repeated freely.
    """

    def __init__(self, message: str, *, path: str | None = None, sent: bool) -> None:
        self.sent = sent
        super().__init__(0, message, path=path)


class OutcomeUnknownError(TransportError):
    """The request went out but no answer came back, for a method that is not safe to
    repeat (task/add, tasks/push, task/delete). Mango may or may not have acted on it: a
    blind retry of task/add could make the robot call the patient twice. The caller decides,
    for example by retrying and treating DuplicateNumberError as "it did go through"."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message, path=path, sent=True)


class BadResponseError(MangoError):
    """Mango answered with something that is not the documented JSON."""


_EXACT: dict[int, type[MangoError]] = {
    BAD_SIGN: BadSignError,
    MISSING_PARAM: MissingParameterError,
    BAD_KEY: InvalidKeyError,
    SERVICE_UNAVAILABLE: RateLimitError,
    HTTP_RATE_LIMIT: RateLimitError,
    CAMPAIGN_STATE: CampaignStateError,
    TASK_STATE: CampaignStateError,
    CAMPAIGN_TASK_LIMIT: TaskLimitError,
    ACTIVE_TASK_LIMIT: TaskLimitError,
    GLOBAL_TASK_LIMIT: TaskLimitError,
    DUPLICATE_NUMBER: DuplicateNumberError,
}

_SUBCLASS: dict[int, type[MangoError]] = {  # code // 100
    33: NotFoundError,
    51: CampaignError,
}

_CLASS: dict[int, type[MangoError]] = {  # code // 1000
    2: BillingError,
    3: InvalidRequestError,
    4: CannotPerformError,
    5: ServerError,
}


def error_class(code: int) -> type[MangoError]:
    """The exception type for a result code, falling back to its subclass and class."""
    return _EXACT.get(code) or _SUBCLASS.get(code // 100) or _CLASS.get(code // 1000) or MangoError


def is_success(code: int) -> bool:
    """1xxx codes are success ("1090 читать как 1000")."""
    return 1000 <= code < 2000


def error_for(
    code: int,
    message: str = "",
    *,
    path: str | None = None,
    http_status: int | None = None,
    retry_after: float | None = None,
) -> MangoError:
    cls = error_class(code)
    if issubclass(cls, RateLimitError):
        return cls(code, message, path=path, http_status=http_status, retry_after=retry_after)
    return cls(code, message, path=path, http_status=http_status)
