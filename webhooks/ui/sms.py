"""SMS pages.

  sms_send       /sms/send?appointment_id=|patient_id=   «Отправить СМС» (registrar, admin)
                 /sms/appointment/<id>                    the scheduler's context-menu entry
                 /sms/balance                             JSON: the sms.ru balance for the dialog
  sms_templates  /sms/templates, /new, /<id>, /preview     «Шаблоны для отправки СМС» (admin)
  sms_mailings   /sms/mailings, /new, /<id>                «Рассылка СМС» (admin)
  sms_history    /sms/history[?format=csv]                 «История действий по смс» (admin)

Roles are enforced here, on the server; the menu only hides what a user may not open.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from clinic.inputs import parse_id
from clinic.models import (
    MESSAGE_STATES,
    RECIPIENT_TYPES,
    Cabinet,
    Employee,
    Patient,
    Service,
    SmsMailing,
    SmsMessage,
    SmsPhoneFlag,
    SmsStopEntry,
    SmsTemplate,
    User,
)
from clinic.services import ValidationError
from clinic.services.settings import read_settings
from clinic.sms import callback_urls as sms_callbacks
from clinic.sms import gateway, ledger, mailing_outcomes, mailings, rules, sending, templating
from clinic.sms import templates as template_service
from clinic.smsru import SmsRuClient, SmsRuError, mask_text
from clinic.smsru.errors import SmsRuCallbackError, russian_reason
from webhooks.auth import current_user, require_admin
from webhooks.ui.clinic_time import clinic_now
from webhooks.ui.db import ROW_ID, db
from webhooks.ui.errors import json_object_body

send_bp = Blueprint("sms_send", __name__, url_prefix="/sms")
templates_bp = Blueprint("sms_templates", __name__, url_prefix="/sms/templates")
mailings_bp = Blueprint("sms_mailings", __name__, url_prefix="/sms/mailings")
history_bp = Blueprint("sms_history", __name__, url_prefix="/sms/history")
stoplist_bp = Blueprint("sms_stoplist", __name__, url_prefix="/sms/stoplist")
callbacks_bp = Blueprint("sms_callbacks", __name__, url_prefix="/sms/callbacks")
for _admin in (templates_bp, mailings_bp, history_bp, stoplist_bp, callbacks_bp):
    _admin.before_request(require_admin)


def _local(value: datetime | None) -> str:
    """A UTC timestamp from the ledger in the clinic's time zone, for pages and CSV."""
    if value is None:
        return ""
    zone = rules.zone(read_settings(db()))
    return rules.as_aware(value).astimezone(zone).strftime("%d.%m.%Y %H:%M:%S")


def _api_id() -> str:
    return read_settings(db()).sms_api_key or ""


def _masked(text: str | None) -> str:
    key = _api_id()
    return mask_text(text or "", key) if key else (text or "")


# -- «Отправить СМС» --------------------------------------------------------------------


