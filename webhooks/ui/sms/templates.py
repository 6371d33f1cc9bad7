"""«Шаблоны для отправки СМС» (admin): /sms/templates, /new, /<id>, /<id>/delete, /preview."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from clinic.models import RECIPIENT_TYPES, SmsMailing, SmsTemplate
from clinic.services import ValidationError
from clinic.services.settings import read_settings
from clinic.sms import templates as template_service
from clinic.sms import templating
from webhooks.auth import require_admin
from webhooks.ui.db import ROW_ID, db
from webhooks.ui.sms.common import json_field

templates_bp = Blueprint("sms_templates", __name__, url_prefix="/sms/templates")
templates_bp.before_request(require_admin)


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
    body = json_field("body")
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
