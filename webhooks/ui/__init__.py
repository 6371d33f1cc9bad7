"""The registrar/admin web UI: blueprints, session gates, CSRF, error pages, the top menu.

Blueprints (endpoint prefixes) and paths:
  auth            /login, /logout
  schedule        /, /schedule?date=YYYY-MM-DD&doctor=<id>   «Планировщик записи на прием»
  patients        /patients?q=..., /patients/<id>           «Пациенты»
  admin_settings  /admin/settings                            «ЛПУ → Параметры» (admin)
  admin_users     /admin/users, /admin/users/new, /admin/users/<id>, /admin/users/<id>/unlock
                                                             «Пользователи системы» (admin)
"""

from __future__ import annotations

from flask import Flask, request
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import SQLAlchemyError

from clinic.models import USER_ROLES
from clinic.services.settings import read_settings
from webhooks.auth import SESSION_LIFETIME, current_user, init_auth, is_token_auth_request
from webhooks.ui.clinic_time import init_clinic_time
from webhooks.ui.db import db, init_db_session
from webhooks.ui.errors import init_errors
from webhooks.ui.formatting import init_filters
from webhooks.ui.headers import init_headers
from webhooks.ui.menu import GROUP_ADMIN, add_menu_item, visible_menu

csrf = CSRFProtect()


def _csrf_gate() -> None:
    # Flask-WTF's own exemption matches only the exact blueprint; ours also covers
    # blueprints nested under the API, which authenticate with tokens instead of cookies.
    # No endpoint means the request ends in 404/405 anyway; let that answer speak.
    if request.endpoint is not None and not is_token_auth_request():
        csrf.protect()


def _clinic_name() -> str:
    try:
        return read_settings(db()).name
    except SQLAlchemyError:
        db().rollback()
        return "МИС"


def _template_globals() -> dict[str, object]:
    user = current_user()
    return {
        "current_user": user,
        "current_role": USER_ROLES.get(user.role, user.role) if user else "",
        "menu": visible_menu(user),
        "clinic_name": _clinic_name(),
    }


def register_ui(app: Flask) -> None:
    from webhooks.ui import admin_settings, admin_users, login, patients, phone, robot, schedule, sms

    # Flask defines these keys already, so they are set, not defaulted.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SECURE"] = getattr(app.config.get("MIS"), "cookie_secure", False)
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    # A registrar keeps a page open for hours; the token lives as long as the session.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked by _csrf_gate instead

    init_db_session(app)
    init_auth(app)  # before CSRF: an anonymous POST goes to the login page
    csrf.init_app(app)
    app.before_request(_csrf_gate)
    init_errors(app)
    init_filters(app)
    init_clinic_time(app)
    init_headers(app)
    app.context_processor(_template_globals)

    for module in (login, schedule, patients, admin_settings, admin_users):
        app.register_blueprint(module.bp)

    add_menu_item(app, "Планировщик", "schedule.day")
    add_menu_item(app, "Пациенты", "patients.search")
    add_menu_item(app, "ЛПУ → Параметры", "admin_settings.edit", admin_only=True, group=GROUP_ADMIN)
    add_menu_item(app, "Пользователи системы", "admin_users.index", admin_only=True, group=GROUP_ADMIN)
    robot.register(app)  # «Внешние информационные системы», server tasks, exchange log, robot send
    sms.register(app)  # «Отправить СМС», «Шаблоны для отправки СМС», «Рассылка СМС», история
    phone.register(app)  # «Прием по телефону», журнал и пропущенные звонки, всплывающая карточка


__all__ = ["add_menu_item", "csrf", "register_ui"]
