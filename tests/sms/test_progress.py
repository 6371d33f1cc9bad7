"""The worker's live progress is fail-open (issue 11, point 4): with ari_app's control API
down a mailing is sent all the same; the publisher throttles each job to one snapshot per
interval (the final one always goes) and, after a failure, stops trying for a while."""

from __future__ import annotations

import dataclasses
import socket
from datetime import date
from typing import Any

from smsru.support import Sms
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic import progress
from clinic.config import Config
from clinic.db import transaction
from clinic.models import SmsMailing, SmsMessage, SmsTemplate, User
from clinic.models.sms import MAILING_SENT
from clinic.sms import jobs, mailings
from clinic.worker.jobs import JobContext

from .conftest import START


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_mailing_is_sent_while_ari_app_is_down(
    sessions: sessionmaker[Session], clinic: dict[str, int], sms_config: Config, sms: Sms
) -> None:
    with transaction(sessions) as s:
        user = User(login="author", full_name="Автор", password_hash="x", role="admin", is_active=True)
        news = SmsTemplate(name="Новости", recipient_type="patient", body="{clinic}: новый кабинет УЗИ")
        s.add_all([user, news])
        s.flush()
        day = date(2026, 5, 29)
        m = mailings.save_header(
            s, None, {"period_from": day, "period_to": day, "template_id": news.id}, user, date(2026, 5, 28)
        )
        for i in range(3):
            mailings.add_row(s, m, {"phone": f"8 903 555-00-0{i}"})
        mailings.start_sending(s, m, user, now=START)
    down = f"http://127.0.0.1:{_closed_port()}"
    cfg = dataclasses.replace(
        sms_config, pbx=dataclasses.replace(sms_config.pbx, control_url=down, control_token="t")
    )

    jobs.send_due(JobContext(cfg, sessions))

    with sessions() as s:
        assert set(s.scalars(select(SmsMessage.state))) == {"sent"}
        assert s.scalars(select(SmsMailing.state)).one() == MAILING_SENT
    assert len(sms.messages()) == 3


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_publisher_throttles_and_pauses_after_a_failure() -> None:
    clock, tries = Clock(), []

    def counted(url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        tries.append(body)
        progress._post(url, body, headers)  # the real POST, to a port nobody listens on

    pub = progress.Publisher(f"http://127.0.0.1:{_closed_port()}", "t", clock=clock, post=counted)
    snap = progress.Progress("mailing", 1, sent=1, failed=0, left=9)
    assert pub.publish(snap, user_ids={1}) is False  # refused: fail-open, no exception
    clock.now += progress.PAUSE_S / 2
    assert pub.publish(snap, user_ids={1}) is False and len(tries) == 1  # paused: not even tried
    assert pub.publish(dataclasses.replace(snap, done=True), user_ids={1}) is False
    assert len(tries) == 2  # the final snapshot is always tried

    ok: list[dict[str, Any]] = []
    pub = progress.Publisher("http://x", "t", clock=clock, post=lambda _u, body, _h: ok.append(body))
    assert pub.publish(snap, user_ids={1}) is True
    clock.now += progress.INTERVAL_S / 2
    assert pub.publish(snap, user_ids={1}) is False  # throttled
    assert pub.publish(progress.Progress("mailing", 2, 0, 0, 5), user_ids={1}) is True  # another job
    assert pub.publish(snap, user_ids={1}, force=True) is True
    clock.now += progress.INTERVAL_S
    assert pub.publish(snap, user_ids={1}) is True
    assert [b["id"] for b in ok] == [1, 2, 1, 1]
