"""The patient's history (clinic/timeline.py): every kind of event in one list by time,
newest first, filtered by kind, paged by a cursor through a long history; shown on the card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import Call, CallRecording, RobotTask, RobotTaskItem, SmsMessage
from clinic.timeline import KINDS, decode_cursor, patient_timeline

from .conftest import T0, VISIT, Clinic

pytestmark = pytest.mark.db


def sms_row(patient: int, appointment: int | None, at: datetime, n: int, **extra: object) -> SmsMessage:
    values: dict[str, object] = dict(
        idempotency_key=f"t:{n}", source="single", patient_id=patient, appointment_id=appointment,
        phone="79161234567", text=f"Текст {n}", parts=1, state="sent", note="", created_at=at, attempts=1,
        gateway_answer="", delivery_text="", delivery_final=False,
    )  # fmt: skip
    values.update(extra)
    return SmsMessage(**values)


@pytest.fixture()
def history(sessions: sessionmaker[Session], clinic: Clinic) -> dict[str, int]:
    """One patient with a visit, its confirmation, a call with a recording, an SMS delivered,
    a Mango answer and a stopped reminder; another patient's SMS that must not show."""
    patient = clinic.patient()
    other = clinic.patient("+79031112233")
    appointment = clinic.appointment(patient)
    clinic.update(
        appointment, confirmation_status="confirmed", confirmation_source="registrar", confirmed_at=T0
    )
    rule = clinic.rule()
    with transaction(sessions) as s:
        began = T0 - timedelta(hours=2)
        call = Call(uid="c1", direction="inbound", patient_id=patient, number="+79161234567", state="ended",
                    result="answered", started_at=began, answered_at=began,
                    ended_at=began + timedelta(seconds=75))  # fmt: skip
        s.add(call)
        s.flush()
        s.add(CallRecording(call_id=call.id, patient_id=patient, name="call-c1-1", state="done"))
        s.add(sms_row(patient, appointment, T0 - timedelta(hours=1), 1, delivery_code=103,
                      delivery_text="Доставлено", delivery_final=True))  # fmt: skip
        s.add(sms_row(other, None, T0 - timedelta(minutes=30), 2))
        task = RobotTask(external_system_id=_system(s), campaign_id=1, phone="+79161234567", ref="r1",
                         state="sent", error="", created_at=T0 - timedelta(minutes=50),
                         result_status=1, result_at=T0 - timedelta(minutes=40))  # fmt: skip
        s.add(task)
        s.flush()
        s.add(RobotTaskItem(robot_task_id=task.id, appointment_id=appointment, starts_at=VISIT))
        from clinic.models import ReminderJob

        s.add(ReminderJob(rule_id=rule, appointment_id=appointment, patient_id=patient, starts_at=VISIT,
                          channel="sms", state="stopped", due_at=T0, expires_at=T0 + timedelta(days=1),
                          note="Запись подтверждена (регистратор): напоминание не нужно",
                          created_at=T0 + timedelta(minutes=5)))  # fmt: skip
    return {"patient": patient, "appointment": appointment, "call": call.id}


def _system(s: Session) -> int:
    from clinic.models import ExternalSystem

    system = ExternalSystem(name="Mango", field_names="", field_ids="", webhook_secret="", webhook_ips="",
                            last_check_message="")  # fmt: skip
    s.add(system)
    s.flush()
    return system.id


def test_every_kind_in_one_list_newest_first(
    sessions: sessionmaker[Session], history: dict[str, int]
) -> None:
    with sessions() as s:
        page = patient_timeline(s, history["patient"])
    kinds = [item.kind for item in page.items]
    assert kinds == ["appointment", "reminder", "status", "robot", "sms", "call"]
    assert [i.at for i in page.items] == sorted((i.at for i in page.items), reverse=True)
    by_kind = {item.kind: item for item in page.items}
    assert by_kind["appointment"].at == datetime(2026, 5, 29, 7, 0, tzinfo=UTC)  # 10:00 Moscow
    assert by_kind["status"].title.startswith("Запись подтверждена: 29.05.2026 10:00")
    assert by_kind["status"].detail == "Источник: регистратор"
    assert by_kind["robot"].state == "Запись подтверждена"
    assert (by_kind["sms"].state, by_kind["sms"].tone) == ("Доставлено", "ok")
    assert by_kind["call"].recordings and by_kind["call"].detail.endswith("1:15")
    assert "Запись подтверждена (регистратор)" in by_kind["reminder"].detail
    assert "Текст 2" not in [i.detail for i in page.items]  # the other patient's SMS
    assert page.next_cursor is None


