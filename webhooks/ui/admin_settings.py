"""Blueprint `admin_settings`: «ЛПУ → Параметры» (tabs «Реквизиты», «Сервис», «Безопасность»)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from clinic.models import ClinicSettings
from clinic.security import mask
from clinic.services import ValidationError
from clinic.services.settings import (
    ALL_FIELDS,
    CLEAR_SMS_KEY,
    REQUISITES_FIELDS,
    RUSSIAN_TIMEZONES,
    SECURITY_FIELDS,
    SERVICE_FIELDS,
    get_settings,
    update_settings,
)
from webhooks.auth import current_user, require_admin
from webhooks.ui.db import db
from webhooks.ui.pbx import apply_telephony

bp = Blueprint("admin_settings", __name__, url_prefix="/admin/settings")
bp.before_request(require_admin)

TABS = (
    ("requisites", "Реквизиты", REQUISITES_FIELDS),
    ("service", "Сервис", SERVICE_FIELDS + (CLEAR_SMS_KEY,)),
    ("security", "Безопасность", SECURITY_FIELDS),
)
CHECKBOXES = frozenset({"lockout_enabled", "strong_passwords", CLEAR_SMS_KEY})
SECRET_FIELDS = frozenset({"sms_api_key"})  # never written back into the page


def _tab(raw: str | None) -> str:
    return raw if raw in {key for key, _, _ in TABS} else TABS[0][0]


def _stored_values(row: ClinicSettings) -> dict[str, object]:
    return {field: getattr(row, field) for field in ALL_FIELDS if field not in SECRET_FIELDS}


def _render(
    row: ClinicSettings, values: dict[str, object], errors: dict[str, str], tab: str, status: int = 200
):  # type: ignore[no-untyped-def]
    error_tabs = {key for key, _, fields in TABS if errors.keys() & set(fields)}
    if error_tabs and tab not in error_tabs:
        tab = next(key for key, _, _ in TABS if key in error_tabs)
    zones = list(RUSSIAN_TIMEZONES)
    current_zone = str(values.get("timezone") or "")
    if current_zone and current_zone not in dict(zones):
        zones.append((current_zone, current_zone))
    page = render_template(
        "admin/settings.html",
        tabs=TABS,
        active_tab=tab,
        error_tabs=error_tabs,
        values=values,
        errors=errors,
        sms_key_masked=mask(row.sms_api_key),
        timezones=zones,
    )
    return page, status


@bp.get("")
def edit():  # type: ignore[no-untyped-def]
    row = get_settings(db())
    db().commit()  # keeps the row created on first visit
    return _render(row, _stored_values(row), {}, _tab(request.args.get("tab")))


@bp.post("")
def save():  # type: ignore[no-untyped-def]
    session = db()
    data: dict[str, object] = {}
    for field in ALL_FIELDS + (CLEAR_SMS_KEY,):
        if field in CHECKBOXES:
            data[field] = field in request.form
        else:
            data[field] = request.form.get(field, "")
    tab = _tab(request.form.get("tab"))
    try:
        result = update_settings(session, data)
        session.commit()
    except ValidationError as exc:
        session.rollback()
        entered = {k: v for k, v in data.items() if k not in SECRET_FIELDS}
        return _render(get_settings(session), entered, exc.errors, tab, 422)
    except IntegrityError:
        session.rollback()
        flash("Не удалось сохранить: параметры одновременно изменил другой пользователь. Повторите.", "error")
        return redirect(url_for("admin_settings.edit", tab=tab))
    flash("Параметры сохранены", "success")
    for warning in result.warnings:
        flash(warning, "warning")
    if result.telephony_changed:
        user = current_user()
        apply_telephony(user.id if user else None)
    return redirect(url_for("admin_settings.edit", tab=tab))
