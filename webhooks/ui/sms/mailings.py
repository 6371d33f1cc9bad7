"""«Рассылка СМС» (admin): /sms/mailings, /new, /<id>, /<id>/delete — the mailing documents:
fill from appointments, cost, send, resend the unknown ones, sign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from clinic.inputs import parse_id
from clinic.models import Cabinet, Employee, Patient, Service, SmsMailing
from clinic.services import ValidationError
from clinic.services.settings import read_settings
from clinic.sms import gateway, ledger, mailing_outcomes, mailings, rules
from clinic.sms import templates as template_service
from clinic.smsru import SmsRuError
from webhooks.auth import current_user, require_admin
from webhooks.ui.clinic_time import clinic_now
from webhooks.ui.db import ROW_ID, db
from webhooks.ui.sms.common import masked

mailings_bp = Blueprint("sms_mailings", __name__, url_prefix="/sms/mailings")
mailings_bp.before_request(require_admin)


@mailings_bp.get("")
def mailings_index():  # type: ignore[no-untyped-def]
    items = mailings.list_mailings(db())
    ids = [m.id for m in items]
    counts, outcomes = mailings.row_counts(db(), ids), mailing_outcomes.outcomes(db(), ids)
    return render_template("sms/mailings.html", mailings=items, counts=counts, outcomes=outcomes)


def _choices() -> dict[str, Any]:
    session = db()
    return {
        # a mailing goes to patients: the doctors' and the chief's templates are not offered
        "templates": [t for t in template_service.list_templates(session) if t.recipient_type == "patient"],
        "doctors": session.scalars(
            select(Employee).where(Employee.is_active.is_(True)).order_by(Employee.last_name)
        ).all(),
        "cabinets": session.scalars(
            select(Cabinet).where(Cabinet.is_active.is_(True)).order_by(Cabinet.number)
        ).all(),
        "services": session.scalars(
            select(Service).where(Service.is_active.is_(True)).order_by(Service.name)
        ).all(),
    }


def _header_values(mailing: SmsMailing | None) -> dict[str, str]:
    if mailing is None:
        today = clinic_now(db()).date()
        default = template_service.default_template(db())
        return {
            "period_from": (today + timedelta(days=1)).isoformat(),
            "period_to": (today + timedelta(days=1)).isoformat(),
            "template_id": str(default.id) if default else "",
            "doctor_id": "",
            "cabinet_id": "",
            "service_id": "",
        }
    return {
        "period_from": mailing.period_from.isoformat() if mailing.period_from else "",
        "period_to": mailing.period_to.isoformat() if mailing.period_to else "",
        "template_id": str(mailing.template_id or ""),
        "doctor_id": str(mailing.doctor_id or ""),
        "cabinet_id": str(mailing.cabinet_id or ""),
        "service_id": str(mailing.service_id or ""),
    }


def _render_mailing(
    mailing: SmsMailing | None,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    cost: str = "",
):  # type: ignore[no-untyped-def]
    checks: dict[int, mailings.RowCheck] = {}
    if mailing is not None and mailing.template is not None:
        checks = mailings.check_rows(db(), mailing, now=ledger.utcnow())
    return (
        render_template(
            "sms/mailing_form.html",
            mailing=mailing,
            values=values,
            errors=errors,
            checks=checks,
            skipped=sum(1 for c in checks.values() if c.reason),
            outcome=mailing_outcomes.outcomes(db(), [mailing.id])[mailing.id] if mailing else None,
            resend_warning=mailing_outcomes.RESEND_WARNING,
            cost=cost,
            masked=masked,
            **_choices(),
        ),
        status,
    )


@mailings_bp.route("/new", methods=["GET", "POST"])
def mailing_new():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return _render_mailing(None, _header_values(None), {})
    session = db()
    user = current_user()
    assert user is not None
    try:
        mailing = mailings.save_header(session, None, request.form, user, clinic_now(session).date())
        session.commit()
    except ValidationError as exc:
        session.rollback()
        return _render_mailing(None, dict(request.form), exc.errors, 422)
    flash(f"Документ «Рассылка СМС» № {mailing.number} создан", "success")
    return redirect(url_for("sms_mailings.mailing_edit", mailing_id=mailing.id))


def _row_phones() -> tuple[dict[int, str], set[int]]:
    phones: dict[int, str] = {}
    for key, value in request.form.items():
        row_id = parse_id(key[10:]) if key.startswith("row_phone_") else None
        if row_id is not None:
            phones[row_id] = value
    remove = {row for v in request.form.getlist("remove_row") if (row := parse_id(v)) is not None}
    action = request.form.get("action", "")
    deleted = parse_id(action[11:]) if action.startswith("delete_row:") else None
    if deleted is not None:
        remove.add(deleted)
    return phones, remove


@mailings_bp.route(f"/<{ROW_ID}:mailing_id>", methods=["GET", "POST"])
def mailing_edit(mailing_id: int):  # type: ignore[no-untyped-def]
    session = db()
    mailing = mailings.load(session, mailing_id)
    if mailing is None:
        abort(404)
    if request.method == "GET":
        return _render_mailing(mailing, _header_values(mailing), {})
    user = current_user()
    assert user is not None
    action = request.form.get("action", "save")
    cost = ""
    try:
        if action == "sign":
            mailings.sign(session, mailing, now=datetime.now(UTC))
            session.commit()
            flash(f"Документ № {mailing.number} подписан и закрыт", "success")
            return redirect(url_for("sms_mailings.mailings_index"))
        if action == "resend_unknown":
            confirmed = request.form.get("resend_confirm") == "on"
            queued = mailing_outcomes.resend_unknown(
                session, mailing, user, confirmed=confirmed, now=ledger.utcnow()
            )
            session.commit()
            flash(f"Повторно поставлено в очередь: {queued} СМС с неизвестным результатом", "warning")
            return redirect(url_for("sms_mailings.mailing_edit", mailing_id=mailing_id))
        mailings.save_header(session, mailing, request.form, user, clinic_now(session).date())
        phones, remove = _row_phones()
        mailings.update_rows(session, mailing, phones, remove)
        if action == "fill":
            added = mailings.fill_from_appointments(session, mailing)
            flash(f"Добавлено получателей по записям на приём: {added}", "success")
        elif action == "add_row":
            phone = request.form.get("new_phone", "")
            patient_id = ""
            if phone.strip():
                digits = rules.sms_phone(phone, "new_phone")
                found = session.scalar(select(Patient.id).where(Patient.phone == "+" + digits).limit(1))
                patient_id = str(found or "")
            mailings.add_row(session, mailing, {"phone": phone, "patient_id": patient_id})
        elif action == "cost":
            session.refresh(mailing)
            client = gateway.make_client(current_app.config["MIS"], read_settings(session))
            try:
                total, count_sms = mailings.cost_preview(session, mailing, client, now=ledger.utcnow())
            finally:
                client.close()
            cost = f"{total:.2f} ₽ за {count_sms} СМС"
        elif action == "send":
            session.refresh(mailing)
            summary = mailings.start_sending(session, mailing, user, now=ledger.utcnow())
            flash(_sending_message(summary), "success")
        session.commit()
    except ValidationError as exc:
        session.rollback()
        session.expire_all()
        mailing = mailings.load(session, mailing_id)
        return _render_mailing(mailing, dict(request.form), exc.errors, 422)
    except SmsRuError as exc:
        session.rollback()
        mailing = mailings.load(session, mailing_id)
        flash(masked(f"sms.ru: {exc.text or exc}"), "error")
        return _render_mailing(mailing, dict(request.form), {}, 502)
    if action not in ("cost",):
        if action == "save":
            flash("Документ сохранён", "success")
        return redirect(url_for("sms_mailings.mailing_edit", mailing_id=mailing_id))
    session.expire_all()
    mailing = mailings.load(session, mailing_id)
    return _render_mailing(mailing, _header_values(mailing), {}, cost=cost)


def _sending_message(summary: mailings.SendSummary) -> str:
    parts = [f"Рассылка запущена: {summary.queued} сообщений в очереди отправки"]
    if summary.earlier:
        parts.append(f"{summary.earlier} напоминаний уже были отправлены ранее")
    if summary.skipped:
        parts.append(f"{summary.skipped} строк не отправлено (причины — в таблице)")
    return "; ".join(parts)


@mailings_bp.post(f"/<{ROW_ID}:mailing_id>/delete")
def mailing_delete(mailing_id: int):  # type: ignore[no-untyped-def]
    session = db()
    mailing = mailings.load(session, mailing_id)
    if mailing is None:
        abort(404)
    try:
        mailings.delete_draft(session, mailing)
        session.commit()
    except ValidationError as exc:
        flash(next(iter(exc.errors.values())), "error")
        return redirect(url_for("sms_mailings.mailing_edit", mailing_id=mailing_id))
    flash("Черновик удалён", "success")
    return redirect(url_for("sms_mailings.mailings_index"))
