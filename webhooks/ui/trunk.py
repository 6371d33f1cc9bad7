"""Blueprint `trunk`: «ЛПУ → IP-телефония → Транк» (admin only), the outbound trunk that
click-to-call and incoming calls use. Saving re-applies the Asterisk configuration."""

from __future__ import annotations

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for

from clinic.services import ValidationError
from clinic.services.trunk import CLEAR_PASSWORD, FIELDS, LABELS, current, update_trunk
from webhooks.auth import current_user, require_admin
from webhooks.ui.db import db
from webhooks.ui.pbx import apply_telephony

bp = Blueprint("trunk", __name__, url_prefix="/admin/trunk")
bp.before_request(require_admin)


@bp.get("")
def edit():  # type: ignore[no-untyped-def]
    values = current(db())
    db().commit()
    return render_template("phone/trunk.html", values=values, errors={}, labels=LABELS)


@bp.post("")
def save():  # type: ignore[no-untyped-def]
    data: dict[str, object] = {f: request.form.get(f, "") for f in FIELDS}
    data[CLEAR_PASSWORD] = CLEAR_PASSWORD in request.form
    session = db()
    try:
        changed = update_trunk(session, data)
        session.commit()
    except ValidationError as exc:
        session.rollback()
        entered = {k: v for k, v in data.items() if k != "trunk_password"}
        entered["has_password"] = current(session)["has_password"]
        return render_template("phone/trunk.html", values=entered, errors=exc.errors, labels=LABELS), 422
    flash("Транк сохранён", "success")
    if changed:
        user = current_user()
        apply_telephony(user.id if user else None)
    return redirect(url_for("trunk.edit"))


def register(app: Flask) -> None:
    from webhooks.ui.menu import GROUP_ADMIN, add_menu_item

    app.register_blueprint(bp)
    add_menu_item(app, "Транк", "trunk.edit", admin_only=True, group=GROUP_ADMIN)
