"""Domain errors of call control; the control API answers each as JSON with its error id
(clinic/call_control.py) and that id's status."""

from __future__ import annotations

from clinic.call_control import STATUS, ErrorId


class CallError(Exception):
    error_id = ErrorId.BAD_REQUEST

    def __init__(self, message: str, error_id: ErrorId | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error_id is not None:
            self.error_id = error_id

    @property
    def status(self) -> int:
        return STATUS[self.error_id]


class BadRequest(CallError):
    error_id = ErrorId.BAD_REQUEST


class Forbidden(CallError):
    error_id = ErrorId.FORBIDDEN


class NoSuchCall(CallError):
    error_id = ErrorId.NO_SUCH_CALL


class CallEnded(CallError):
    """A command on a call that has ended (or a leg that is gone)."""

    error_id = ErrorId.CALL_ENDED


class InvalidState(CallError):
    """The call's (or its transfer's) state does not accept the command now (409)."""

    error_id = ErrorId.INVALID_STATE


class Busy(CallError):
    """The registrar's line is busy with another call."""

    error_id = ErrorId.LINE_BUSY


class Unreachable(CallError):
    """A phone that should ring is not registered on the PBX: nothing was dialled."""

    error_id = ErrorId.UNREACHABLE


class PbxUnavailable(CallError):
    error_id = ErrorId.PBX_UNAVAILABLE
