"""«СМС → Правила напоминаний» (admin only, checked here on the server).

sms_reminders  /sms/reminders                  the rules, with what each has done
               /sms/reminders/new, /<id>       a rule's form and its latest reminders
               /sms/reminders/<id>/delete      POST; a rule that sent something can only be switched off
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from clinic.models import Employee, Service, SmsTemplate, utcnow
from clinic.models.reminders import JOB_STATES, MOMENTS, UNITS, ReminderJob, ReminderRule
from clinic.models.sms import RECIPIENT_PATIENT
from clinic.reminders import channels
from clinic.reminders import rules as rule_service
from clinic.services import ValidationError
from webhooks.auth import require_admin
from webhooks.ui.db import ROW_ID, db

bp = Blueprint("sms_reminders", __name__, url_prefix="/sms/reminders")
bp.before_request(require_admin)

RECENT_SHOWN = 50
FIELDS = (
    "name",
    "channel",
    "moment",
    "offset_value",
    "offset_unit",
    "evening_time",
    "stop_before_min",
    "doctor_id",
    "service_id",
    "department",
    "template_id",
)


def _counts(rule_ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    if not rule_ids:
        return out
    rows = db().execute(
        select(ReminderJob.rule_id, ReminderJob.state, func.count())
        .where(ReminderJob.rule_id.in_(rule_ids))
        .group_by(ReminderJob.rule_id, ReminderJob.state)
    )
    for rule_id, state, n in rows:
        out.setdefault(rule_id, {})[state] = n
    return out


def _problems() -> dict[str, str]:
    """Channel key -> why it cannot work now (shown beside the rules that use it)."""
    found = {}
    for channel in channels.registered():
        if problem := channel.problem(db()):
            found[channel.key] = problem
    return found


@bp.get("")
def index():  # type: ignore[no-untyped-def]
    items = rule_service.list_rules(db())
    return render_template(
        "sms/reminder_rules.html",
        rules=items,
        counts=_counts([r.id for r in items]),
        problems=_problems(),
        title_of=channels.title_of,
        registered={c.key for c in channels.registered()},
        job_states=JOB_STATES,
    )


def _values(rule: ReminderRule | None) -> dict[str, Any]:
    if rule is None:
        return {
            "name": "",
            "is_active": True,
            "channel": "sms",
            "moment": "before",
            "offset_value": "24",
            "offset_unit": "hours",
            "evening_time": "18:00",
            "stop_before_min": "60",
            "doctor_id": "",
            "service_id": "",
            "department": "",
            "template_id": "",
        }
    return {
        "name": rule.name,
        "is_active": rule.is_active,
        "channel": rule.channel,
        "moment": rule.moment,
        "offset_value": str(rule.offset_value),
        "offset_unit": rule.offset_unit,
        "evening_time": rule.evening_time,
        "stop_before_min": str(rule.stop_before_min),
        "doctor_id": str(rule.doctor_id or ""),
        "service_id": str(rule.service_id or ""),
        "department": rule.department,
        "template_id": str(rule.template_id or ""),
    }


def _render_form(
    rule: ReminderRule | None, values: dict[str, Any], errors: dict[str, str], status: int = 200
):  # type: ignore[no-untyped-def]  # noqa: E501
    session = db()
    recent: list[ReminderJob] = []
    if rule is not None:
        recent = list(
            session.scalars(
                select(ReminderJob)
                .options(joinedload(ReminderJob.rule))
                .where(ReminderJob.rule_id == rule.id)
                .order_by(ReminderJob.id.desc())
                .limit(RECENT_SHOWN)
            )
        )
    patients = _patient_names([j.patient_id for j in recent])
    return (
        render_template(
            "sms/reminder_form.html",
            rule=rule,
            values=values,
            errors=errors,
            channels=channels.registered(),
            problems=_problems(),
            moments=MOMENTS,
            units=UNITS,
            # (value, title) pairs for the selects
            doctors=[
                (d.id, d.full_name)
                for d in session.scalars(
                    select(Employee).where(Employee.is_active.is_(True)).order_by(Employee.last_name)
                )
            ],
            services=[
                (s.id, s.name)
                for s in session.scalars(
                    select(Service).where(Service.is_active.is_(True)).order_by(Service.name)
                )
            ],
            departments=[(d, d) for d in rule_service.departments(session)],
            templates=[
                (t.id, t.name)
                for t in session.scalars(
                    select(SmsTemplate)
                    .where(SmsTemplate.recipient_type == RECIPIENT_PATIENT)
                    .order_by(SmsTemplate.name)
                )
            ],
            recent=recent,
            patients=patients,
        ),
        status,
    )


def _patient_names(ids: list[int]) -> dict[int, str]:
    from clinic.models import Patient

    if not ids:
        return {}
    rows = db().scalars(select(Patient).where(Patient.id.in_(set(ids))))
    return {p.id: p.full_name for p in rows}


@bp.route("/new", methods=["GET", "POST"], defaults={"rule_id": None})
@bp.route(f"/<{ROW_ID}:rule_id>", methods=["GET", "POST"])
def edit(rule_id: int | None):  # type: ignore[no-untyped-def]
    session = db()
    rule = session.get(ReminderRule, rule_id) if rule_id else None
    if rule_id and rule is None:
        abort(404)
    if request.method == "GET":
        return _render_form(rule, _values(rule), {})
    values: dict[str, Any] = {key: request.form.get(key, "") for key in FIELDS}
    values["is_active"] = "is_active" in request.form
    try:
        saved = rule_service.save_rule(session, rule, values, now=utcnow())
        session.commit()
    except ValidationError as exc:
        session.rollback()
        return _render_form(rule, values, exc.errors, 422)
    flash(f"Правило «{saved.name}» сохранено", "success")
    return redirect(url_for("sms_reminders.edit", rule_id=saved.id))


@bp.post(f"/<{ROW_ID}:rule_id>/delete")
def delete(rule_id: int):  # type: ignore[no-untyped-def]
    session = db()
    rule = session.get(ReminderRule, rule_id)
    if rule is None:
        abort(404)
    try:
        rule_service.delete_rule(session, rule)
        session.commit()
    except ValidationError as exc:
        session.rollback()
        flash(exc.errors["rule"], "error")
        return redirect(url_for("sms_reminders.edit", rule_id=rule_id))
    flash("Правило удалено", "success")
    return redirect(url_for("sms_reminders.index"))


def register(app: Flask) -> None:
    from webhooks.ui.menu import GROUP_SMS, add_menu_item

    app.register_blueprint(bp)
    add_menu_item(app, "Правила напоминаний", "sms_reminders.index", admin_only=True, group=GROUP_SMS)
