"""Every answer under /api/v1 is JSON, errors included.

Flask routes before it knows the blueprint, so a blueprint's 404/405 handlers never see
unknown paths or wrong methods. Rather than an app-wide handler (which would fight the UI's
own error pages), the blueprint ends with a catch-all route that answers 404 or 405 itself.
"""

from __future__ import annotations

from flask import current_app, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from clinic.services import ValidationError
from clinic.services.schedule import ConflictError, NotFoundError
from webhooks.api import bp
from webhooks.api.common import ApiError, error_response

FALLBACK_ENDPOINT = "api_v1.fallback"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_HTTP_MESSAGES = {
    400: "Некорректный запрос",
    401: "Нужна авторизация",
    404: "Адрес не найден",
    405: "Метод не поддерживается для этого адреса",
    413: f"Слишком большой запрос: не более {1024 * 1024} байт",
    415: "Неподдерживаемый формат тела запроса",
}


def _summary(errors: dict[str, str], limit: int = 5) -> str:
    parts = [f"{name}: {message}" if name else message for name, message in list(errors.items())[:limit]]
    more = len(errors) - limit
    return "Проверьте данные: " + "; ".join(parts) + (f" и ещё {more}" if more > 0 else "")


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):  # type: ignore[no-untyped-def]
    return error_response(exc.status, exc.message, exc.fields, exc.headers)


@bp.errorhandler(ConflictError)
def _conflict(exc: ConflictError):  # type: ignore[no-untyped-def]
    return error_response(409, _summary(exc.errors), exc.errors)


@bp.errorhandler(ValidationError)
def _invalid(exc: ValidationError):  # type: ignore[no-untyped-def]
    return error_response(422, _summary(exc.errors), exc.errors)


@bp.errorhandler(NotFoundError)
def _not_found(exc: NotFoundError):  # type: ignore[no-untyped-def]
    return error_response(404, str(exc))


@bp.errorhandler(IntegrityError)
def _integrity(exc: IntegrityError):  # type: ignore[no-untyped-def]
    # Only reachable through a race: the services check keys and references before writing.
    current_app.logger.warning("API integrity error: %s", exc.orig)
    return error_response(409, "Конфликт с одновременным изменением тех же данных: повторите запрос")


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
    code = exc.code or 500
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    return error_response(code, _HTTP_MESSAGES.get(code, exc.name), headers=headers)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
    current_app.logger.exception("API request failed: %s %s", request.method, request.path)
    return error_response(500, "Внутренняя ошибка сервера; изменения не сохранены")


@bp.route("/", defaults={"subpath": ""}, methods=_METHODS, endpoint="fallback")
@bp.route("/<path:subpath>", methods=_METHODS, endpoint="fallback")
def fallback(subpath: str):  # type: ignore[no-untyped-def]
    """Reached only when no real route matched this path and method."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in _METHODS:
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != FALLBACK_ENDPOINT:
            allowed.append(method)
    if allowed:
        raise MethodNotAllowed(valid_methods=allowed)
    raise NotFound()
