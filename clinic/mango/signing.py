"""Request signing for the Mango Office VPBX API (API §2.4.3-2.4.4).

Every request is a form-encoded POST with three fields: `vpbx_api_key`, `sign` and `json`,
where `sign = sha256(vpbx_api_key + json + vpbx_api_salt)` in lowercase hex over the UTF-8
bytes actually sent. `json` must be compact ("без искусственных пробелов и переносов строк").
Mango signs its own notifications the same way, so `verify` checks incoming ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

FIELD_KEY = "vpbx_api_key"
FIELD_SIGN = "sign"
FIELD_JSON = "json"


def compact_json(payload: Any) -> str:
    """The exact `json` field text: no spaces, no newlines, Cyrillic left as is."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def sign(api_key: str, json_text: str, api_salt: str) -> str:
    return hashlib.sha256((api_key + json_text + api_salt).encode("utf-8")).hexdigest()


def signed_form(api_key: str, api_salt: str, payload: Any) -> dict[str, str]:
    """The three form fields of a request; the salt itself is never among them."""
    text = compact_json(payload)
    return {FIELD_KEY: api_key, FIELD_SIGN: sign(api_key, text, api_salt), FIELD_JSON: text}


def verify(api_key: str, api_salt: str, json_text: str, received_sign: str) -> bool:
    """True when `received_sign` matches; compared in constant time."""
    expected = sign(api_key, json_text, api_salt)
    return hmac.compare_digest(expected.encode(), (received_sign or "").strip().lower().encode())
