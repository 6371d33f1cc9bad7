"""Blueprint `admin_users`: «Пользователи системы» (tabs «Основное» and «IP-телефония»)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError

from clinic.models import ROLE_REGISTRAR, USER_ROLES, User
from clinic.services import ValidationError
from clinic.services.settings import read_settings
from clinic.services.users import create_user, is_locked, list_users, unlock_user, update_user
from clinic.softphone import DEFAULT_RING, RING_MODES, clean_choice, sip_id_problem
from webhooks.auth import current_user, login_user, require_admin
from webhooks.ui.db import ROW_ID, db
from webhooks.ui.pbx import apply_telephony

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")
bp.before_request(require_admin)

TABS = (
    ("main", "Основное", ("login", "full_name", "role", "is_active", "password")),
    ("telephony", "IP-телефония",
     ("extension", "sip_id", "sip_password", "softphone_ring", "mic_device", "speaker_device")),
)
TEXT_FIELDS = ("login", "full_name", "role", "extension", "sip_id")
SOFTPHONE_FIELDS = ("softphone_ring", "mic_device", "speaker_device")  # clinic/softphone.py
PASSWORD_FIELDS = ("password", "sip_password")  # read from the form, never written back


def _user_or_404(user_id: int) -> User:
    user = db().get(User, user_id)
    if user is None:
        abort(404)
    return user


def _form_data() -> dict[str, object]:
    data: dict[str, object] = {field: request.form.get(field, "") for field in TEXT_FIELDS}
    data["is_active"] = "is_active" in request.form
    for field in PASSWORD_FIELDS:
        data[field] = request.form.get(field, "")
    return data


def _values(user: User | None) -> dict[str, object]:
    if user is None:
        return {
            "login": "",
            "full_name": "",
            "role": ROLE_REGISTRAR,
            "is_active": True,
            "extension": "",
            "sip_id": "",
            "softphone_ring": DEFAULT_RING,
            "mic_device": "",
            "speaker_device": "",
        }
    return {
        "login": user.login,
        "full_name": user.full_name,
        "role": user.role,
        "is_active": user.is_active,
        "extension": user.extension or "",
        "sip_id": user.sip_id or "",
        "softphone_ring": user.softphone_ring or DEFAULT_RING,
        "mic_device": user.mic_device or "",
        "speaker_device": user.speaker_device or "",
    }


def _render(
    user: User | None, values: dict[str, object], errors: dict[str, str], tab: str, status: int = 200
):  # type: ignore[no-untyped-def]
    error_tabs = {key for key, _, fields in TABS if errors.keys() & set(fields)}
    if error_tabs and tab not in error_tabs:
        tab = next(key for key, _, _ in TABS if key in error_tabs)
    page = render_template(
        "admin/user_form.html",
        user=user,
        values=values,
        errors=errors,
        tabs=TABS,
        active_tab=tab,
        error_tabs=error_tabs,
        roles=USER_ROLES,
        ring_modes=RING_MODES,
        locked=bool(user and is_locked(user)),
        sip_password_set=bool(user and user.sip_md5_cred),
        strong_passwords=read_settings(db()).strong_passwords,
    )
    return page, status


def _tab(raw: str | None) -> str:
    return raw if raw in {key for key, _, _ in TABS} else TABS[0][0]


@bp.get("")
def index():  # type: ignore[no-untyped-def]
    return render_template("admin/users.html", users=list_users(db()), roles=USER_ROLES, is_locked=is_locked)


@bp.get("/new")
def new():  # type: ignore[no-untyped-def]
    return _render(None, _values(None), {}, _tab(request.args.get("tab")))


@bp.get(f"/<{ROW_ID}:user_id>")
def edit(user_id: int):  # type: ignore[no-untyped-def]
    user = _user_or_404(user_id)
    return _render(user, _values(user), {}, _tab(request.args.get("tab")))


def _save(user: User | None):  # type: ignore[no-untyped-def]
    session = db()
    data = _form_data()
    tab = _tab(request.form.get("tab"))
    # a field the form did not send keeps its value (a radio group may arrive with none checked)
    current = _values(user)
    choice, softphone_errors = clean_choice({k: request.form.get(k, current[k]) for k in SOFTPHONE_FIELDS})
    if problem := sip_id_problem(str(data.get("sip_id") or "")):
        softphone_errors["sip_id"] = problem
    ring_before = user.softphone_ring if user is not None else DEFAULT_RING
    try:
        saved = create_user(session, data) if user is None else update_user(session, user, data)
        if softphone_errors:
            raise ValidationError(softphone_errors)
        saved.user.softphone_ring = choice.ring
        saved.user.mic_device = choice.mic_device
        saved.user.speaker_device = choice.speaker_device
        session.commit()
    except ValidationError as exc:
        session.rollback()
        entered = {k: v for k, v in data.items() if k not in PASSWORD_FIELDS}
        entered.update({k: request.form.get(k, "") for k in SOFTPHONE_FIELDS})
        return _render(user, entered, {**softphone_errors, **exc.errors}, tab, 422)
    except IntegrityError:
        # Two admins saving the same login or extension at once: the unique index decides.
        session.rollback()
        entered = {k: v for k, v in data.items() if k not in PASSWORD_FIELDS}
        message = "Не удалось сохранить: логин, доб. номер или ID SIP только что занял другой пользователь"
        return _render(user, entered, {"login": message}, tab, 409)
    me = current_user()
    if me is not None and saved.user.id == me.id and "password_hash" in saved.changed:
        login_user(saved.user)  # the new password ends other sessions, not this one
    flash(f"Пользователь «{saved.user.login}» сохранён", "success")
    # which phone rings lives in the dialplan: a new choice is applied like a new extension
    ring_changed = choice.ring != ring_before and saved.user.has_telephony
    if saved.telephony_changed or ring_changed:
        apply_telephony(me.id if me else None)
    return redirect(url_for("admin_users.edit", user_id=saved.user.id, tab=tab))


@bp.post("/new")
def create():  # type: ignore[no-untyped-def]
    return _save(None)


@bp.post(f"/<{ROW_ID}:user_id>")
def update(user_id: int):  # type: ignore[no-untyped-def]
    return _save(_user_or_404(user_id))


@bp.post(f"/<{ROW_ID}:user_id>/unlock")
def unlock(user_id: int):  # type: ignore[no-untyped-def]
    user = _user_or_404(user_id)
    unlock_user(db(), user)
    db().commit()
    flash(f"Пользователь «{user.login}» разблокирован", "success")
    target = request.form.get("back") == "edit"
    return redirect(url_for("admin_users.edit", user_id=user.id) if target else url_for("admin_users.index"))
