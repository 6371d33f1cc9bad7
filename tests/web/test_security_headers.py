"""Security headers: a CSP the pages satisfy, no framing, no caching of patient pages
(issue 12, point 4)."""

from __future__ import annotations

from flask import Flask

from webhooks.ui.headers import CONTENT_SECURITY_POLICY

from .support import Web


def test_scripts_come_only_from_our_files() -> None:
    directives = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


def test_pages_carry_the_policy_and_are_not_stored(registrar_web: Web) -> None:
    for url in ("/login", "/schedule", "/patients"):
        response = registrar_web.get(url)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, url
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
