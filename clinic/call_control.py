"""The call-control contract between the web side and ari_app: the commands on a call,
their request bodies and the error ids of the answers. `webhooks/ui/phone.py` forwards
exactly these commands, and ari_app's control API builds its routes from the same list
(a command without a handler there fails at start-up), so the two cannot drift.

    POST /calls                      DialBody                     → 201 call snapshot
    GET  /calls, GET /calls/{uid}                                 → snapshots
    POST /calls/{uid}/<command>      the command's body (or none) → 200 call snapshot
    GET  /phone-calls, POST /phone-calls/{channel_id}/adopt       (take-over)
    GET  /recordings/{name}                                       → audio/wav
    GET  /presence                   {"epoch", "available", "users": [{"id", "name",
                                     "extension", "state": PresenceState, "title", "seq"}]}
                                     (the same shape as the events stream's `presence`)

An error is `{"error": "<Russian reason>", "error_id": ErrorId}` with the status of its id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict

CALLS_PATH = "/calls"
PHONE_CALLS_PATH = "/phone-calls"
RECORDINGS_PATH = "/recordings"
PRESENCE_PATH = "/presence"  # GET: every colleague's phone state (ari_app/presence/)


class Command(StrEnum):
    """A command on one call: its value is the path after `/calls/{uid}/`."""

    HOLD = "hold"
    UNHOLD = "unhold"
    RECORD_START = "record/start"
    RECORD_STOP = "record/stop"
    HANGUP = "hangup"
    CONFERENCE = "conference"
    TRANSFER = "transfer"
    TRANSFER_COMPLETE = "transfer/complete"
    TRANSFER_CANCEL = "transfer/cancel"
    DTMF = "dtmf"


class TransferMode(StrEnum):
    BLIND = "blind"  # the registrar leaves at once; the patient waits for the target on hold
    ATTENDED = "attended"  # the registrar consults the target first


class DialBody(TypedDict, total=False):
    target: str  # an extension (2–8 digits) or a phone number
    patient_id: int
    appointment_id: int
    callback_of: str  # the uid of the missed call this one returns


class TargetBody(TypedDict):
    target: str


class TransferBody(TypedDict, total=False):
    target: str
    mode: str  # TransferMode; blind when absent


class DtmfBody(TypedDict):
    digits: str  # 0–9, *, #, A–D; up to 32


# the body each command takes (None: no body)
BODIES: dict[Command, type | None] = {
    Command.HOLD: None,
    Command.UNHOLD: None,
    Command.RECORD_START: None,
    Command.RECORD_STOP: None,
    Command.HANGUP: None,
    Command.CONFERENCE: TargetBody,
    Command.TRANSFER: TransferBody,
    Command.TRANSFER_COMPLETE: None,
    Command.TRANSFER_CANCEL: None,
    Command.DTMF: DtmfBody,
}

DIAL_FIELDS: tuple[str, ...] = tuple(DialBody.__annotations__)


def body_fields(command: Command) -> tuple[str, ...]:
    """The fields of `command`'s body that the web side passes on (none for a bare command)."""
    body = BODIES[command]
    return () if body is None else tuple(body.__annotations__)


def command_path(uid: str, command: Command) -> str:
    return f"{CALLS_PATH}/{uid}/{command.value}"


def parse_command(raw: str) -> Command | None:
    """The command named by the path tail, or None when there is no such command."""
    try:
        return Command(raw)
    except ValueError:
        return None


class PresenceState(StrEnum):
    """A colleague's phone, as the directory shows it."""

    IDLE = "idle"  # registered, free
    OFFLINE = "offline"  # no phone of his registered
    BUSY = "busy"  # in a call (talking, dialling out, on hold)
    RINGING = "ringing"
    UNKNOWN = "unknown"  # ari_app or Asterisk cannot tell now


PRESENCE_TITLES: dict[PresenceState, str] = {
    PresenceState.IDLE: "зарегистрирован",
    PresenceState.OFFLINE: "не зарегистрирован",
    PresenceState.BUSY: "занят",
    PresenceState.RINGING: "звонит",
    PresenceState.UNKNOWN: "нет данных",
}


class ErrorId(StrEnum):
    BAD_REQUEST = "bad_request"  # malformed or refused input (the reason says which)
    NOT_AUTHORIZED = "not_authorized"  # no or a wrong control token
    FORBIDDEN = "forbidden"  # not this user's call, or an unknown/disabled user
    NO_SUCH_CALL = "no_such_call"
    CALL_ENDED = "call_ended"
    INVALID_STATE = "invalid_state"  # the call's state does not accept the command now
    LINE_BUSY = "line_busy"  # the registrar is already in a call
    UNREACHABLE = "unreachable"  # a phone that should ring is not registered
    PBX_FAILED = "pbx_failed"  # Asterisk refused or failed the request
    PBX_UNAVAILABLE = "pbx_unavailable"
    LOG_UNAVAILABLE = "log_unavailable"  # the call log is restarting
    NOT_FOUND = "not_found"  # e.g. a recording
    TOO_LARGE = "too_large"


STATUS: dict[ErrorId, int] = {
    ErrorId.BAD_REQUEST: 400,
    ErrorId.NOT_AUTHORIZED: 401,
    ErrorId.FORBIDDEN: 403,
    ErrorId.NO_SUCH_CALL: 404,
    ErrorId.NOT_FOUND: 404,
    ErrorId.CALL_ENDED: 409,
    ErrorId.INVALID_STATE: 409,
    ErrorId.LINE_BUSY: 409,
    ErrorId.UNREACHABLE: 409,
    ErrorId.TOO_LARGE: 413,
    ErrorId.PBX_FAILED: 502,
    ErrorId.PBX_UNAVAILABLE: 503,
    ErrorId.LOG_UNAVAILABLE: 503,
}


@dataclass(frozen=True)
class ControlError:
    """An error answer as the web side reads it."""

    error_id: ErrorId
    message: str

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "error_id": self.error_id.value}

    @property
    def status(self) -> int:
        return STATUS[self.error_id]
