"""Worker jobs: recover stale claims, send due messages, close finished mailings, poll statuses."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from clinic import progress
from clinic.db import transaction
from clinic.models import SmsMailing, SmsMailingRow, SmsMessage
from clinic.models.sms import MAILING_SENDING, MSG_FAILED, MSG_QUEUED, MSG_SENDING, MSG_SENT, MSG_UNKNOWN
from clinic.services.settings import read_settings
from clinic.sms import delivery, gateway, ledger, mailings
from clinic.worker.jobs import Job, JobContext

log = logging.getLogger("clinic.sms")

CONCURRENCY = 8


@dataclass
class _Watched:
    author_id: int | None
    started_at: datetime  # aware UTC, when this worker first saw the mailing sending
    started_mono: float
    done_at_start: int  # sent + failed then: the rate counts this run's work only
    last: tuple[int, int, int] | None = None  # (sent, failed, left) last published


@dataclass
class MailingProgress:
    """The live progress of the mailings being sent («Отправляется»), for their author and
    the admins: counted from the ledger rows the mailing's rows link to, published after a
    batch (throttled by the publisher) and at the end of every run."""

    sessions: sessionmaker[Session]
    publisher: progress.Publisher
    watched: dict[int, _Watched] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def look(self) -> None:
        """Start watching the mailings now sending (one small query when none is)."""
        with self.sessions() as session:
            sending = session.execute(
                select(SmsMailing.id, SmsMailing.author_id).where(SmsMailing.state == MAILING_SENDING)
            ).all()
        fresh = [(mid, author) for mid, author in sending if mid not in self.watched]
        counts = self._counts([mid for mid, _ in fresh]) if fresh else {}
        with self.lock:
            for mid, author in fresh:
                sent, failed, _left = counts.get(mid, (0, 0, 0))
                self.watched[mid] = _Watched(author, ledger.utcnow(), time.monotonic(), sent + failed)

    def after_batch(self) -> None:
        if any(self.publisher.due("mailing", mid) for mid in list(self.watched)):
            self.report()

    def report(self, *, final: bool = False) -> None:
        """Publish each watched mailing (throttled). `final`, at the end of a run: every
        mailing whose counts moved since its last snapshot goes unthrottled, a finished
        one goes as `done` and is no longer watched."""
        ids = list(self.watched)
        if not ids:
            return
        counts = self._counts(ids)
        states = dict(self._states(ids)) if final else {}
        for mid in ids:
            watch = self.watched[mid]
            sent, failed, left = counts.get(mid, (0, 0, 0))
            done = final and states.get(mid) != MAILING_SENDING
            if final and not done and watch.last == (sent, failed, left):
                continue
            elapsed = time.monotonic() - watch.started_mono
            rate = max(0, sent + failed - watch.done_at_start) / elapsed if elapsed > 0 else 0.0
            snapshot = progress.Progress("mailing", mid, sent, failed, left, watch.started_at, rate, done)
            users = {watch.author_id} if watch.author_id else set()
            if self.publisher.publish(snapshot, user_ids=users, admins=True, force=final):
                watch.last = (sent, failed, left)
            if done:
                with self.lock:
                    self.watched.pop(mid, None)

    def _counts(self, ids: list[int]) -> dict[int, tuple[int, int, int]]:
        """mailing id -> (sent, failed or unknown, queued or sending)."""
        out: dict[int, list[int]] = {}
        with self.sessions() as session:
            rows = session.execute(
                select(SmsMailingRow.mailing_id, SmsMessage.state, func.count())
                .join(SmsMessage, SmsMessage.id == SmsMailingRow.message_id)
                .where(SmsMailingRow.mailing_id.in_(ids))
                .group_by(SmsMailingRow.mailing_id, SmsMessage.state)
            ).all()
        slot = {MSG_SENT: 0, MSG_FAILED: 1, MSG_UNKNOWN: 1, MSG_QUEUED: 2, MSG_SENDING: 2}
        for mid, state, n in rows:
            if state in slot:
                out.setdefault(mid, [0, 0, 0])[slot[state]] += n
        return {mid: (c[0], c[1], c[2]) for mid, c in out.items()}

    def _states(self, ids: list[int]) -> list[tuple[int, str]]:
        with self.sessions() as session:
            return [
                (i, s)
                for i, s in session.execute(
                    select(SmsMailing.id, SmsMailing.state).where(SmsMailing.id.in_(ids))
                )
            ]


_watches: dict[int, MailingProgress] = {}


def _watch(ctx: JobContext) -> MailingProgress:
    """One per sessions factory, kept between runs: the rate spans the whole sending."""
    key = id(ctx.sessions)
    watch = _watches.get(key)
    if watch is None or watch.sessions is not ctx.sessions:
        pub = progress.publisher(ctx.config.pbx.control_url, ctx.config.pbx.control_token)
        watch = _watches[key] = MailingProgress(ctx.sessions, pub)
    return watch


def _safely(fn: object) -> None:
    try:
        fn()  # type: ignore[operator]
    except Exception:  # noqa: BLE001 - progress never stops the sending
        log.exception("СМС: ход рассылки не опубликован")


def send_due(ctx: JobContext) -> None:
    now = ledger.utcnow()
    ledger.recover_stale(ctx.sessions, lease_s=ctx.config.sms_sending_lease_s, now=now)
    with ctx.sessions() as session:
        settings = read_settings(session)
        session.expunge_all()
    watch = _watch(ctx)
    _safely(watch.look)
    if settings.sms_api_key:
        client = gateway.make_client(ctx.config, settings)
        try:
            outcome = ledger.dispatch_due(
                ctx.sessions,
                client,
                api_id=settings.sms_api_key,
                concurrency=CONCURRENCY,
                on_batch=lambda: _safely(watch.after_batch),
            )
        finally:
            client.close()
        if outcome["requests"]:
            log.info("СМС: %s", outcome)
    with transaction(ctx.sessions) as session:
        mailings.finish_sent(session, now=ledger.utcnow())
    _safely(lambda: watch.report(final=True))


def poll_delivery(ctx: JobContext) -> None:
    with ctx.sessions() as session:
        settings = read_settings(session)
        session.expunge_all()
    if not settings.sms_api_key:
        return
    client = gateway.make_client(ctx.config, settings)
    try:
        delivery.poll_statuses(ctx.sessions, client, now=ledger.utcnow())
    finally:
        client.close()


JOBS = (Job("sms_send", 2.0, send_due), Job("sms_delivery_poll", 60.0, poll_delivery))
