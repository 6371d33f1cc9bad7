"""The emulator's own check of `sign` (API §2.4.3).

Written separately from clinic.mango.signing on purpose: if both sides shared one function,
a mistake in it would sign and verify identically and no test would notice.
"""

from __future__ import annotations

import hashlib
import hmac


def expected_sign(api_key: str, json_text: str, api_salt: str) -> str:
    data = api_key.encode("utf-8") + json_text.encode("utf-8") + api_salt.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def sign_ok(api_key: str, json_text: str, api_salt: str, received: str) -> bool:
    # Lowercase hex only, as every public client sends it; anything else is a mismatch.
    return hmac.compare_digest(expected_sign(api_key, json_text, api_salt), received)