@send_bp.get(f"/appointment/<{ROW_ID}:appointment_id>")
def appointment(appointment_id: int):  # type: ignore[no-untyped-def]
    return redirect(url_for("sms_send.dialog", appointment_id=appointment_id))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-][0-9 ()\-.,]*")


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet cannot run: one starting like a formula (=HYPERLINK(…), +cmd,
    -, @, tab, CR) gets a leading apostrophe (OWASP's CSV-injection advice), except a plain
    signed number such as a phone «+79161234567» or a cost «-1.5», which runs nothing."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _int_arg(name: str) -> int | None:
    raw = request.values.get(name, "").strip()
    if not raw:
        return None
    if raw == "0":
        return 0  # «без записи»
    number = parse_id(raw)
    if number is None:
        abort(404)
    return number


@send_bp.route("/send", methods=["GET", "POST"])
def dialog():  # type: ignore[no-untyped-def]
    """«Отправить СМС»: everything that decides the send is shown before «Отправить» (the
    visit, the final text, the phone, the balance, why it cannot go, an earlier reminder);
    one dialog makes one SMS, and pressing twice never makes two."""
    appointment_id, patient_id = _int_arg("appointment_id"), _int_arg("patient_id")
    to = request.values.get("to", "patient").strip() or "patient"
    data = sending.dialog_data(db(), appointment_id=appointment_id, patient_id=patient_id, to=to)
    if data is None:
        abort(404)
    if request.method == "GET":
        values = {"text": data.text, "phone": data.phone, "key": uuid.uuid4().hex}
        return _render_dialog(data, to, values)
    values = {k: request.form.get(k, "") for k in ("text", "phone", "key")}
    values["key"] = values["key"] or uuid.uuid4().hex
    try:
        result, notice = _send_from_dialog(data, values)
    except ValidationError as exc:
        return _render_dialog(data, to, values, exc.errors, status=422)
    return _render_dialog(data, to, values, result=result, notice=notice)


def _send_from_dialog(data: sending.DialogData, values: dict[str, str]) -> tuple[SmsMessage, str]:
    """Refuse what the dialog showed as impossible, then send; (the message, a notice when
    nothing new was sent because this very SMS exists already)."""
    if data.to_patient and (
        blockers := sending.patient_blockers(db(), data.patient, data.appointment, values["phone"])
    ):
        raise ValidationError({"send": "Отправка невозможна: " + "; ".join(blockers)})
    if data.missing and values["text"].strip() == data.text.strip():
        raise ValidationError(
            {"text": f"В тексте не заполнены поля шаблона ({', '.join(data.missing)}): допишите текст"}
        )
    repeat_of = _confirmed_repeat(data)
    user = current_user()
    msg_id, created = sending.send_single(
        current_app.extensions["mis_sessions"],
        current_app.config["MIS"],
        phone=values["phone"],
        text=values["text"],
        key=f"ui:{values['key']}",
        user_id=user.id if user else None,
        # an SMS to the doctor is not the patient's: no consent rule, no reminder mark
        patient_id=data.patient.id if data.patient and data.to_patient else None,
        appointment_id=data.appointment.id if data.appointment and data.to_patient else None,
        reminder=data.is_reminder,
        repeat_of=repeat_of,
    )
    db().expire_all()
    result = db().get(SmsMessage, msg_id)
    assert result is not None
    if created:
        return result, ""
    if data.is_reminder:
        return result, "Напоминание по этой записи уже есть: повторно не отправлено"
    return result, "Это сообщение уже отправлено (повторное нажатие): второе СМС не отправлено"


def _confirmed_repeat(data: sending.DialogData) -> int | None:
    """The earlier reminder a repeat was confirmed for. A registrar who saw it (the form's
    `seen`) must tick «Отправить повторно»; one that appeared after the dialog opened (a
    second click, a colleague, a mailing) is simply shown, never doubled."""
    earlier = data.already_sent if data.is_reminder else None
    if earlier is None or request.form.get("seen", "") != str(earlier.id):
        return None
    if request.form.get("repeat") != "1":
        raise ValidationError(
            {
                "repeat": "Напоминание по этой записи уже отправлено: чтобы отправить его ещё раз, "
                "отметьте «Отправить повторно»"
            }
        )
    return earlier.id


def _render_dialog(
    data: sending.DialogData,
    to: str,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    *,
    status: int = 200,
    result: SmsMessage | None = None,
    notice: str = "",
):  # type: ignore[no-untyped-def]
    errors = errors or {}
    page = render_template(
        "sms/send.html",
        data=data,
        to=to,
        values=values,
        errors=errors,
        general_errors=[v for k, v in errors.items() if k not in ("text", "phone", "sms_api_key")],
        result=result,
        notice=notice,
        answer=_masked(result.gateway_answer) if result else "",
        text_info=templating.preview(values["text"]),
    )
    return page, status


@send_bp.get("/balance")
def balance():  # type: ignore[no-untyped-def]
    settings = read_settings(db())
    try:
        client = gateway.make_client(current_app.config["MIS"], settings, read_timeout=10.0)
    except ValidationError as exc:
        return jsonify(error=next(iter(exc.errors.values()))), 200
    try:
        value = client.balance()
    except SmsRuError as exc:
        return jsonify(error=mask_text(f"Баланс не получен: {russian_reason(exc)}", settings.sms_api_key))
    finally:
        client.close()
    return jsonify(balance=f"{value:.2f}")


def _json_field(name: str) -> str:
    """One text field of a small JSON body; a body that is not a JSON object is a 400."""
    value = json_object_body().get(name, "")
    return (value if isinstance(value, str) else "")[:5000]


@send_bp.post("/count")
def count():  # type: ignore[no-untyped-def]
    """Characters and SMS parts of a text (the dialog's counter)."""
    text = _json_field("text")
    info = templating.preview(text)
    return jsonify(chars=info.chars, parts=info.parts, too_long=info.too_long)


# -- «Шаблоны для отправки СМС» --------------------------------------------------------


@templates_bp.get("")
def templates_index():  # type: ignore[no-untyped-def]
    return render_template("sms/templates.html", templates=template_service.list_templates(db()))


@templates_bp.route("/new", methods=["GET", "POST"], defaults={"template_id": None})
@templates_bp.route(f"/<{ROW_ID}:template_id>", methods=["GET", "POST"])
def template_edit(template_id: int | None):  # type: ignore[no-untyped-def]
    session = db()
    template = session.get(SmsTemplate, template_id) if template_id else None
    if template_id and template is None:
        abort(404)
    errors: dict[str, str] = {}
    if template is not None:
        values: dict[str, Any] = {
            "name": template.name,
            "recipient_type": template.recipient_type,
            "is_default": template.is_default,
            "body": template.body,
        }
    else:
        values = {"name": "", "recipient_type": "patient", "is_default": False, "body": ""}
    status = 200
    if request.method == "POST":
        values = {
            "name": request.form.get("name", ""),
            "recipient_type": request.form.get("recipient_type", ""),
            "is_default": "is_default" in request.form,
            "body": request.form.get("body", ""),
        }
        try:
            saved = template_service.save_template(session, template, values)
            session.commit()
        except ValidationError as exc:
            session.rollback()
            errors, status = exc.errors, 422
        else:
            flash(f"Шаблон «{saved.name}» сохранён", "success")
            return redirect(url_for("sms_templates.template_edit", template_id=saved.id))
    settings = read_settings(session)
    sample = templating.preview(templating.render(values["body"], templating.sample_values(settings)))
    return (
        render_template(
            "sms/template_form.html",
            template=template,
            values=values,
            errors=errors,
            placeholders=templating.PLACEHOLDERS,
            recipient_types=RECIPIENT_TYPES,
            sample=sample,
        ),
        status,
    )


@templates_bp.post("/preview")
def template_preview():  # type: ignore[no-untyped-def]
    body = _json_field("body")
    settings = read_settings(db())
    info = templating.preview(templating.render(body, templating.sample_values(settings)))
    return jsonify(
        text=info.text,
        chars=info.chars,
        parts=info.parts,
        too_long=info.too_long,
        problems=templating.problems(body),
    )


@templates_bp.post(f"/<{ROW_ID}:template_id>/delete")
def template_delete(template_id: int):  # type: ignore[no-untyped-def]
    session = db()
    template = session.get(SmsTemplate, template_id)
    if template is None:
        abort(404)
    used = session.scalar(select(SmsMailing.id).where(SmsMailing.template_id == template_id).limit(1))
    if used is not None:
        flash("Шаблон используется в документах «Рассылка СМС»: удалить нельзя", "error")
        return redirect(url_for("sms_templates.template_edit", template_id=template_id))
    session.delete(template)
    session.commit()
    flash("Шаблон удалён", "success")
    return redirect(url_for("sms_templates.templates_index"))


# -- «Рассылка СМС» --------------------------------------------------------------------


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
            masked=_masked,
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
        flash(_masked(f"sms.ru: {exc.text or exc}"), "error")
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


# -- «История действий по смс» ---------------------------------------------------------

GROUPS = {
    "user": "Пользователь",
    "mailing": "Документ",
    "day": "Дата отправки",
    "phone": "Номер телефона",
    "patient": "Пациент",
    "state": "Состояние",
    "delivery": "Статус доставки",
}
DELIVERY_FILTERS = {"delivered": "Доставлено", "failed": "Не доставлено", "pending": "Ожидает"}
HISTORY_LIMIT = 1000


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _history_rows(f: dict[str, str]) -> list[SmsMessage]:
    session = db()
    zone = rules.zone(read_settings(session))
    query = (
        select(SmsMessage)
        .options(joinedload(SmsMessage.user), joinedload(SmsMessage.patient), joinedload(SmsMessage.mailing))
        .order_by(SmsMessage.created_at.desc(), SmsMessage.id.desc())
    )
    if day := _day(f["date_from"]):
        query = query.where(
            SmsMessage.created_at >= datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        )
    if day := _day(f["date_to"]):
        end = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(days=1)
        query = query.where(SmsMessage.created_at < end.astimezone(UTC))
    if (user_id := parse_id(f["user"])) is not None:
        query = query.where(SmsMessage.user_id == user_id)
    if f["patient"]:
        like = f"%{f['patient']}%"
        digits = "".join(ch for ch in f["patient"] if ch.isdigit())
        conds = [Patient.last_name.ilike(like), Patient.first_name.ilike(like)]
        if len(digits) >= 4:
            conds.append(SmsMessage.phone.like(f"%{digits[-10:]}%"))
        query = query.outerjoin(Patient, Patient.id == SmsMessage.patient_id).where(or_(*conds))
    if f["state"] in MESSAGE_STATES:
        query = query.where(SmsMessage.state == f["state"])
    if f["delivery"] == "delivered":
        query = query.where(SmsMessage.delivery_code.in_((103, 110)))
    elif f["delivery"] == "failed":
        query = query.where(SmsMessage.delivery_code.in_((104, 105, 106, 107, 108, 150)))
    elif f["delivery"] == "pending":
        query = query.where(SmsMessage.state == "sent", SmsMessage.delivery_final.is_(False))
    return list(session.scalars(query.limit(HISTORY_LIMIT if f["format"] != "csv" else 200000)).unique())


def _history_cells(row: SmsMessage) -> dict[str, str]:
    return {
        "user": (row.user.full_name or row.user.login)
        if row.user
        else ("МИС (API)" if row.source == "api" else ""),
        "mailing": f"Рассылка СМС № {row.mailing.number}" if row.mailing else "",
        "sent": _local(row.sent_at or row.created_at),
        "day": _local(row.sent_at or row.created_at)[:10],
        "text": row.text,
        "phone": "+" + row.phone,
        "answer": _masked(row.gateway_answer or row.note),
        "patient": row.patient.full_name if row.patient else "",
        "state": row.state_title + (f": {row.note}" if row.note and row.state != "sent" else ""),
        "delivery": row.delivery_text or ("Ожидает" if row.state == "sent" else ""),
        "cost": f"{row.cost:.2f}" if row.cost is not None else "",
    }


@history_bp.get("")
def history():  # type: ignore[no-untyped-def]
    f = {
        k: request.args.get(k, "").strip()[:100]
        for k in ("date_from", "date_to", "user", "patient", "state", "delivery", "group", "format")
    }
    rows = _history_rows(f)
    cells = [_history_cells(r) for r in rows]
    if f["format"] == "csv":
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";")
        header = [
            "Пользователь",
            "Документ",
            "Дата отправки",
            "Текст",
            "Номер телефона",
            "Ответ",
            "Пациент",
            "Состояние",
            "Статус доставки",
            "Стоимость",
        ]
        writer.writerow(header)
        for c in cells:
            writer.writerow(
                safe_cell(value)
                for value in [
                    c["user"],
                    c["mailing"],
                    c["sent"],
                    c["text"],
                    c["phone"],
                    c["answer"],
                    c["patient"],
                    c["state"],
                    c["delivery"],
                    c["cost"],
                ]
            )
        return Response(
            "\ufeff" + out.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": "attachment; filename=sms-history.csv"},
        )
    groups: list[tuple[str, list[dict[str, str]]]] = []
    if f["group"] in GROUPS:
        index: dict[str, list[dict[str, str]]] = {}
        for c in cells:
            index.setdefault(c[f["group"]] or "—", []).append(c)
        groups = sorted(index.items())
    else:
        groups = [("", cells)]
    users = db().scalars(select(User).order_by(User.login)).all()
    return render_template(
        "sms/history.html",
        f=f,
        groups=groups,
        total=len(cells),
        limit=HISTORY_LIMIT,
        users=users,
        states=MESSAGE_STATES,
        deliveries=DELIVERY_FILTERS,
        group_choices=GROUPS,
    )


