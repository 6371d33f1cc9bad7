"""The dialer's state machine on a compressed clock: grouping per phone, the channel limit,
retries within calling hours, the SMS (one, through the ledger), «Не дозвонились» at the
deadline, recovery after a restart (no round called twice), answers by the robot's rules."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from clinic.models import Appointment, ExchangeLogEntry, SmsMessage
from clinic.models.schedule import STATUS_BOOKED, STATUS_CANCELLED
from clinic.models.voice_robot import (
    OUT_BUSY,
    OUT_CONFIRMED,
    OUT_NO_ANSWER,
    OUT_NO_DTMF,
    PHONE_ANSWERED,
    PHONE_SETTLED,
    PHONE_SMS,
    PHONE_UNREACHED,
    PHONE_WAITING,
    VoiceAttempt,
    VoicePhone,
)
from clinic.services import ValidationError
from clinic.voice_robot import campaigns, dialer
from clinic.voice_robot import settings as robot_settings
from clinic.voice_robot.answers import SOURCE_OUTBOUND, Answer, apply_answer

from .support import T0, VISIT_DAY, Clock, configure, seed

pytestmark = pytest.mark.db

PHONES = ["+79160000001", "+79160000002", "+79160000003", "+79160000004", "+79160000005"]


def _campaign(sessions: sessionmaker[Session], clock: Clock) -> int:
    with sessions() as s, s.begin():
        return campaigns.create(s, VISIT_DAY, None, clock()).id


def _started(sessions: sessionmaker[Session], clock: Clock | None = None) -> Clock:
    """The day's campaign created at the clock's time (T0 unless given); the clock."""
    clock = clock or Clock()
    _campaign(sessions, clock)
    return clock


def _answer(s: Session, plan: dialer.CallPlan, digit: int, clock: Clock) -> Answer:
    """The patient's key on the outbound call `plan`, by the robot's rules."""
    return apply_answer(
        s,
        list(plan.asked),
        digit,
        source=SOURCE_OUTBOUND,
        asked_at=plan.started_at,
        now=clock(),
        phone=plan.phone,
        ref="t",
    )


def _claim(sessions: sessionmaker[Session], clock: Clock, busy: int = 0) -> list[dialer.CallPlan]:
    with sessions() as s, s.begin():
        dialer.sweep(s, clock())
        return dialer.claim(s, clock(), busy_elsewhere=busy)


def _finish(sessions: sessionmaker[Session], clock: Clock, plan: dialer.CallPlan, outcome: str) -> None:
    with sessions() as s, s.begin():
        assert dialer.finish(s, plan.attempt_id, outcome, clock())


def _phone(sessions: sessionmaker[Session], phone_id: int) -> VoicePhone:
    with sessions() as s:
        row = s.get(VoicePhone, phone_id)
        assert row is not None
        s.expunge(row)
        return row


def test_a_campaign_groups_the_days_appointments_per_phone(sessions: sessionmaker[Session]) -> None:
    seed(sessions, PHONES[:2], per_phone=2)
    seed(sessions, PHONES[2:3], per_phone=1, day=VISIT_DAY + timedelta(days=1))  # another day
    clock = Clock()
    cid = _campaign(sessions, clock)
    with sessions() as s:
        progress = campaigns.progress(s, cid)
        assert progress is not None and (progress.phones, progress.appointments) == (2, 4)
    with sessions() as s, pytest.raises(ValidationError, match="уже идёт"):
        campaigns.create(s, VISIT_DAY, None, clock())
    with sessions() as s, pytest.raises(ValidationError, match="нет записей"):
        campaigns.create(s, VISIT_DAY + timedelta(days=5), None, clock())
    plans = _claim(sessions, clock)
    assert len(plans) == 2
    assert "Консультация" in plans[0].text and "Терапевт" in plans[0].text and "Нажмите 1" in plans[0].text
    assert len(plans[0].asked) == 2  # one call reads both of the phone's visits


def test_never_more_calls_than_the_robots_channels_and_one_trunk_line_stays_free(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, PHONES)
    configure(sessions, trunk_channels=4, robot_channels=2)
    clock = _started(sessions)
    first = _claim(sessions, clock)
    assert len(first) == 2
    assert _claim(sessions, clock) == []  # both channels busy
    _finish(sessions, clock, first[0], OUT_CONFIRMED)
    assert len(_claim(sessions, clock)) == 1
    # registrars on the trunk: the robot leaves them the last line
    configure(sessions, trunk_channels=3, robot_channels=2)
    _finish(sessions, clock, first[1], OUT_CONFIRMED)
    with sessions() as s:
        assert dialer.live_attempts(s) == 1
    assert _claim(sessions, clock, busy=1) == []  # 3 lines: 1 robot + 1 registrar + 1 kept free
    # a call whose answer is written still holds its line while the last words play
    configure(sessions, trunk_channels=6, robot_channels=2)
    with sessions() as s, s.begin():
        assert dialer.claim(s, clock(), robot_live=2) == []
    with sessions() as s, pytest.raises(ValidationError) as refused:
        robot_settings.save(
            s,
            {
                **{k: "5" for k in robot_settings.INT_FIELDS},
                "robot_channels": "5",
                "trunk_channels": "5",
                "hours_from": "09:00",
                "hours_to": "20:00",
            },
        )
    assert "хотя бы одна остаётся регистраторам" in refused.value.errors["robot_channels"]


def test_unreached_retries_then_one_sms_then_the_unreached_list(sessions: sessionmaker[Session]) -> None:
    ids = seed(sessions, PHONES[:1])
    configure(sessions, retries=2, retry_minutes=30, sms_wait_minutes=120, robot_channels=2)
    clock = _started(sessions)
    plan = _claim(sessions, clock)[0]
    assert plan.round == 1
    _finish(sessions, clock, plan, OUT_NO_ANSWER)
    row = _phone(sessions, plan.phone_id)
    assert row.state == PHONE_WAITING and row.next_at is not None
    clock.advance(minutes=29)
    assert _claim(sessions, clock) == []  # not yet
    clock.advance(minutes=1)
    plan = _claim(sessions, clock)[0]
    assert plan.round == 2
    _finish(sessions, clock, plan, OUT_BUSY)
    clock.advance(minutes=30)
    plan = _claim(sessions, clock)[0]
    assert plan.round == 3
    _finish(sessions, clock, plan, OUT_NO_DTMF)  # voicemail: no digit
    row = _phone(sessions, plan.phone_id)
    assert row.state == PHONE_SMS and row.sms_message_id is not None
    with sessions() as s:
        sms = s.scalars(select(SmsMessage)).all()
        assert (
            len(sms) == 1
            and sms[0].appointment_id == ids[0]
            and sms[0].idempotency_key.startswith("reminder:")
        )
        assert "не дозвонились" in sms[0].text and sms[0].source == "voice_robot"
        # escalating again (a restart replaying it) makes no second SMS
        phone = s.get(VoicePhone, plan.phone_id)
        assert phone is not None
        dialer.escalate(s, phone, clock())
        s.flush()
        assert s.scalar(select(func.count(SmsMessage.id))) == 1
        s.rollback()
    clock.advance(minutes=119)
    assert _claim(sessions, clock) == []
    assert _phone(sessions, plan.phone_id).state == PHONE_SMS
    clock.advance(minutes=1)
    _claim(sessions, clock)
    assert _phone(sessions, plan.phone_id).state == PHONE_UNREACHED
    with sessions() as s:
        listed = campaigns.unreached(s)
        assert [r["phone"].phone for r in listed] == [PHONES[0]] and listed[0]["calls"] == 3
        appt = s.get(Appointment, ids[0])
        assert appt is not None and appt.status == STATUS_BOOKED  # never cancelled for not answering


def test_a_retry_past_the_calling_hours_escalates_at_once(sessions: sessionmaker[Session]) -> None:
    seed(sessions, PHONES[:1])
    configure(sessions, retries=3, retry_minutes=30, hours_from="09:00", hours_to="20:00", send_sms=False)
    clock = _started(sessions, Clock(T0 + timedelta(hours=7, minutes=50)))  # 19:50 in Moscow
    plan = _claim(sessions, clock)[0]
    _finish(sessions, clock, plan, OUT_NO_ANSWER)
    assert _phone(sessions, plan.phone_id).state == PHONE_UNREACHED  # no SMS configured: the list at once
    clock.advance(minutes=15)  # 20:05: outside the hours nothing is claimed
    with sessions() as s, s.begin():
        row = s.get(VoicePhone, plan.phone_id)
        assert row is not None
        row.state, row.next_at = PHONE_WAITING, clock()
    assert _claim(sessions, clock) == []


def test_a_phone_answered_elsewhere_is_not_called(sessions: sessionmaker[Session]) -> None:
    ids = seed(sessions, PHONES[:1])
    clock = _started(sessions)
    with sessions() as s, s.begin():
        appt = s.get(Appointment, ids[0])
        assert appt is not None
        appt.confirmation_status, appt.confirmation_source = "confirmed", "registrar"
    assert _claim(sessions, clock) == []
    with sessions() as s:
        assert s.scalar(select(VoicePhone.state)) == PHONE_SETTLED
        assert s.scalar(select(func.count(VoiceAttempt.id))) == 0


def test_restart_mid_campaign_never_calls_a_phone_twice_in_a_round(sessions: sessionmaker[Session]) -> None:
    seed(sessions, PHONES[:3])
    configure(sessions, robot_channels=3, trunk_channels=5, retry_minutes=10)
    clock = _started(sessions)
    placed = _claim(sessions, clock)
    assert len(placed) == 3
    # the process dies: every live attempt is settled as interrupted on the next start
    with sessions() as s, s.begin():
        assert sorted(dialer.recover(s, clock())) == sorted(p.attempt_id for p in placed)
    assert _claim(sessions, clock) == []  # nobody called again in that round
    clock.advance(minutes=10)
    again = _claim(sessions, clock)
    assert sorted((p.phone, p.round) for p in again) == sorted((p.phone, 2) for p in placed)
    with sessions() as s, pytest.raises(IntegrityError):  # the database refuses a round twice
        s.add(VoiceAttempt(phone_id=again[0].phone_id, round=2))
        s.flush()


def test_answers_follow_the_robots_rules(sessions: sessionmaker[Session]) -> None:
    ids = seed(sessions, PHONES[:2], per_phone=1)
    clock = _started(sessions)
    plans = {p.phone: p for p in _claim(sessions, clock)}
    one, two = plans[PHONES[0]], plans[PHONES[1]]
    with sessions() as s, s.begin():
        ans = _answer(s, one, 1, clock)
        dialer.finish(s, one.attempt_id, OUT_CONFIRMED, clock(), digits="1", answer=ans)
        assert ans.changed == [ids[0]]
    with sessions() as s, s.begin():  # the same answer again changes nothing
        again = _answer(s, one, 1, clock)
        assert again.unchanged == [ids[0]] and not again.changed
    # the second appointment is cancelled by staff while its call rings: the answer is stale
    with sessions() as s, s.begin():
        appt = s.get(Appointment, ids[1])
        assert appt is not None
        appt.status = STATUS_CANCELLED
    with sessions() as s, s.begin():
        stale = _answer(s, two, 1, clock)
        assert stale.all_stale
    with sessions() as s:
        first = s.get(Appointment, ids[0])
        assert first is not None
        assert (first.confirmation_status, first.confirmation_source) == ("confirmed", SOURCE_OUTBOUND)
        assert first.extra_info.splitlines()[0] == "Запись подтверждена"
        second = s.get(Appointment, ids[1])
        assert second is not None and second.confirmation_status == ""
        assert _phone(sessions, one.phone_id).state == PHONE_ANSWERED
        assert s.scalar(select(func.count(ExchangeLogEntry.id))) == 3


def test_a_cancel_cancels_like_staff(sessions: sessionmaker[Session]) -> None:
    ids = seed(sessions, PHONES[:1])
    clock = _started(sessions)
    plan = _claim(sessions, clock)[0]
    with sessions() as s, s.begin():
        ans = _answer(s, plan, 2, clock)
        assert ans.changed == ids
    with sessions() as s:
        appt = s.get(Appointment, ids[0])
        assert appt is not None and appt.status == STATUS_CANCELLED
        assert appt.cancel_reason == "Отменено пациентом (голосовой робот)"
        assert appt.extra_info.startswith("Запись отменена")


def test_no_sms_consent_goes_to_the_unreached_list_at_once(sessions: sessionmaker[Session]) -> None:
    seed(sessions, PHONES[:1])
    configure(sessions, retries=0, send_sms=True)
    with sessions() as s, s.begin():
        from clinic.models import Patient

        s.scalars(select(Patient)).one().consent_sms = False
    clock = _started(sessions)
    plan = _claim(sessions, clock)[0]
    _finish(sessions, clock, plan, OUT_NO_ANSWER)
    row = _phone(sessions, plan.phone_id)
    assert row.state == PHONE_UNREACHED and row.sms_deadline is None  # nothing to wait for
    with sessions() as s:
        sms = s.scalars(select(SmsMessage)).one()
        assert sms.state == "skipped" and "согласия" in sms.note


def test_the_originates_late_reply_never_writes_over_the_patients_answer(
    sessions: sessionmaker[Session],
) -> None:
    """A patient answering at once: the robot marks the attempt «talking» (StasisStart) while
    the originate's reply, which marks it «ringing», is still on its way, in another
    transaction that had read the attempt before the answer was committed. «talking» stays."""
    seed(sessions, PHONES[:1])
    configure(sessions, robot_channels=1, trunk_channels=5)
    clock = _started(sessions)
    plan = _claim(sessions, clock)[0]

    def answer() -> None:  # the StasisStart's handler, on its own thread as in ari_app
        with sessions() as answering, answering.begin():
            dialer.answered(answering, plan.attempt_id, clock(), "tts")

    with sessions() as late, late.begin():
        read = late.get(VoiceAttempt, plan.attempt_id)  # read before the answer (and kept)
        assert read is not None and read.state == "placing"
        answering = threading.Thread(target=answer)
        answering.start()
        answering.join(10)
        assert not answering.is_alive(), "the answer was not written beside the open transaction"
        dialer.ringing(late, plan.attempt_id)
    with sessions() as s:
        attempt = s.get(VoiceAttempt, plan.attempt_id)
        assert attempt is not None and (attempt.state, attempt.prompt) == ("talking", "tts")
