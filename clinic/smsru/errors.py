"""Typed sms.ru failures.

Every failure is an :class:`SmsRuError` carrying the API ``code`` (None when sms.ru gave
no answer), its ``text`` and the ``method`` called. Subclasses group the documented codes
(smsru.md §9.2) by what a caller does about them; :func:`error_for_code` picks the class.

``outcome_unknown`` is the one flag a sending ledger must look at: True means the request
may have reached sms.ru and been acted on (a read timeout after the body went out, a
proxy's 5xx, a garbled reply), so an ``sms/send`` must not be repeated blindly: the row is
marked "outcome unknown" instead. False means sms.ru certainly did not act on the request
(it answered with an error, or the connection was never made).

Messages never contain the api_id: the client passes every server text through its mask.
"""

from __future__ import annotations

from clinic.smsru import codes


class SmsRuError(Exception):
    """Base of every sms.ru failure."""

    outcome_unknown: bool = False

    def __init__(self, message: str, *, code: int | None = None, text: str = "", method: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.text = text
        self.method = method


class SmsRuAuthError(SmsRuError):
    """200, 300–305: wrong api_id/login, token, unconfirmed account. Fix the settings."""


class SmsRuFundsError(SmsRuError):
    """201: not enough money on the account."""


class SmsRuSenderError(SmsRuError):
    """204, 221: the sender name is not approved, or the account has no letter sender yet."""


class SmsRuRecipientError(SmsRuError):
    """202, 207, 209, 214, 215: this number cannot receive (format, route, stop lists)."""


class SmsRuMessageError(SmsRuError):
    """203, 205, 212, 216, 217: the text itself is refused (empty, too long, encoding, words)."""


class SmsRuLimitError(SmsRuError):
    """206, 230–233, 501–508, 550: a daily, per-number or anti-fraud limit; try later or elsewhere."""


class SmsRuRequestError(SmsRuError):
    """208, 210, 211, 213: the request itself is malformed; a bug on our side."""


class SmsRuCallbackError(SmsRuError):
    """901, 902: callback URL invalid, or no such handler to delete."""


class SmsRuRetryableError(SmsRuError):
    """220, 500: sms.ru asked to repeat the request later; it did not act on this one."""


class SmsRuTransportError(SmsRuRetryableError):
    """No usable answer from sms.ru at all. Transient by nature, hence retryable for reads."""


class SmsRuConnectError(SmsRuTransportError):
    """The connection was never established (refused, DNS, connect timeout): nothing was sent."""


class SmsRuTimeout(SmsRuTransportError):
    """The request went out but no answer came in time: sms.ru may have acted on it."""

    outcome_unknown = True


class SmsRuBadResponse(SmsRuTransportError):
    """An answer that is not sms.ru's JSON (HTTP 5xx from a proxy, garbage, a dropped
    connection, a missing per-number entry): sms.ru may have acted on the request."""

    outcome_unknown = True


class TooManyRecipientsError(ValueError):
    """Raised before any network traffic: sms.ru takes at most 100 numbers or ids a request."""


_FAMILIES: tuple[tuple[frozenset[int], type[SmsRuError]], ...] = (
    (codes.AUTH_CODES, SmsRuAuthError),
    (codes.FUNDS_CODES, SmsRuFundsError),
    (codes.SENDER_CODES, SmsRuSenderError),
    (codes.RECIPIENT_CODES, SmsRuRecipientError),
    (codes.MESSAGE_CODES, SmsRuMessageError),
    (codes.LIMIT_CODES, SmsRuLimitError),
    (codes.REQUEST_CODES, SmsRuRequestError),
    (codes.CALLBACK_CODES, SmsRuCallbackError),
    (codes.RETRYABLE_CODES, SmsRuRetryableError),
)


def error_class_for(code: int | None) -> type[SmsRuError]:
    if code is not None:
        for family, cls in _FAMILIES:
            if code in family:
                return cls
    return SmsRuError


def error_for_code(code: int | None, text: str | None = None, method: str = "") -> SmsRuError:
    """Build (not raise) the typed error for an API code; `text` defaults to the official one."""
    wording = text or (codes.text_for(code) if code is not None else "нет кода ответа")
    shown = "?" if code is None else str(code)
    message = f"sms.ru {method}: {shown} {wording}"
    return error_class_for(code)(message, code=code, text=wording, method=method)


def russian_reason(exc: SmsRuError) -> str:
    """What to tell a user about `exc`: sms.ru's own (Russian) text when it gave one, else
    what happened to the connection; never a class name."""
    if exc.text:
        return exc.text
    if isinstance(exc, SmsRuConnectError):
        return "нет соединения с sms.ru: проверьте адрес сервиса и доступ в интернет"
    if isinstance(exc, SmsRuTimeout):
        return "sms.ru не ответил вовремя"
    if isinstance(exc, SmsRuBadResponse):
        return "sms.ru вернул непонятный ответ"
    return f"ошибка sms.ru (код {exc.code})" if exc.code is not None else "ошибка sms.ru"
