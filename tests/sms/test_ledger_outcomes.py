"""What the ledger does with each kind of sms.ru outcome: retry only what surely was not
sent, mark lost replies unknown, record permanent refusals per row, mask the api_id."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import pytest
from smsru.support import API_ID, Sms
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.models import SmsMessage, SmsPhoneFlag
from clinic.services.settings import read_settings
from clinic.sms import ledger
from clinic.smsru import RetryPolicy, SmsRuClient

from .conftest import START


def _queue(sessions: sessionmaker[Session], *phones: str, text: str = "Привет") -> list[int]:
    ids = []
    with sessions() as s, s.begin():
        settings = read_settings(s)
        for i, phone in enumerate(phones):
            row, _ = ledger.queue(s, settings, ledger.Draft(phone=phone, text=text, key=f"k{i}"), now=START)
            ids.append(row.id)
    return ids


def _rows(sessions: sessionmaker[Session]) -> list[SmsMessage]:
    with sessions() as s:
        rows = list(s.scalars(select(SmsMessage).order_by(SmsMessage.id)))
        s.expunge_all()
        return rows


def _dispatch(sessions: sessionmaker[Session], client: SmsRuClient, at=START) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return ledger.dispatch_due(sessions, client, api_id=API_ID, clock=lambda: at, concurrency=2)


@pytest.fixture()
def client(sms: Sms, clinic: dict[str, int]) -> SmsRuClient:
    c = sms.client(read_timeout=1.0, retry=RetryPolicy(attempts=1, backoff=0.0))
    yield c  # type: ignore[misc]
    c.close()


def test_code_220_is_retried_with_backoff_then_sent(
    sessions: sessionmaker[Session], sms: Sms, client: SmsRuClient
) -> None:
    _queue(sessions, "79161234567")
    sms.faults({"kind": "api_error", "path": "sms/send", "code": 220, "count": 1})
    assert _dispatch(sessions, client)["retry"] == 1
    (row,) = _rows(sessions)
    assert row.state == "queued" and row.attempts == 1 and "Повторная попытка" in row.note
    assert ledger.rules.as_aware(row.not_before) == START + timedelta(seconds=ledger.BACKOFF_S)  # type: ignore[arg-type]
    assert _dispatch(sessions, client)["requests"] == 0  # not due yet
    assert _dispatch(sessions, client, START + timedelta(minutes=1))["sent"] == 1
    assert len(sms.messages()) == 1


def test_connection_refused_is_retried_and_gives_up_after_max_attempts(
    sessions: sessionmaker[Session], clinic: dict[str, int]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    _queue(sessions, "79161234567")
    with SmsRuClient(API_ID, base_url=f"http://127.0.0.1:{port}", connect_timeout=1.0) as dead:
        at = START
        for _ in range(ledger.MAX_ATTEMPTS):
            _dispatch(sessions, dead, at)
            at += timedelta(seconds=ledger.MAX_BACKOFF_S)
    (row,) = _rows(sessions)
    assert (row.state, row.attempts) == ("failed", ledger.MAX_ATTEMPTS)


def test_lost_reply_is_unknown_and_never_resent(
    sessions: sessionmaker[Session], sms: Sms, client: SmsRuClient
) -> None:
    _queue(sessions, "79161234567", "79161234568")
    sms.faults({"kind": "timeout", "path": "sms/send", "count": 1, "process": True, "hold": 30})
    assert _dispatch(sessions, client)["unknown"] == 2
    sms.emulator.release_holds()
    assert {r.state for r in _rows(sessions)} == {"unknown"}
    assert "не переотправляется" in _rows(sessions)[0].note
    assert _dispatch(sessions, client, START + timedelta(hours=1))["requests"] == 0
    assert len(sms.messages()) == 2  # they did go out, once


def test_proxy_error_page_is_unknown(sessions: sessionmaker[Session], sms: Sms, client: SmsRuClient) -> None:
    _queue(sessions, "79161234567")
    sms.faults({"kind": "http_status", "path": "sms/send", "status": 502, "count": 1})
    assert _dispatch(sessions, client)["unknown"] == 1


def test_permanent_refusals_are_recorded_per_row_and_flag_the_number(
    sessions: sessionmaker[Session], sms: Sms, client: SmsRuClient
) -> None:
    sms.configure(global_stoplist=["79160000000"])
    _queue(sessions, "79161234567", "79160000000")
    assert _dispatch(sessions, client) | {"requests": 0} == {
        "sent": 1, "failed": 1, "unknown": 0, "retry": 0, "skipped": 0, "requests": 0,
    }  # fmt: skip
    ok, refused = _rows(sessions)
    assert ok.state == "sent" and refused.state == "failed" and refused.gateway_code == 215
    with sessions() as s:
        assert s.scalars(select(SmsPhoneFlag.phone)).all() == ["79160000000"]


def test_top_level_refusal_fails_the_batch(
    sessions: sessionmaker[Session], sms: Sms, client: SmsRuClient
) -> None:
    sms.configure(balance=0)
    _queue(sessions, "79161234567", "79161234568")
    _dispatch(sessions, client)
    assert [(r.state, r.gateway_code) for r in _rows(sessions)] == [("failed", 201), ("failed", 201)]


def test_one_text_per_number_per_request(
    sessions: sessionmaker[Session], sms: Sms, client: SmsRuClient
) -> None:
    with sessions() as s, s.begin():
        settings = read_settings(s)
        for i in range(3):
            ledger.queue(
                s, settings, ledger.Draft(phone="79161234567", text=f"Текст {i}", key=f"d{i}"), now=START
            )
    assert _dispatch(sessions, client)["requests"] == 3
    assert sorted(m["text"] for m in sms.messages()) == ["Текст 0", "Текст 1", "Текст 2"]


def test_the_api_id_never_reaches_logs_or_the_ledger(
    sessions: sessionmaker[Session], sms: Sms, client: SmsRuClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _queue(sessions, "79161234567", "79160000000")
    sms.configure(global_stoplist=["79160000000"])
    _dispatch(sessions, client)
    assert caplog.records
    assert all(API_ID not in record.getMessage() for record in caplog.records)
    assert all(API_ID not in (r.gateway_answer + r.note) for r in _rows(sessions))
