"""«Отправить СМС» (registrar, admin): one SMS from the scheduler or the patient card.

/sms/send?appointment_id=|patient_id=   the dialog
/sms/appointment/<id>                    the scheduler's context-menu entry
/sms/balance                             JSON: the sms.ru balance for the dialog
/sms/count                               JSON: characters and SMS parts of the dialog's text
"""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for

from clinic.inputs import parse_id
from clinic.models import SmsMessage
from clinic.services import ValidationError
from clinic.services.settings import read_settings
from clinic.sms import gateway, sending, templating
from clinic.smsru import SmsRuError, mask_text
from clinic.smsru.errors import russian_reason
from webhooks.auth import current_user
from webhooks.ui.db import ROW_ID, db
from webhooks.ui.sms.common import json_field, masked

send_bp = Blueprint("sms_send", __name__, url_prefix="/sms")


@send_bp.get(f"/appointment/<{ROW_ID}:appointment_id>")
def appointment(appointment_id: int):  # type: ignore[no-untyped-def]
    return redirect(url_for("sms_send.dialog", appointment_id=appointment_id))


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
        answer=masked(result.gateway_answer) if result else "",
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


@send_bp.post("/count")
def count():  # type: ignore[no-untyped-def]
    """Characters and SMS parts of a text (the dialog's counter)."""
    text = json_field("text")
    info = templating.preview(text)
    return jsonify(chars=info.chars, parts=info.parts, too_long=info.too_long)
