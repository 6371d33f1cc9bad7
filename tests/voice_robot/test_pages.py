"""The robot's pages: start a campaign for a date and follow it, bad input in Russian
(422, nothing written), «Не дозвонились» with its one-click callback, the admin's settings
(registrars refused on the server), the menu's «Голосовой робот» group."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from web.support import Web

from clinic.models.voice_robot import PHONE_UNREACHED, VoiceCampaign, VoicePhone, VoiceRobotSettings

from .support import seed

pytestmark = pytest.mark.db


def _tomorrow() -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Europe/Moscow")) + timedelta(days=1)


def test_start_a_campaign_and_follow_it(registrar_web: Web, sessions: sessionmaker[Session]) -> None:
    day = _tomorrow().date()
    seed(sessions, ["+79160000011", "+79160000012"], per_phone=2, day=day)
    page = registrar_web.text("/robot/own")
    assert "Запустить обзвон" in page and day.isoformat() in page  # tomorrow offered
    assert "Голосовой робот" in page and "Не дозвонились" in page  # the menu group
    reply = registrar_web.post_form("/robot/own", {"visit_date": day.isoformat()})
    assert reply.status_code == 302
    with sessions() as s:
        campaign = s.scalars(select(VoiceCampaign)).one()
    progress = registrar_web.text(f"/robot/own/{campaign.id}")
    assert "Телефонов: 2, записей: 4" in progress and "Ожидает звонка" in progress
    again = registrar_web.post_form("/robot/own", {"visit_date": day.isoformat()})
    assert again.status_code == 422 and "уже идёт" in again.text
    paused = registrar_web.post_form(f"/robot/own/{campaign.id}/pause", {}, page=f"/robot/own/{campaign.id}")
    assert paused.status_code == 302
    assert "Приостановлена" in registrar_web.text(f"/robot/own/{campaign.id}")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Укажите дату"),
        ("31.02.2027", "Укажите дату"),
        ("2020-01-01", "уже прошла"),
        ((_tomorrow() + timedelta(days=30)).date().isoformat(), "нет записей"),
    ],
)
def test_bad_dates_are_refused_in_russian(
    registrar_web: Web, sessions: sessionmaker[Session], value: str, message: str
) -> None:
    reply = registrar_web.post_form("/robot/own", {"visit_date": value})
    assert reply.status_code == 422 and message in reply.text
    with sessions() as s:
        assert s.scalar(select(func.count(VoiceCampaign.id))) == 0


def test_unreached_list_calls_back_in_one_click(registrar_web: Web, sessions: sessionmaker[Session]) -> None:
    day = _tomorrow().date()
    seed(sessions, ["+79160000021"], day=day)
    registrar_web.post_form("/robot/own", {"visit_date": day.isoformat()})
    with sessions() as s, s.begin():
        phone = s.scalars(select(VoicePhone)).one()
        phone.state = PHONE_UNREACHED
        phone_id, patient_id = phone.id, phone.patient_id
    page = registrar_web.text("/robot/own/unreached")
    assert "Пациентов0 Иван" in page and "Перезвонить" in page
    reply = registrar_web.post_form(
        f"/robot/own/unreached/{phone_id}/callback", {}, page="/robot/own/unreached"
    )
    assert reply.status_code == 302
    target = reply.headers["Location"]
    assert target.startswith("/phone?") and "dial=1" in target and f"patient_id={patient_id}" in target
    with sessions() as s:
        assert s.get(VoicePhone, phone_id).called_back_uid.startswith("reg ")  # type: ignore[union-attr]
    assert "Перезвонили: reg" in registrar_web.text("/robot/own/unreached")


def test_settings_are_the_admins_and_checked(
    admin_web: Web, registrar_web: Web, sessions: sessionmaker[Session]
) -> None:
    assert registrar_web.get("/admin/voice-robot").status_code in (302, 403)
    form = {
        "trunk_channels": "4",
        "robot_channels": "4",
        "retries": "2",
        "retry_minutes": "30",
        "ring_seconds": "30",
        "dtmf_seconds": "8",
        "sms_wait_minutes": "120",
        "hours_from": "09:00",
        "hours_to": "08:00",
        "greeting": "Здравствуйте!",
        "send_sms": "on",
    }
    bad = admin_web.post_form("/admin/voice-robot", form)
    assert bad.status_code == 422
    assert "хотя бы одна остаётся регистраторам" in bad.text and "позже «Звонить с»" in bad.text
    with sessions() as s:
        assert s.scalar(select(func.count(VoiceRobotSettings.id))) == 0
    good = admin_web.post_form("/admin/voice-robot", {**form, "robot_channels": "3", "hours_to": "20:00"})
    assert good.status_code == 302
    with sessions() as s:
        row = s.scalars(select(VoiceRobotSettings)).one()
        assert (row.robot_channels, row.hours_to, row.send_sms, row.inbound_confirm) == (
            3,
            "20:00",
            True,
            False,
        )
