"""Explicit state machines (Wazo's transfer states, plugins/transfers/state.py): a table
state × event → next state. Every transition is logged with the call's uid; an event the
state does not accept raises InvalidState (409) with a Russian reason, and nothing changes.

The call machine is here; the transfer machine is ari_app/transfers/state.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from ari_app.core.errors import CallEnded, InvalidState
from clinic.models.calls import STATE_CALLING, STATE_DIALING, STATE_ENDED, STATE_HELD, STATE_TALKING

log = logging.getLogger("ari_app.state")

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


class Machine(Generic[S, E]):
    def __init__(
        self,
        name: str,
        table: Mapping[S, Mapping[E, S]],
        refusals: Mapping[tuple[S, E], str],
        defaults: Mapping[E, str],
    ) -> None:
        self.name = name
        self.table = table
        self.refusals = refusals
        self.defaults = defaults

    def accepts(self, state: S, event: E) -> bool:
        return event in self.table.get(state, {})

    def next(self, state: S, event: E) -> S:
        """The state `event` leads to from `state`; InvalidState with the reason if refused."""
        found = self.table.get(state, {}).get(event)
        if found is None:
            reason = (
                self.refusals.get((state, event)) or self.defaults.get(event) or "Команда сейчас недоступна"
            )
            raise InvalidState(reason)
        return found

    def step(self, uid: str, state: S, event: E) -> S:
        new = self.next(state, event)
        log.info("%s %s: %s --%s--> %s", self.name, uid, state.value, event.value, new.value)
        return new


class CallState(StrEnum):
    DIALING = "dialing"  # click-to-call: the registrar's phone rings; take-over: legs moving in
    CALLING = "calling"  # the other party rings (incoming: the registrars' phones)
    TALKING = "talking"
    HELD = "held"  # the patient on hold with music («Удержание»)
    TRANSFERRING = "transferring"  # the patient on hold while the transfer target rings or consults
    ENDED = "ended"

    @property
    def public(self) -> str:
        """The state the window and the call log know (clinic.models.calls.STATE_*)."""
        return _PUBLIC[self]


_PUBLIC = {
    CallState.DIALING: STATE_DIALING,
    CallState.CALLING: STATE_CALLING,
    CallState.TALKING: STATE_TALKING,
    CallState.HELD: STATE_HELD,
    CallState.TRANSFERRING: STATE_HELD,  # the patient hears music either way
    CallState.ENDED: STATE_ENDED,
}


class CallEvent(StrEnum):
    REGISTRAR_ANSWERED = "registrar_answered"  # click-to-call: leg A answered, the patient is dialled
    ANSWERED = "answered"  # both parties are in the conversation
    HOLD = "hold"
    UNHOLD = "unhold"
    CONFERENCE = "conference"
    RECORD_START = "record_start"
    RECORD_STOP = "record_stop"
    DTMF = "dtmf"
    TRANSFER = "transfer"
    TRANSFER_DONE = "transfer_done"  # the target has the patient
    TRANSFER_BACK = "transfer_back"  # cancelled, or the target did not answer: back to the registrar
    HANGUP = "hangup"  # «Завершить»
    END = "end"  # a party hung up, the PBX failed it, or a resync found it gone


_LIVE_END = {CallEvent.HANGUP: CallState.ENDED, CallEvent.END: CallState.ENDED}
_S, _E = CallState, CallEvent

CALL_TABLE: dict[CallState, dict[CallEvent, CallState]] = {
    _S.DIALING: {_E.REGISTRAR_ANSWERED: _S.CALLING, _E.ANSWERED: _S.TALKING, **_LIVE_END},
    _S.CALLING: {_E.ANSWERED: _S.TALKING, **_LIVE_END},
    _S.TALKING: {
        _E.HOLD: _S.HELD,
        _E.TRANSFER: _S.TRANSFERRING,
        _E.CONFERENCE: _S.TALKING,
        _E.RECORD_START: _S.TALKING,
        _E.RECORD_STOP: _S.TALKING,
        _E.DTMF: _S.TALKING,
        **_LIVE_END,
    },
    _S.HELD: {_E.UNHOLD: _S.TALKING, _E.RECORD_START: _S.HELD, _E.RECORD_STOP: _S.HELD, **_LIVE_END},
    _S.TRANSFERRING: {
        _E.TRANSFER_DONE: _S.TALKING,
        _E.TRANSFER_BACK: _S.TALKING,
        _E.RECORD_START: _S.TRANSFERRING,
        _E.RECORD_STOP: _S.TRANSFERRING,
        **_LIVE_END,
    },
    _S.ENDED: {},
}

_NOT_YET = "звонок ещё не соединён"
_IN_TRANSFER = "идёт перевод: завершите или отмените его"
_CALL_REFUSALS: dict[tuple[CallState, CallEvent], str] = {}
for _early in (_S.DIALING, _S.CALLING):
    _CALL_REFUSALS |= {
        (_early, _E.HOLD): f"Нельзя поставить на удержание: {_NOT_YET}",
        (_early, _E.UNHOLD): "Звонок не на удержании",
        (_early, _E.TRANSFER): f"Нельзя перевести: {_NOT_YET}",
        (_early, _E.CONFERENCE): f"Нельзя начать конференцию: {_NOT_YET}",
        (_early, _E.RECORD_START): f"Нельзя начать запись: {_NOT_YET}",
        (_early, _E.DTMF): f"Тоновый набор недоступен: {_NOT_YET}",
    }
_CALL_REFUSALS |= {
    (_S.HELD, _E.HOLD): "Звонок уже на удержании",
    (_S.HELD, _E.DTMF): "Звонок на удержании: тоновый набор недоступен, нажмите «Говорить»",
    (_S.HELD, _E.TRANSFER): "Звонок на удержании: нажмите «Говорить», затем переводите",
    (_S.HELD, _E.CONFERENCE): "Звонок на удержании: нажмите «Говорить», затем добавляйте участника",
    (_S.TRANSFERRING, _E.TRANSFER): "Перевод уже выполняется",
    (_S.TRANSFERRING, _E.HOLD): f"Пациент уже ждёт на удержании: {_IN_TRANSFER}",
    (_S.TRANSFERRING, _E.UNHOLD): f"Нельзя снять с удержания: {_IN_TRANSFER}",
    (_S.TRANSFERRING, _E.CONFERENCE): f"Нельзя начать конференцию: {_IN_TRANSFER}",
    (_S.TRANSFERRING, _E.DTMF): f"Тоновый набор недоступен: {_IN_TRANSFER}",
}
_CALL_DEFAULTS: dict[CallEvent, str] = {
    _E.HOLD: "Удержание возможно только во время разговора",
    _E.UNHOLD: "Звонок не на удержании",
    _E.CONFERENCE: "Конференция возможна только во время разговора",
    _E.RECORD_START: "Запись возможна только во время разговора",
    _E.RECORD_STOP: "Запись не идёт",
    _E.DTMF: "Тоновый набор возможен только во время разговора",
    _E.TRANSFER: "Перевод возможен только во время разговора",
    _E.TRANSFER_DONE: "Нет перевода с консультацией",
    _E.TRANSFER_BACK: "Нет перевода, который можно отменить",
    _E.REGISTRAR_ANSWERED: "Телефон регистратора уже ответил",
    _E.ANSWERED: "Звонок уже соединён",
}

CALL_MACHINE: Machine[CallState, CallEvent] = Machine("call", CALL_TABLE, _CALL_REFUSALS, _CALL_DEFAULTS)


def call_next(uid: str, state: CallState, event: CallEvent, reason: str = "") -> CallState:
    """The call machine's next state; a call that has ended refuses everything with
    «Звонок уже завершён» and why (CallEnded, 409)."""
    if state is CallState.ENDED:
        raise CallEnded(f"Звонок уже завершён: {reason or 'вызов окончен'}")
    return CALL_MACHINE.next(state, event)
