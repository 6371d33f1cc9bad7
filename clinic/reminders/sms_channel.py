"""The SMS channel of reminder rules: the rule's template filled from the appointment, a
ledger row per reminder under its own key, then one batched dispatch through sms.ru.

The key `reminder:<appointment>:<visit time>:rule:<rule>` makes the ledger refuse a second
SMS of the same rule for the same visit time, whatever the restarts; it starts like the
dialog's and the mailings' reminder key, so the SMS dialog shows it as the visit's reminder
already sent, and the ledger skips it if the visit is cancelled while it waits.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from clinic.models import Appointment, SmsTemplate
from clinic.models.reminders import JOB_PLANNED, JOB_SENT, JOB_SKIPPED, ReminderJob, ReminderRule
from clinic.models.sms import MSG_QUEUED, MSG_SKIPPED
from clinic.reminders.channels import CHANNEL_SMS, Channel, Context
from clinic.services import ValidationError
from clinic.services.settings import read_settings
from clinic.sms import gateway, ledger, templating
from clinic.sms import rules as sms_rules

CONCURRENCY = 4
NO_KEY_RETRY = timedelta(minutes=5)


def ledger_key(job: ReminderJob) -> str:
    return f"reminder:{job.appointment_id}:{job.starts_at:%Y%m%d%H%M}:rule:{job.rule_id}"


def _text(template: SmsTemplate | None, appointment: Appointment, settings: object) -> tuple[str | None, str]:
    """(text, "") or (None, why it cannot go)."""
    if template is None:
        return None, "Шаблон правила удалён: напоминание не отправлено"
    values = templating.appointment_values(appointment, settings, appointment.patient)  # type: ignore[arg-type]
    if missing := templating.missing_fields(template.body, values):
        return None, f"Не заполнены поля шаблона: {', '.join(missing)}; напоминание не отправлено"
    if found := templating.problems(template.body):
        return None, "Шаблон с ошибкой: " + "; ".join(found)
    text = templating.render(template.body, values)
    if problem := sms_rules.text_problem(text):
        return None, problem
    return text, ""


def dispatch(ctx: Context, job_ids: list[int]) -> None:
    now = ctx.clock()
    to_send: list[int] = []
    with ctx.sessions() as session, session.begin():
        settings = read_settings(session)
        jobs = session.scalars(
            select(ReminderJob)
            .where(ReminderJob.id.in_(job_ids), ReminderJob.state == JOB_PLANNED)
            .order_by(ReminderJob.id)
        ).all()
        if not settings.sms_api_key:  # never dropped: tried again once a key is set
            for job in jobs:
                job.not_before, job.note = now + NO_KEY_RETRY, gateway.NO_KEY
            return
        api_id = settings.sms_api_key
        for job in jobs:
            rule = session.get(ReminderRule, job.rule_id)
            appointment = session.scalar(
                select(Appointment)
                .options(
                    joinedload(Appointment.patient),
                    joinedload(Appointment.doctor),
                    joinedload(Appointment.cabinet),
                    joinedload(Appointment.service),
                )
                .where(Appointment.id == job.appointment_id)
            )
            assert rule is not None and appointment is not None
            text, why = _text(rule.template, appointment, settings)
            phone = ""
            if text is not None:
                try:
                    phone = sms_rules.sms_phone(appointment.patient.phone)
                except ValidationError:
                    text, why = None, "У пациента нет мобильного телефона: напоминание не отправлено"
            if text is None:
                job.state, job.note, job.done_at = JOB_SKIPPED, why[:300], now
                continue
            draft = ledger.Draft(
                phone=phone,
                text=text,
                key=ledger_key(job),
                source="reminder",
                patient_id=appointment.patient_id,
                appointment_id=appointment.id,
                expires_at=job.expires_at,
            )
            row, created = ledger.queue(session, settings, draft, now=now)
            job.sms_message_id, job.done_at = row.id, now
            if row.state == MSG_SKIPPED:
                job.state, job.note = JOB_SKIPPED, (row.note or "СМС не отправлено")[:300]
            else:
                job.state, job.note = JOB_SENT, "" if created else "СМС этого напоминания уже было в очереди"
                if created and row.state == MSG_QUEUED and row.not_before is None:
                    to_send.append(row.id)
    if not to_send:
        return
    with ctx.sessions() as session:
        settings = read_settings(session)
        session.expunge_all()
    client = gateway.make_client(ctx.config, settings)
    try:
        # rows left queued by a failure here are sent by the worker's sms_send job
        ledger.dispatch_due(
            ctx.sessions, client, api_id=api_id, ids=to_send, concurrency=CONCURRENCY, clock=ctx.clock
        )
    finally:
        client.close()


def _problem(session: object) -> str | None:
    settings = read_settings(session)  # type: ignore[arg-type]
    return None if settings.sms_api_key else gateway.NO_KEY


CHANNEL = Channel(
    key=CHANNEL_SMS, title="СМС", needs_template=True, dispatch=dispatch, withdraw=None, problem=_problem
)
