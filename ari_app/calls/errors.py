"""Domain errors of call control; the control API turns them into JSON 4xx answers."""

from __future__ import annotations


class CallError(Exception):
    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(CallError):
    status = 400


class Forbidden(CallError):
    status = 403


class NoSuchCall(CallError):
    status = 404


class CallEnded(CallError):
    """A command on a call that has ended (or a leg that is gone)."""

    status = 409


class Busy(CallError):
    """The line is busy, or the call is not in a state that allows the command."""

    status = 409


class Unreachable(CallError):
    """A phone that should ring is not registered on the PBX: nothing was dialled."""

    status = 409


class PbxUnavailable(CallError):
    status = 503