# -- our stop list ----------------------------------------------------------------------


@stoplist_bp.route("", methods=["GET", "POST"])
def stoplist():  # type: ignore[no-untyped-def]
    """«Стоп-лист СМС»: numbers the clinic never sends to (checked before every send)."""
    session = db()
    errors: dict[str, str] = {}
    values = {"phone": "", "note": ""}
    status = 200
    if request.method == "POST":
        values = {"phone": request.form.get("phone", ""), "note": request.form.get("note", "").strip()[:200]}
        try:
            phone = rules.sms_phone(values["phone"])
        except ValidationError as exc:
            errors, status = exc.errors, 422
        else:
            if session.scalar(select(SmsStopEntry.id).where(SmsStopEntry.phone == phone)) is None:
                session.add(SmsStopEntry(phone=phone, note=values["note"]))
                session.commit()
            flash(f"Номер +{phone} в стоп-листе: СМС на него не отправляются", "success")
            return redirect(url_for("sms_stoplist.stoplist"))
    entries = session.scalars(select(SmsStopEntry).order_by(SmsStopEntry.phone)).all()
    return render_template("sms/stoplist.html", entries=entries, values=values, errors=errors), status


@stoplist_bp.post(f"/<{ROW_ID}:entry_id>/delete")
def stoplist_delete(entry_id: int):  # type: ignore[no-untyped-def]
    session = db()
    entry = session.get(SmsStopEntry, entry_id)
    if entry is None:
        abort(404)
    session.delete(entry)
    session.commit()
    flash(f"Номер +{entry.phone} убран из стоп-листа", "success")
    return redirect(url_for("sms_stoplist.stoplist"))


