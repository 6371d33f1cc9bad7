"""ARI errors, mapped by HTTP status (the same `status_code` in a `RESTResponse`); a
transport failure is `AriUnavailable`."""

from __future__ import annotations


class AriError(Exception):
    """An ARI request failed. `status` is the HTTP status (0 when Asterisk was unreachable)."""

    status = 0

    def __init__(self, message: str, *, status: int | None = None, op: str = "", path: str = "") -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.op = op
        self.path = path


class AriUnavailable(AriError):
    """Asterisk did not answer (connection refused, timeout)."""


class AriBadRequest(AriError):
    status = 400


class AriNotFound(AriError):
    status = 404


class AriConflict(AriError):
    """409: e.g. "Channel not in Stasis application", a duplicate id, a bridged channel."""

    status = 409


class AriInvalidState(AriError):
    status = 412


class AriUnprocessable(AriError):
    status = 422


class AriServerError(AriError):
    status = 500


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    404: AriNotFound,
    409: AriConflict,
    412: AriInvalidState,
    422: AriUnprocessable,
}


class AriMissing(AriBadRequest, AriNotFound):
    """400 naming a channel that does not exist: Asterisk 22 validates the ids a bridge move
    names ("Channel not found") before looking the request's own object up. For us it is
    the same as a 404: the party has gone."""

    status = 400


def error_for(status: int, message: str, *, op: str = "", path: str = "") -> AriError:
    if status == 400 and "not found" in message.lower():
        return AriMissing(message, status=status, op=op, path=path)
    cls = _BY_STATUS.get(status) or (AriServerError if status >= 500 else AriError)
    return cls(message, status=status, op=op, path=path)
