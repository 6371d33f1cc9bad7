"""Bearer-token authentication for every /api/v1 call except the OpenAPI document."""

from __future__ import annotations

from contextlib import suppress

from flask import g, request

from clinic.services.api_tokens import authenticate
from webhooks.api import bp
from webhooks.api.common import MAX_BODY_BYTES, ApiError, unit_of_work

PUBLIC_ENDPOINTS = frozenset({"api_v1.openapi_json"})


def _unauthorized(message: str, error: str | None = None) -> ApiError:
    challenge = 'Bearer realm="mis-telephony"' + (f', error="{error}"' if error else "")
    return ApiError(401, message, headers={"WWW-Authenticate": challenge})


@bp.before_request
def _authenticate() -> None:
    # Per request rather than app-wide MAX_CONTENT_LENGTH: the app belongs to other blueprints too.
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, f"Слишком большой запрос: не более {MAX_BODY_BYTES} байт")
    # Flask >= 3.1 also caps chunked bodies this way; on 3.0 the declared length above is all we check.
    with suppress(AttributeError):
        request.max_content_length = MAX_BODY_BYTES
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if not header:
        raise _unauthorized("Нужен токен доступа: заголовок Authorization: Bearer <токен>")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Ожидается заголовок Authorization: Bearer <токен>", "invalid_request")
    with unit_of_work() as session:
        row = authenticate(session, token.strip())
        if row is None:
            raise _unauthorized("Токен недействителен или отозван", "invalid_token")
        g.api_token_id = row.id
