"""Security headers: a CSP the pages satisfy, no framing, no caching of patient pages
(issue 12, point 4)."""

from __future__ import annotations

import dataclasses

from flask import Flask

from clinic.config import Config
from webhooks.ui.headers import content_security_policy, policy_of

from .support import Web


def _directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def test_scripts_come_only_from_our_files() -> None:
    directives = _directives(content_security_policy("http://127.0.0.1:8091"))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


def test_scripts_connect_to_the_web_app_and_the_events_listener_only(config: Config) -> None:
    config = dataclasses.replace(config, events_host="10.0.0.5", events_port=9191)
    assert _directives(policy_of(config))["connect-src"] == "'self' http://10.0.0.5:9191"
    proxied = dataclasses.replace(config, events_public_url="https://pbx.clinic.example/live")
    assert _directives(policy_of(proxied))["connect-src"] == "'self' https://pbx.clinic.example"


def test_pages_carry_the_policy_and_are_not_stored(app: Flask, registrar_web: Web) -> None:
    policy = policy_of(app.config["MIS"])
    assert "connect-src 'self' http://127.0.0.1:8091" in policy  # the default events listener
    for url in ("/login", "/schedule", "/patients"):
        response = registrar_web.get(url)
        assert response.headers["Content-Security-Policy"] == policy, url
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store", url
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_static_files_may_be_cached(anon: Web) -> None:
    response = anon.get("/static/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


def test_machine_endpoints_keep_their_own_headers(app: Flask) -> None:
    response = app.test_client().get("/api/v1/patients")
    assert response.status_code == 401
    assert "Content-Security-Policy" not in response.headers


def test_no_template_has_inline_script() -> None:
    """The policy forbids inline script: every script is a static file."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "webhooks" / "templates"
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=\s*[\"']", re.I)
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.html") if inline.search(p.read_text())]
    assert offenders == []
