"""Single sends through the ledger against the emulator: the row first, idempotency, rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from smsru.support import API_ID, Sms
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import transaction
from clinic.models import Patient, SmsMessage, SmsStopEntry, SmsTemplate
from clinic.services import ValidationError
from clinic.sms import sending

from .conftest import START


def _send(sessions, cfg, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("key", "k1")
    kw.setdefault("phone", None)
    kw.setdefault("text", None)
    return sending.send_single(sessions, cfg, clock=lambda: START, **kw)


def _row(sessions: sessionmaker[Session], msg_id: int) -> SmsMessage:
    with sessions() as s:
        row = s.get(SmsMessage, msg_id)
        assert row is not None
        s.expunge(row)
        return row


def test_appointment_default_template_is_rendered_and_sent(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: dict[str, int]
) -> None:
    msg_id, created = _send(sessions, sms_config, appointment_id=clinic["appointment"])
    assert created
    row = _row(sessions, msg_id)
    assert row.state == "sent", row.note
    assert (
        row.text
        == "Мария Петровна, ждём вас 29.05.2026 в 10:00, врач Смирнов А.В., каб. 12 Терапия. Клиника Здоровье"
    )
    sent = sms.messages(phone="79161234567")
    assert [m["text"] for m in sent] == [row.text]
    assert row.sms_id == sent[0]["sms_id"]
    assert API_ID not in row.gateway_answer and '"status": "OK"' in row.gateway_answer
    # ttl never reaches past the visit: 22 h from 12:00 today to 10:00 tomorrow
    assert sent[0]["ttl"] == 1320


def test_same_key_never_sends_twice(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: dict[str, int]
) -> None:
    first, created1 = _send(sessions, sms_config, phone="+7 916 123-45-67", text="Привет", key="ui:abc")
    second, created2 = _send(sessions, sms_config, phone="+7 916 123-45-67", text="Привет", key="ui:abc")
    assert (created1, created2) == (True, False)
    assert first == second
    assert len(sms.messages(phone="79161234567")) == 1


def test_reminder_for_the_same_visit_is_sent_once(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: dict[str, int]
) -> None:
    a, _ = _send(sessions, sms_config, appointment_id=clinic["appointment"], key="api:1", reminder=True)
    b, created = _send(sessions, sms_config, appointment_id=clinic["appointment"], key="api:2", reminder=True)
    assert a == b and not created
    assert len(sms.messages()) == 1


@pytest.mark.parametrize(
    ("phone", "text", "field", "message"),
    [
        ("+79161234567", "   ", "text", "Текст сообщения пуст"),
        ("12345", "Привет", "phone", "Некорректный номер телефона"),
        ("", "Привет", "phone", "Не указан номер телефона"),
        ("+79161234567", "Ж" * 537, "text", "Текст слишком длинный"),
    ],
)
def test_bad_input_is_refused_in_russian_and_nothing_is_written(
    sessions: sessionmaker[Session],
    sms_config: Config,
    sms: Sms,
    clinic: dict[str, int],
    phone: str,
    text: str,
    field: str,
    message: str,
) -> None:
    with pytest.raises(ValidationError) as info:
        _send(sessions, sms_config, phone=phone, text=text)
    assert message in info.value.errors[field]
    with sessions() as s:
        assert s.scalars(select(SmsMessage)).all() == []
    assert sms.messages() == []


def test_no_default_template_is_a_clear_error(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: dict[str, int]
) -> None:
    with transaction(sessions) as s:
        s.get(SmsTemplate, clinic["template"]).is_default = False  # type: ignore[union-attr]
    with pytest.raises(ValidationError) as info:
        _send(sessions, sms_config, appointment_id=clinic["appointment"])
    assert "Нет шаблона по умолчанию" in info.value.errors["text"]
    assert sms.messages() == []


def test_stop_list_and_consent_skip_without_a_request(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: dict[str, int]
) -> None:
    with transaction(sessions) as s:
        s.add(SmsStopEntry(phone="79161234567", note="просил не писать"))
    msg_id, _ = _send(sessions, sms_config, patient_id=clinic["patient"], text="Привет", key="a")
    assert (_row(sessions, msg_id).state, _row(sessions, msg_id).note) == (
        "skipped",
        "Номер в стоп-листе клиники",
    )
    with transaction(sessions) as s:
        s.execute(SmsStopEntry.__table__.delete())
        s.get(Patient, clinic["patient"]).consent_sms = False  # type: ignore[union-attr]
    msg_id, _ = _send(sessions, sms_config, patient_id=clinic["patient"], text="Привет", key="b")
    assert _row(sessions, msg_id).note == "Пациент не дал согласия на СМС"
    assert sms.messages() == []


def test_quiet_hours_defer_and_never_drop(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: dict[str, int]
) -> None:
    late = START.replace(hour=19, minute=30)  # 22:30 in Moscow
    msg_id, _ = sending.send_single(
        sessions, sms_config, phone="+79161234567", text="Привет", key="q", clock=lambda: late
    )
    row = _row(sessions, msg_id)
    assert row.state == "queued" and "отложена до 29.05.2026 09:00" in row.note
    assert sms.messages() == []
    from clinic.sms import gateway, ledger

    with sessions() as s:
        from clinic.services.settings import read_settings

        settings = read_settings(s)
        s.expunge_all()
    client = gateway.make_client(sms_config, settings)
    still_quiet = ledger.dispatch_due(
        sessions, client, api_id=API_ID, clock=lambda: late + timedelta(hours=2)
    )
    assert still_quiet["requests"] == 0
    morning = ledger.dispatch_due(sessions, client, api_id=API_ID, clock=lambda: late + timedelta(hours=11))
    client.close()
    assert morning["sent"] == 1
    assert _row(sessions, msg_id).state == "sent"


def test_reminder_after_the_visit_started_is_not_sent(
    sessions: sessionmaker[Session], sms_config: Config, sms: Sms, clinic: dict[str, int]
) -> None:
    after = START + timedelta(days=1, hours=2)  # 15:00 Moscow on the visit day
    msg_id, _ = sending.send_single(
        sessions,
        sms_config,
        appointment_id=clinic["appointment"],
        phone=None,
        text=None,
        key="x",
        clock=lambda: after,
    )
    assert _row(sessions, msg_id).state == "skipped"
    assert sms.messages() == []
