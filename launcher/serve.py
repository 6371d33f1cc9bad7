"""Serve the Flask app with waitress (a production WSGI server; Flask's dev server is not)."""

from __future__ import annotations

import logging
import resource
from typing import Any

from flask import Flask
from waitress import serve

from clinic.config import Config

log = logging.getLogger(__name__)


def build_app(config: Config, *, public_only: bool):  # type: ignore[no-untyped-def]
    from clinic.db import make_engine, make_session_factory
    from webhooks.app import create_app

    factory = make_session_factory(make_engine(config.database_url))
    applier = console = None
    if not public_only:
        from asterisk_conf.apply import make_applier
        from asterisk_conf.console import make_console

        applier = make_applier(config, factory)
        console = make_console(config, factory)
    return create_app(config, pbx_apply=applier, pbx_console=console, public_only=public_only,
                      session_factory=factory)


def serve_web(config: Config, *, public_only: bool, port: int) -> None:
    app = build_app(config, public_only=public_only)
    _allow_descriptors(CONNECTION_LIMIT + 200)  # the connections, the database, the logs
    what, host = ("hooks", config.hooks_host) if public_only else ("web", config.web_host)
    log.info("%s listening on http://%s:%d", what, host, port)
    serve(app, host=host, port=port, **waitress_options(app))


# Open connections waitress keeps, idle keep-alives included. Its default, 100, is below what
# forty registrars' browsers hold (several per browser, kept between clicks): past it waitress
# stops accepting and a page waits until an idle one times out (bench/web_load.py saw 8 s).
# An idle connection costs a socket and a few KiB in waitress's poll loop, no thread.
CONNECTION_LIMIT = 2000


def waitress_options(app: Flask) -> dict[str, Any]:
    # waitress refuses a larger body itself, before buffering it (Flask's limit is the same).
    # poll(), not select(): select() cannot watch a descriptor numbered 1024 or above.
    return {"threads": 8, "ident": "mis-telephony", "_quiet": True,
            "max_request_body_size": app.config["MAX_CONTENT_LENGTH"],
            "connection_limit": CONNECTION_LIMIT, "asyncore_use_poll": True}


def _allow_descriptors(wanted: int) -> None:
    """Raise the soft limit on open files towards `wanted` (never above the hard limit): a
    shell's default soft limit, 1024, is below the connection limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
