"""The emulator's own check of `sign`, from mango.md §1 (API §2.4.3-2.4.4).

    sign = sha256(vpbx_api_key + json + vpbx_api_salt), lowercase hex,

over the UTF-8 bytes of the `json` field exactly as it arrived. Written separately from the
client's signing on purpose (the emulator imports nothing of clinic.mango): if both sides
shared one function, a mistake in it would sign and verify identically and no test would
notice.
"""

from __future__ import annotations

import hashlib
import hmac


def expected_sign(api_key: str, json_text: str, api_salt: str) -> str:
    data = api_key.encode("utf-8") + json_text.encode("utf-8") + api_salt.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def sign_ok(api_key: str, json_text: str, api_salt: str, received: str) -> bool:
    # Lowercase hex only, as every public client sends it; anything else is a mismatch.
    # Compared as bytes: compare_digest raises on a str with non-ASCII characters.
    expected = expected_sign(api_key, json_text, api_salt).encode("ascii")
    return hmac.compare_digest(expected, received.encode("utf-8", "surrogatepass"))
