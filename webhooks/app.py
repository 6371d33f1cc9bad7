"""Flask app factory (https://flask.palletsprojects.com/en/stable/patterns/appfactories/)."""

from __future__ import annotations

from flask import Flask, current_app, jsonify, request
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import RequestEntityTooLarge

from clinic.config import Config
from clinic.db import make_engine, make_session_factory
from clinic.pbx_port import PbxApplier, PbxConsole

# The largest body each listener reads (Flask answers 413 past it, before parsing; waitress
# is given the same bound in launcher/serve.py). The UI's forms and the МИС API's JSON stay
# far below 2 MiB; sms.ru's callbacks (up to 100 records) and Mango's are a few KiB.
WEB_MAX_BODY = 2 * 1024 * 1024
HOOKS_MAX_BODY = 256 * 1024


def _too_large(exc: RequestEntityTooLarge):  # type: ignore[no-untyped-def]
    """413: JSON for the webhooks and the API, the Russian error page for the UI."""
    from webhooks.auth import is_token_auth_request

    if is_token_auth_request() or "ui_errors" not in current_app.extensions:
        limit = (request.max_content_length or 0) // 1024
        return jsonify(error=f"тело запроса больше допустимых {limit} КБ"), 413
    from webhooks.ui.errors import error_page

    return error_page(413)


def create_app(
    config: Config,
    *,
    pbx_apply: PbxApplier | None = None,
    pbx_console: PbxConsole | None = None,
    public_only: bool = False,
    session_factory: sessionmaker[Session] | None = None,
) -> Flask:
    """Build the app. `public_only` gives the hooks listener (:55055): public blueprint only."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = config.secret_key
    app.config["MIS"] = config
    app.config["MAX_CONTENT_LENGTH"] = HOOKS_MAX_BODY if public_only else WEB_MAX_BODY
    app.config["MAX_FORM_MEMORY_SIZE"] = app.config["MAX_CONTENT_LENGTH"]
    app.extensions["mis_sessions"] = session_factory or make_session_factory(make_engine(config.database_url))
    app.extensions["mis_pbx_apply"] = pbx_apply
    app.register_error_handler(RequestEntityTooLarge, _too_large)

    from webhooks.public import bp as public_bp

    app.register_blueprint(public_bp)
    if public_only:
        return app

    from webhooks.api import bp as api_bp

    app.register_blueprint(api_bp, url_prefix="/api/v1")

    from webhooks.ui import register_ui

    # Login, scheduler, patients, admin pages; also the session gate and CSRF, which skip
    # the public and api_v1 blueprints (they authenticate by signature / token).
    register_ui(app)

    from webhooks.ui import pbx_console as pbx_console_ui

    pbx_console_ui.register(app, pbx_console)  # «Администрирование → АТС»

    from webhooks.ui import reminders

    reminders.register(app)  # «СМС → Правила напоминаний»

    from webhooks.ui import voice_robot

    voice_robot.register(app)  # «Голосовой робот»: own campaigns, «Не дозвонились», settings
    return app
