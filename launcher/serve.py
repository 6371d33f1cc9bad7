"""Serve the Flask app with waitress (a production WSGI server; Flask's dev server is not)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from waitress import serve

from clinic.config import Config

log = logging.getLogger(__name__)


def build_app(config: Config, *, public_only: bool):  # type: ignore[no-untyped-def]
    from clinic.db import make_engine, make_session_factory
    from webhooks.app import create_app

    factory = make_session_factory(make_engine(config.database_url))
    applier = None
    if not public_only:
        from asterisk_conf.apply import make_applier

        applier = make_applier(config, factory)
    return create_app(config, pbx_apply=applier, public_only=public_only, session_factory=factory)


def serve_web(config: Config, *, public_only: bool, port: int) -> None:
    app = build_app(config, public_only=public_only)
    what, host = ("hooks", config.hooks_host) if public_only else ("web", config.web_host)
    log.info("%s listening on http://%s:%d", what, host, port)
    serve(app, host=host, port=port, **waitress_options(app))


def waitress_options(app: Flask) -> dict[str, Any]:
    # waitress refuses a larger body itself, before buffering it (Flask's limit is the same).
    return {"threads": 8, "ident": "mis-telephony", "_quiet": True,
            "max_request_body_size": app.config["MAX_CONTENT_LENGTH"]}
