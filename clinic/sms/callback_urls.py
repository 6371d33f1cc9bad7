"""The addresses sms.ru posts delivery statuses to («Отчёты о доставке»): checked before
they are registered with callback/add, since sms.ru itself accepts nearly anything and a
typo would only show as statuses that never come."""

from __future__ import annotations

from urllib.parse import urlsplit

from clinic.services import ValidationError

MAX_LENGTH = 250


def clean_url(raw: str) -> str:
    url = (raw or "").strip()
    if not url:
        raise ValidationError(
            {"url": "Введите адрес, например https://clinic.example.ru:55055/smsru/callback"}
        )
    if len(url) > MAX_LENGTH or any(ch.isspace() for ch in url):
        raise ValidationError({"url": f"Адрес без пробелов, не длиннее {MAX_LENGTH} символов"})
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        raise ValidationError({"url": "Некорректный адрес"}) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            {"url": "Адрес должен начинаться с http:// или https:// и содержать имя сервера"}
        )
    if parts.username or parts.password:
        raise ValidationError({"url": "Адрес не должен содержать логин и пароль"})
    if port == 0:
        raise ValidationError({"url": "Некорректный порт"})
    return url
