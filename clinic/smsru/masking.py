"""Keeping the api_id out of logs, exception texts and the exchange log.

The api_id is the key to the clinic's money at sms.ru: whoever reads it can send SMS on the
clinic's account. It travels in every request body, so every copy of a payload or a reply
that leaves the client goes through these helpers first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from clinic.security import mask

# Request fields that carry credentials in any of sms.ru's auth schemes (smsru.md §1).
SECRET_FIELDS = frozenset({"api_id", "password", "token", "sha512"})


def mask_text(text: str, *secrets: str | None) -> str:
    """Replace every occurrence of each secret in `text` with its masked form."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, mask(secret))
    return text


def mask_payload(
    payload: Mapping[str, Any] | Iterable[tuple[str, Any]], api_id: str | None = None
) -> dict[str, Any]:
    """A copy of a request payload fit for an exchange log.

    Credential fields are masked whatever their value; the api_id, when given, is also
    masked wherever else it appears (a URL, a note), because a stray copy is still a leak.
    """
    items = payload.items() if isinstance(payload, Mapping) else payload
    masked: dict[str, Any] = {}
    for key, value in items:
        if key in SECRET_FIELDS:
            masked[key] = mask(str(value)) if value is not None else value
        elif isinstance(value, str):
            masked[key] = mask_text(value, api_id)
        else:
            masked[key] = value
    return masked
