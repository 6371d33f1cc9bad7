"""Flask app factory (https://flask.palletsprojects.com/en/stable/patterns/appfactories/)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import make_engine, make_session_factory
from clinic.pbx_port import PbxApplier


def create_app(
    config: Config,
    *,
    pbx_apply: PbxApplier | None = None,
    public_only: bool = False,
    session_factory: sessionmaker[Session] | None = None,
) -> Flask:
    """Build the app. `public_only` gives the hooks listener (:55055): public blueprint only."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = config.secret_key
    app.config["MIS"] = config
    app.extensions["mis_sessions"] = session_factory or make_session_factory(make_engine(config.database_url))
    app.extensions["mis_pbx_apply"] = pbx_apply

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
    return app
