"""The call log of calls placed with Dial() alone (clinic.services.calls.log_phone_call):
Dial()'s status → our result, who and whom, and a repeated report changing nothing. The
path through the real dialplan is tests/pbx/test_phone_call_log.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Call, Patient, User
from clinic.services.calls import PhoneCallReport, log_phone_call

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _report(uniqueid: str, status: str, kind: str = "outbound", **kw: object) -> PhoneCallReport:
    fields: dict[str, object] = {
        "uniqueid": uniqueid,
        "kind": kind,
        "endpoint": "reg777",
        "number": "+79165554433",
        "dial_status": status,
        "answered_s": 30,
        "dialed_s": 42,
    }
    fields.update(kw)
    return PhoneCallReport(**fields)  # type: ignore[arg-type]


@pytest.fixture()
def ids(sessions: sessionmaker[Session]) -> dict[str, int]:
    with transaction(sessions) as s:
        user = User(login="reg777", password_hash="x", extension="777", sip_id="reg777")
        patient = Patient(last_name="Номеров", first_name="Иван", phone="+79165554433")
        s.add_all([user, patient])
        s.flush()
        return {"user": user.id, "patient": patient.id}


@pytest.mark.parametrize(
    ("status", "result", "reason"),
    [
        ("ANSWER", "answered", ""),
        ("BUSY", "busy", "Занято"),
        ("NOANSWER", "missed", "Нет ответа"),
        ("CANCEL", "cancelled", "Вызов отменён"),  # the registrar gave up his own call
        ("CHANUNAVAIL", "failed", "Абонент недоступен"),
        ("", "failed", "Вызов не удался"),
    ],
)
def test_dial_status_becomes_the_result(
    sessions: sessionmaker[Session], ids: dict[str, int], status: str, result: str, reason: str
) -> None:
    with transaction(sessions) as s:
        call = log_phone_call(s, _report(f"1764.{status or 'none'}", status), now=NOW)
        assert call is not None
        assert (call.result, call.reason, call.origin, call.direction) == (
            result,
            reason,
            "phone",
            "outbound",
        )
        assert (call.user_id, call.patient_id, call.caller_name) == (
            ids["user"],
            ids["patient"],
            "Номеров Иван",
        )
        assert call.started_at == NOW - timedelta(seconds=42) and call.ended_at == NOW
        assert call.answered_at == (NOW - timedelta(seconds=30) if result == "answered" else None)


def test_a_repeated_report_changes_nothing(sessions: sessionmaker[Session], ids: dict[str, int]) -> None:
    with transaction(sessions) as s:
        assert log_phone_call(s, _report("1764.5", "ANSWER"), now=NOW) is not None
    with transaction(sessions) as s:
        assert log_phone_call(s, _report("1764.5", "BUSY"), now=NOW + timedelta(minutes=1)) is None
    with sessions() as s:
        assert s.scalar(select(func.count(Call.id)).where(Call.uid == "p-1764.5")) == 1
        assert s.scalar(select(Call.result).where(Call.uid == "p-1764.5")) == "answered"


def test_internal_calls_skip_the_patient_lookup_and_inbound_ones_are_incoming(
    sessions: sessionmaker[Session], ids: dict[str, int]
) -> None:
    with transaction(sessions) as s:
        internal = log_phone_call(s, _report("1764.6", "ANSWER", kind="internal", number="102"), now=NOW)
        inbound = log_phone_call(s, _report("1764.7", "NOANSWER", kind="inbound", endpoint=""), now=NOW)
        assert internal is not None and inbound is not None
        assert (internal.number, internal.patient_id) == ("102", None)
        assert (inbound.direction, inbound.origin, inbound.user_id) == ("inbound", "inbound", None)
        assert (inbound.patient_id, inbound.result) == (ids["patient"], "missed")
        # a patient who hangs up while the clinic's phones ring was missed, not «Отменён»
        gave_up = log_phone_call(s, _report("1764.9", "CANCEL", kind="inbound", endpoint=""), now=NOW)
        assert gave_up is not None and gave_up.result == "missed"
        with pytest.raises(ValueError):
            log_phone_call(s, _report("1764.8", "ANSWER", kind="sideways"), now=NOW)