# -- «Отчёты о доставке»: the status-callback URLs registered at sms.ru ---------------------


def _suggested_callback_url() -> str:
    config = current_app.config["MIS"]
    return f"http://{config.hooks_host}:{config.hooks_port}/smsru/callback"


@callbacks_bp.route("", methods=["GET", "POST"])
def callbacks():  # type: ignore[no-untyped-def]
    """What sms.ru calls with delivery statuses (callback/get, callback/add, callback/del)."""
    settings = read_settings(db())
    errors: dict[str, str] = {}
    values = {"url": _suggested_callback_url()}
    status = 200
    try:
        client = gateway.make_client(current_app.config["MIS"], settings, read_timeout=10.0)
    except ValidationError as exc:
        no_key = next(iter(exc.errors.values()))
        return render_template(
            "sms/callbacks.html", registered=None, values=values, errors={}, problem=no_key
        )
    try:
        if request.method == "POST":
            values = {"url": request.form.get("url", "").strip()}
            try:
                done = _change_callback(client, request.form.get("action", "add"), values["url"])
            except ValidationError as exc:
                errors, status = exc.errors, 422
            except SmsRuCallbackError as exc:  # 901/902: sms.ru refused this address
                errors, status = {"url": russian_reason(exc)}, 422
            else:
                flash(done, "success")
                return redirect(url_for("sms_callbacks.callbacks"))
        registered, problem = client.callback_get(), ""
    except SmsRuError as exc:
        registered = None
        problem = mask_text(f"Запрос к sms.ru не выполнен: {russian_reason(exc)}", settings.sms_api_key)
        status = 502 if status == 200 and request.method == "POST" else status
    finally:
        client.close()
    page = render_template(
        "sms/callbacks.html", registered=registered, values=values, errors=errors, problem=problem
    )
    return page, status


