"""Security headers on every UI response.

The pages load scripts only from our static files (no inline script, no inline handler), so
the Content-Security-Policy forbids everything else; inline `style` attributes stay allowed
(the scheduler positions its blocks with them, and CSS cannot run code). Pages carry patient
data, so no browser or proxy may keep them (no-store); static files may be cached.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _secure_headers(response: Response) -> Response:
    from webhooks.auth import is_token_auth_request

    if is_token_auth_request():
        return response  # the API and the webhooks answer machines, with their own headers
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def init_headers(app: Flask) -> None:
    app.after_request(_secure_headers)
