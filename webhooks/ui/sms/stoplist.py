"""«Стоп-лист СМС» (admin): /sms/stoplist, /<id>/delete — the clinic's own list of numbers
it never sends to."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from clinic.models import SmsStopEntry
from clinic.services import ValidationError
from clinic.sms import rules
from webhooks.auth import require_admin
from webhooks.ui.db import ROW_ID, db

stoplist_bp = Blueprint("sms_stoplist", __name__, url_prefix="/sms/stoplist")
stoplist_bp.before_request(require_admin)


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
