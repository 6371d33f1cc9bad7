"""Security headers on every UI response.

The pages load scripts only from our static files (no inline script, no inline handler), so
the Content-Security-Policy forbids everything else; inline `style` attributes stay allowed
(the scheduler positions its blocks with them, and CSS cannot run code). Scripts connect
to the web app itself and to exactly one other origin: ari_app's events listener (the live
call events, `Config.events_url`); the softphone window alone adds Asterisk's websocket.
Pages carry patient data, so no browser or proxy may keep them (no-store); static files may
be cached.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from werkzeug.wrappers import Response

from clinic.config import Config


def content_security_policy(events_url: str | None, extra_connect: tuple[str, ...] = ()) -> str:
    """The policy, with `connect-src` opened to the events listener's origin only (none
    for an app built without a Config, as some tests build it), plus `extra_connect` on the
    one page that needs more (the softphone window: Asterisk's websocket origin)."""
    parts = urlsplit(events_url or "")
    connect = f"'self' {parts.scheme}://{parts.netloc}" if parts.netloc else "'self'"
    for origin in extra_connect:
        connect += f" {origin}"
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "media-src 'self' blob:",
            f"connect-src {connect}",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def policy_of(config: Config) -> str:
    return content_security_policy(config.events_url)


HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _secure_headers(response: Response) -> Response:
    from webhooks.auth import is_token_auth_request

    if is_token_auth_request():
        return response  # the API and the webhooks answer machines, with their own headers
    response.headers.setdefault("Content-Security-Policy", current_app.config["MIS_CSP"])
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def init_headers(app: Flask) -> None:
    config = app.config.get("MIS")
    app.config["MIS_CSP"] = policy_of(config) if config else content_security_policy(None)
    app.after_request(_secure_headers)
