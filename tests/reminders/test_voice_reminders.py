"""Reminder rules on our own voice robot: a due reminder puts its appointment into the
robot's campaign for the visit's day, under the patient's phone (one call reads all of a
phone's visits), once whatever the re-runs; the robot's dialer then asks about it, and not
when it was confirmed elsewhere meanwhile. The calls themselves through the real Asterisk
are tests/pbx/test_voice_robot.py's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import transaction
from clinic.models import ClinicSettings
from clinic.models.voice_robot import VoiceCampaign, VoiceItem, VoicePhone
from clinic.reminders.worker import tick
from clinic.services.schedule import confirm_appointment
from clinic.voice_robot import dialer

from .conftest import VISIT, Clinic, Clock

pytestmark = pytest.mark.db


def _with_trunk(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        settings = s.scalars(select(ClinicSettings)).one()
        settings.trunk_host = "127.0.0.1"


def _campaign_rows(sessions: sessionmaker[Session]) -> list[tuple[str, str, list[int]]]:
    """(campaign date, phone, appointment ids) of every phone the robot is to call."""
    with sessions() as s:
        rows = []
        for phone in s.scalars(select(VoicePhone).order_by(VoicePhone.id)):
            campaign = s.get(VoiceCampaign, phone.campaign_id)
            assert campaign is not None
            items = s.scalars(select(VoiceItem.appointment_id).where(VoiceItem.phone_id == phone.id))
            rows.append((campaign.visit_date.isoformat(), phone.phone, sorted(items)))
        return rows


def test_a_due_reminder_joins_the_robots_campaign_once_per_phone(
    sessions: sessionmaker[Session], sms_config: Config, clinic: Clinic, clock: Clock
) -> None:
    _with_trunk(sessions)
    patient = clinic.patient()
    first = clinic.appointment(patient)
    second = clinic.appointment(patient, at=VISIT + timedelta(hours=2))  # the same phone, the same day
    clinic.rule(channel="voice", template_id=None, offset_value=24)
    clinic.rule(name="Ещё раз", channel="voice", template_id=None, offset_value=20)

    clock.at_moscow(28, 10, 0)
    tick(sessions, sms_config, clock=clock)
    assert [job.state for job in clinic.jobs()] == ["sent"]
    assert clinic.jobs()[0].note.startswith("Передано голосовому роботу: обзвон №")
    assert _campaign_rows(sessions) == [("2026-05-29", "+79161234567", [first])]

    clock.at_moscow(28, 12, 0)  # the second visit is due; the first already went
    for _ in range(2):  # and a re-run on the same database changes nothing
        tick(sessions, sms_config, clock=clock)
    assert _campaign_rows(sessions) == [("2026-05-29", "+79161234567", [first, second])]

    clock.at_moscow(28, 16, 0)  # the second rule, for both visits: asked already, no second phone row
    tick(sessions, sms_config, clock=clock)
    assert [job.state for job in clinic.jobs()] == ["sent"] * 4
    assert _campaign_rows(sessions) == [("2026-05-29", "+79161234567", [first, second])]

    # the dialer asks about both visits in one call
    with transaction(sessions) as s:
        [plan] = dialer.claim(s, clock())
        assert sorted(a.appointment_id for a in plan.asked) == [first, second]


def test_the_robot_does_not_call_about_a_visit_confirmed_elsewhere(
    sessions: sessionmaker[Session], sms_config: Config, clinic: Clinic, clock: Clock
) -> None:
    _with_trunk(sessions)
    appointment = clinic.appointment()
    clinic.rule(channel="voice", template_id=None, offset_value=24)
    clock.at_moscow(28, 10, 0)
    tick(sessions, sms_config, clock=clock)
    assert len(_campaign_rows(sessions)) == 1
    with transaction(sessions) as s:
        confirm_appointment(s, appointment, source="registrar")  # the registrar, on the scheduler
    with transaction(sessions) as s:
        assert dialer.claim(s, clock()) == []
        assert s.scalars(select(VoicePhone.state)).one() == "settled"


def test_no_consent_to_calls_and_no_trunk(
    sessions: sessionmaker[Session], sms_config: Config, clinic: Clinic, clock: Clock
) -> None:
    clinic.appointment(clinic.patient(consent_calls=False))
    clinic.rule(channel="voice", template_id=None, offset_value=24)
    clock.at_moscow(28, 10, 0)
    tick(sessions, sms_config, clock=clock)
    [job] = clinic.jobs()
    assert (job.state, job.note) == ("skipped", "Пациент не дал согласия на звонки: робот не звонит")
    assert _campaign_rows(sessions) == []
    from clinic.reminders import channels

    voice = channels.get("voice")
    assert voice is not None
    with sessions() as s:  # the rules page says why the robot cannot call yet
        assert voice.problem(s) is not None and "Транк не настроен" in (voice.problem(s) or "")


def test_a_visit_that_has_begun_is_not_asked_about(
    sessions: sessionmaker[Session], sms_config: Config, clinic: Clinic, clock: Clock
) -> None:
    _with_trunk(sessions)
    clinic.appointment()
    clinic.rule(channel="voice", template_id=None, offset_value=2, offset_unit="hours", stop_before_min=30)
    clock.at_moscow(29, 9, 0)  # due at 8:00, held by the quiet hours until 9:00
    tick(sessions, sms_config, clock=clock)
    assert len(_campaign_rows(sessions)) == 1
    with sessions() as s:  # before the visit the robot would call (tried, not kept)
        assert len(dialer.claim(s, clock() + timedelta(minutes=30))) == 1
        s.rollback()
    clock.at_moscow(29, 10, 0)  # the robot was busy until the visit began (10:00)
    with transaction(sessions) as s:
        assert dialer.claim(s, clock()) == []
        assert s.scalars(select(VoicePhone.state)).one() == "settled"