def _change_callback(client: SmsRuClient, action: str, raw_url: str) -> str:
    """callback/add or callback/del for a checked address; returns the message for the admin."""
    url = sms_callbacks.clean_url(raw_url)
    if action == "delete":
        client.callback_del(url)
        return f"sms.ru больше не присылает отчёты на {url}"
    client.callback_add(url)
    return f"sms.ru будет присылать отчёты о доставке на {url}"


def register(app: Flask) -> None:
    """Blueprints, menu entries and the scheduler's context-menu action (from register_ui)."""
    from webhooks.ui.menu import GROUP_SMS, add_appointment_action, add_menu_item

    for blueprint in (send_bp, templates_bp, mailings_bp, history_bp, stoplist_bp, callbacks_bp):
        app.register_blueprint(blueprint)
    add_menu_item(app, "Рассылка СМС", "sms_mailings.mailings_index", admin_only=True, group=GROUP_SMS)
    add_menu_item(app, "Шаблоны СМС", "sms_templates.templates_index", admin_only=True, group=GROUP_SMS)
    add_menu_item(app, "История СМС", "sms_history.history", admin_only=True, group=GROUP_SMS)
    add_menu_item(app, "Стоп-лист СМС", "sms_stoplist.stoplist", admin_only=True, group=GROUP_SMS)
    add_menu_item(app, "Отчёты о доставке", "sms_callbacks.callbacks", admin_only=True, group=GROUP_SMS)
    add_appointment_action(app, "Отправить СМС", "sms_send.appointment")
    app.jinja_env.globals["sms_phone_flag"] = _phone_flag


def _phone_flag(patient: Patient) -> SmsPhoneFlag | None:
    """For the patient card: the flag of a number sms.ru could not deliver to."""
    if not patient.phone:
        return None
    return db().scalar(select(SmsPhoneFlag).where(SmsPhoneFlag.phone == patient.phone.lstrip("+")))
