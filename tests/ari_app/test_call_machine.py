"""The call and transfer state machines (issue 13): every state × event either leads where
the table says, logged with the call's uid, or is refused with a Russian reason (409) and
changes nothing; an ended call refuses everything with «Звонок уже завершён»."""

from __future__ import annotations

import logging

import pytest

from ari_app.core.call import LiveCall
from ari_app.core.errors import CallEnded, InvalidState
from ari_app.core.machine import CALL_TABLE, CallEvent, CallState
from ari_app.transfers.state import TransferEvent, TransferRun, TransferState
from clinic.call_control import TransferMode

CYRILLIC = set("абвгдеёжзийклмнопрстуфхцчшщъыьэюя")


def _call(state: CallState) -> LiveCall:
    call = LiveCall("u1", "outbound", 7, "+79161234567", None)
    call.state = state
    return call


@pytest.mark.parametrize("state", list(CallState))
@pytest.mark.parametrize("event", list(CallEvent))
def test_every_pair_moves_as_the_table_says_or_is_refused_in_russian(
    state: CallState, event: CallEvent, caplog: pytest.LogCaptureFixture
) -> None:
    call = _call(state)
    wanted = CALL_TABLE[state].get(event)
    caplog.set_level(logging.INFO, logger="ari_app.state")
    if wanted is not None:
        assert call.fire(event) is wanted
        assert f"call u1: {state.value} --{event.value}--> {wanted.value}" in caplog.text
        return
    with pytest.raises((InvalidState, CallEnded)) as refused:
        call.fire(event)
    assert refused.value.status == 409
    assert set(refused.value.message.lower()) & CYRILLIC, refused.value.message
    assert call.state is state  # nothing changed
    assert "u1" not in caplog.text  # and nothing was logged as a transition


def test_named_refusals() -> None:
    with pytest.raises(InvalidState, match="Нельзя поставить на удержание: звонок ещё не соединён"):
        _call(CallState.CALLING).check(CallEvent.HOLD)
    ended = _call(CallState.ENDED)
    ended.reason = "Собеседник положил трубку"
    with pytest.raises(CallEnded, match="Звонок уже завершён: Собеседник положил трубку"):
        ended.check(CallEvent.HANGUP)
    with pytest.raises(InvalidState, match="Перевод уже выполняется"):
        _call(CallState.TRANSFERRING).check(CallEvent.TRANSFER)


def test_a_transfer_holds_the_patient_as_the_window_knows_it() -> None:
    call = _call(CallState.TALKING)
    call.fire(CallEvent.TRANSFER)
    snap = call.snapshot()
    assert (snap["state"], snap["held"]) == ("held", True)  # the public states are unchanged
    with pytest.raises(InvalidState):
        call.check(CallEvent.UNHOLD)  # «Говорить» does not end a transfer


def _run(mode: TransferMode) -> TransferRun:
    return TransferRun("u1", mode, "u1-tra3", "102", user_id=2, from_user=1)


def test_attended_transfer_runs_ringing_consulting_completed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ari_app.state")
    run = _run(TransferMode.ATTENDED)
    with pytest.raises(InvalidState, match="Абонент перевода ещё не ответил"):
        run.fire(TransferEvent.COMPLETE)
    assert run.fire(TransferEvent.TARGET_ANSWERED) is TransferState.CONSULTING
    assert run.answered
    assert run.fire(TransferEvent.COMPLETE) is TransferState.COMPLETED
    assert "transfer(attended) u1: consulting --complete--> completed" in caplog.text
    with pytest.raises(InvalidState):
        run.fire(TransferEvent.CANCEL)  # a completed transfer is over


def test_a_blind_transfer_cannot_be_cancelled_or_completed() -> None:
    run = _run(TransferMode.BLIND)
    with pytest.raises(InvalidState, match="отменить нельзя"):
        run.fire(TransferEvent.CANCEL)
    with pytest.raises(InvalidState, match="Нет перевода с консультацией"):
        run.fire(TransferEvent.COMPLETE)
    assert run.fire(TransferEvent.TARGET_ANSWERED) is TransferState.COMPLETED


def test_a_target_that_goes_fails_the_transfer_in_either_mode() -> None:
    for mode in TransferMode:
        run = _run(mode)
        assert run.fire(TransferEvent.TARGET_GONE) is TransferState.FAILED
        with pytest.raises(InvalidState):
            run.fire(TransferEvent.TARGET_ANSWERED)