def test_filter_by_kind(sessions: sessionmaker[Session], history: dict[str, int]) -> None:
    with sessions() as s:
        page = patient_timeline(s, history["patient"], kinds=["sms", "call", "nonsense"])
    assert [i.kind for i in page.items] == ["sms", "call"]


def test_a_long_history_is_paged_without_gaps_or_repeats(
    sessions: sessionmaker[Session], clinic: Clinic
) -> None:
    patient = clinic.patient()
    with transaction(sessions) as s:
        for n in range(95):
            # pairs share their moment: the cursor's tie-break must keep both
            s.add(sms_row(patient, None, T0 - timedelta(minutes=n // 2), n))
    seen: list[int] = []
    cursor = None
    pages = 0
    with sessions() as s:
        while True:
            page = patient_timeline(s, patient, cursor=cursor, limit=20)
            pages += 1
            seen += [i.ref for i in page.items]
            assert len(page.items) <= 20
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert pages == 5 and len(seen) == 95 and len(set(seen)) == 95


@pytest.mark.parametrize("raw", ["", "abc", "1.2", "99999999999999999999.sms.1", "1.unknown.1", "１.sms.1"])
def test_a_malformed_cursor_means_the_first_page(raw: str) -> None:
    assert decode_cursor(raw) is None


def test_kinds_are_russian() -> None:
    assert KINDS["call"] == "Звонки" and KINDS["sms"] == "СМС"


def test_our_own_robots_calls_and_answer_are_in_the_history(
    sessions: sessionmaker[Session], clinic: Clinic
) -> None:
    from clinic.models.voice_robot import VoiceAttempt, VoiceCampaign, VoiceItem, VoicePhone

    patient = clinic.patient()
    other = clinic.patient("+79031112233")
    appointment = clinic.appointment(patient)
    clinic.update(
        appointment,
        confirmation_status="confirmed",
        confirmation_source="voice_robot",
        confirmed_at=T0 + timedelta(hours=1, minutes=2),
    )
    other_appointment = clinic.appointment(other)
    with transaction(sessions) as s:
        campaign = VoiceCampaign(visit_date=VISIT.date(), state="done", created_at=T0)
        s.add(campaign)
        s.flush()
        parties = ((patient, appointment, "+79161234567"), (other, other_appointment, "+79031112233"))
        for who, appt, number in parties:
            phone = VoicePhone(campaign_id=campaign.id, phone=number, patient_id=who, state="answered",
                               calls=2, updated_at=T0)  # fmt: skip
            s.add(phone)
            s.flush()
            s.add(VoiceItem(phone_id=phone.id, appointment_id=appt, starts_at=VISIT, result="confirmed"))
            s.add(VoiceAttempt(phone_id=phone.id, round=1, state="done", outcome="no_answer", started_at=T0,
                               ended_at=T0 + timedelta(seconds=30)))  # fmt: skip
            s.add(VoiceAttempt(phone_id=phone.id, round=2, state="done", outcome="confirmed", digits="1",
                               started_at=T0 + timedelta(hours=1),
                               ended_at=T0 + timedelta(hours=1, minutes=1)))  # fmt: skip
    with sessions() as s:
        page = patient_timeline(s, patient, kinds=["voice", "status"])
    # the other patient's calls are not his; the answer and the status change both show
    assert [(i.kind, i.state) for i in page.items][1:] == [("voice", "Подтвердил"), ("voice", "Нет ответа")]
    assert page.items[0].kind == "status"
    voice = [i for i in page.items if i.kind == "voice"]
    assert voice[0].tone == "ok" and voice[1].tone == "warn"
    assert voice[0].detail.startswith("+7 916 123-45-67, звонок 2, приём 29.05.2026 10:00")
    assert voice[0].appointment_id == appointment
    assert page.items[0].detail == "Источник: голосовой робот"
