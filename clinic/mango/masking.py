"""Hide the VPBX key and salt before anything reaches a log, the exchange log or an exception.

The salt is the signing secret: it never leaves the process, but a careless log line could
still print it (for example a settings object or an echoed error). The key identifies the
clinic's PBX and, with the salt, lets anyone act on its behalf; the exchange log keeps only
its last four characters so an admin can still tell which account a request used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clinic.security import mask

from .signing import FIELD_KEY, FIELD_SIGN

SALT_PLACEHOLDER = "***"


def redact(text: str, api_key: str | None, api_salt: str | None) -> str:
    """Replace every occurrence of the key or the salt inside `text`."""
    if api_salt:
        text = text.replace(api_salt, SALT_PLACEHOLDER)
    if api_key:
        text = text.replace(api_key, mask(api_key))
    return text


def mask_secrets(value: Any, api_key: str | None, api_salt: str | None) -> Any:
    """A copy of `value` (nested dicts, lists, strings) with the key and salt hidden."""
    if isinstance(value, str):
        return redact(value, api_key, api_salt)
    if isinstance(value, Mapping):
        return {k: mask_secrets(v, api_key, api_salt) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v, api_key, api_salt) for v in value]
    return value


def mask_form(form: Mapping[str, str], api_key: str | None, api_salt: str | None) -> dict[str, str]:
    """The request form as it may be stored in the exchange log.

    `vpbx_api_key` keeps its last four characters; `sign` keeps a prefix, enough to compare
    two requests, not enough to help an offline guess at the salt; `json` is kept whole
    (it holds the appointment data the admin needs) with any stray secret removed.
    """
    out: dict[str, str] = {}
    for name, val in form.items():
        if name == FIELD_KEY:
            out[name] = mask(val)
        elif name == FIELD_SIGN:
            out[name] = (val[:8] + "…") if val else ""
        else:
            out[name] = redact(val, api_key, api_salt)
    return out
