"""Calls placed on the phones alone (Dial() in the dialplan, never in the ARI app) reach the
call log through the caller's hangup handler and the FastAGI `call_log` route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sip_phone import BaresipPhone, event_type
from sqlalchemy import select

from clinic.models import Call

from .callkit import wait_idle, wait_until
from .pbxkit import PSTN_NUMBER, Pbx, ensure_patient, wait_registered

pytestmark = pytest.mark.pbx


@pytest.fixture()
def phone_lines(
    pbx: Pbx, phones: dict[str, BaresipPhone], pstn: BaresipPhone, agi_server: Any
) -> Iterator[dict[str, BaresipPhone]]:
    wait_registered(pbx.config, {"reg101", "reg102"})
    yield {"101": phones["101"], "102": phones["102"], "pstn": pstn}
    for phone in (phones["101"], phones["102"], pstn):
        phone.hangup()
    wait_idle(phones["101"], phones["102"], pstn)


def _phone_rows(pbx: Pbx) -> list[Call]:
    with pbx.sessions() as s:
        rows = list(s.scalars(select(Call).where(Call.uid.like("p-%")).order_by(Call.id)))
        s.expunge_all()
        return rows


def _talk_and_hang_up(caller: BaresipPhone, callee: BaresipPhone, uri: str) -> None:
    m_caller, m_callee = caller.ctrl.mark(), callee.ctrl.mark()
    caller.dial(uri)
    callee.wait_for_event(event_type("CALL_ESTABLISHED"), 10, m_callee)
    caller.wait_for_event(event_type("CALL_ESTABLISHED"), 10, m_caller)
    caller.hangup()
    callee.wait_for_event(event_type("CALL_CLOSED"), 10, m_callee)


def _logged_once(pbx: Pbx, before: int) -> Call:
    """The one row the hangup handler adds for a call (waited for, with a deadline)."""
    rows = wait_until(lambda: _phone_rows(pbx)[before:], 10, "the call logged by the hangup handler")
    assert len(rows) == 1
    return rows[0]


def test_internal_call_between_phones_is_logged(
    pbx: Pbx, phone_lines: dict[str, BaresipPhone], call_users: dict[str, int]
) -> None:
    before = len(_phone_rows(pbx))
    _talk_and_hang_up(phone_lines["101"], phone_lines["102"], "sip:102@127.0.0.1:5060")
    row = _logged_once(pbx, before)
    assert (row.direction, row.origin, row.user_id, row.number) == (
        "outbound",
        "phone",
        call_users["101"],
        "102",
    )
    assert (row.state, row.result, row.patient_id) == ("ended", "answered", None)
    assert row.started_at <= row.answered_at <= row.ended_at


def test_outbound_call_from_a_phone_is_logged_with_the_patient(
    pbx: Pbx, phone_lines: dict[str, BaresipPhone], call_users: dict[str, int]
) -> None:
    patient_id = ensure_patient(pbx)
    before = len(_phone_rows(pbx))
    _talk_and_hang_up(phone_lines["101"], phone_lines["pstn"], "sip:89161234567@127.0.0.1:5060")
    row = _logged_once(pbx, before)
    assert (row.user_id, row.number, row.patient_id, row.result) == (
        call_users["101"],
        PSTN_NUMBER,
        patient_id,
        "answered",
    )
    assert "Звонков" in row.caller_name
