"""Russian error pages for the UI; the API and webhooks keep their own (JSON) responses."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, abort, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from clinic.inputs import BadJson, parse_json_object
from webhooks.auth import is_token_auth_request

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("Некорректный запрос", "Сервер не смог разобрать запрос."),
    401: ("Требуется вход", "Войдите в систему, чтобы открыть эту страницу."),
    403: ("Доступ запрещён", "Эта страница доступна только администратору."),
    404: ("Страница не найдена", "Такой страницы нет. Проверьте адрес или вернитесь в планировщик."),
    405: ("Метод не поддерживается", "Эта страница не принимает такой запрос."),
    413: ("Слишком большой запрос", "Объём отправленных данных больше допустимого. Уменьшите его."),
    500: (
        "Внутренняя ошибка",
        "Что-то пошло не так. Повторите попытку; если ошибка повторится, сообщите администратору.",
    ),
}


def _page(code: int, title: str, text: str):  # type: ignore[no-untyped-def]
    return render_template("error.html", code=code, title=title, text=text), code


def error_page(code: int):  # type: ignore[no-untyped-def]
    return _page(code, *MESSAGES[code])


def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
    if is_token_auth_request():
        return exc  # a WSGI response: the API's own body and status, untouched
    code = exc.code or 500
    title, text = MESSAGES.get(code, (exc.name, exc.description or ""))
    return _page(code, title, text)


def _csrf_error(exc: CSRFError):  # type: ignore[no-untyped-def]
    return _page(
        400,
        "Форма устарела",
        "Срок действия формы истёк или она была отправлена не со страницы системы. "
        "Обновите страницу и повторите действие.",
    )


def _unexpected(exc: InternalServerError):  # type: ignore[no-untyped-def]
    if is_token_auth_request():
        return exc
    return _page(500, *MESSAGES[500])


def json_object_body() -> dict[str, Any]:
    """The request's body as a JSON object (clinic.inputs: depth, NaN, surrogates checked);
    anything else ends the request with a JSON 400 and the Russian reason."""
    try:
        return parse_json_object(request.get_data(cache=True))
    except BadJson as exc:
        abort(Response(json.dumps({"error": str(exc)}, ensure_ascii=False), 400, mimetype="application/json"))


def init_errors(app: Flask) -> None:
    app.extensions["ui_errors"] = True
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(InternalServerError, _unexpected)
    app.register_error_handler(HTTPException, _http_error)
