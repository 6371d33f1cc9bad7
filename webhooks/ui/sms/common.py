"""Helpers more than one SMS screen uses: the clinic's sms.ru key masked out of what a page
shows (the dialog's answer, a mailing's errors, the history), and one text field of a small
JSON body (the dialog's counter, the template preview)."""

from __future__ import annotations

from clinic.services.settings import read_settings
from clinic.smsru import mask_text
from webhooks.ui.db import db
from webhooks.ui.errors import json_object_body


def _api_id() -> str:
    return read_settings(db()).sms_api_key or ""


def masked(text: str | None) -> str:
    """Text for a page or the CSV with the clinic's sms.ru key (api_id) masked out."""
    key = _api_id()
    return mask_text(text or "", key) if key else (text or "")


def json_field(name: str) -> str:
    """One text field of a small JSON body; a body that is not a JSON object is a 400."""
    value = json_object_body().get(name, "")
    return (value if isinstance(value, str) else "")[:5000]
