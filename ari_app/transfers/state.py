"""The transfer machine: one run per transfer, state × event → next state, every transition
logged with the call's uid; a command the state does not accept is a 409 with the reason.

    blind:    ringing --target_answered--> completed
              ringing --target_gone------> failed
    attended: ringing --target_answered--> consulting --complete--> completed
              ringing | consulting --cancel--> cancelled, --target_gone--> failed
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ari_app.core.machine import Machine
from clinic.call_control import TransferMode


class TransferState(StrEnum):
    RINGING = "ringing"  # the target's phone rings; the patient waits on hold
    CONSULTING = "consulting"  # attended: the registrar talks with the target
    COMPLETED = "completed"  # the target has the patient
    CANCELLED = "cancelled"
    FAILED = "failed"  # the target did not answer or hung up before completion


class TransferEvent(StrEnum):
    TARGET_ANSWERED = "target_answered"
    COMPLETE = "complete"  # «Завершить перевод»
    CANCEL = "cancel"  # «Отменить перевод»
    TARGET_GONE = "target_gone"


_S, _E = TransferState, TransferEvent

BLIND_TABLE: dict[TransferState, dict[TransferEvent, TransferState]] = {
    _S.RINGING: {_E.TARGET_ANSWERED: _S.COMPLETED, _E.TARGET_GONE: _S.FAILED},
}
ATTENDED_TABLE: dict[TransferState, dict[TransferEvent, TransferState]] = {
    _S.RINGING: {_E.TARGET_ANSWERED: _S.CONSULTING, _E.CANCEL: _S.CANCELLED, _E.TARGET_GONE: _S.FAILED},
    _S.CONSULTING: {_E.COMPLETE: _S.COMPLETED, _E.CANCEL: _S.CANCELLED, _E.TARGET_GONE: _S.FAILED},
}
_DEFAULTS = {
    _E.COMPLETE: "Нет перевода с консультацией",
    _E.CANCEL: "Нет перевода, который можно отменить",
    _E.TARGET_ANSWERED: "Перевод уже не ждёт ответа",
    _E.TARGET_GONE: "Перевод уже завершён",
}
BLIND = Machine(
    "transfer(blind)",
    BLIND_TABLE,
    {(_S.RINGING, _E.CANCEL): "Перевод без консультации отменить нельзя: вы уже отключились от звонка"},
    _DEFAULTS,
)
ATTENDED = Machine(
    "transfer(attended)",
    ATTENDED_TABLE,
    {(_S.RINGING, _E.COMPLETE): "Абонент перевода ещё не ответил"},
    _DEFAULTS,
)


@dataclass
class TransferRun:
    uid: str  # the call's
    mode: TransferMode
    channel_id: str  # the target's leg (its phones' group: core/ringing.py group_key)
    label: str  # the target as the window shows it
    user_id: int | None  # the registrar behind the target extension (None: a number)
    from_user: int | None  # the registrar who transfers
    state: TransferState = TransferState.RINGING

    @property
    def machine(self) -> Machine[TransferState, TransferEvent]:
        return BLIND if self.mode is TransferMode.BLIND else ATTENDED

    def check(self, event: TransferEvent) -> None:
        self.machine.next(self.state, event)

    def fire(self, event: TransferEvent) -> TransferState:
        self.state = self.machine.step(self.uid, self.state, event)
        return self.state

    @property
    def answered(self) -> bool:
        return self.state in (TransferState.CONSULTING, TransferState.COMPLETED)

    def snapshot(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "target": self.label,
            "answered": self.answered,
            "state": self.state.value,
        }
