"""How the emulator normalises recipient numbers (the real rules are unpublished, §14.6).

The reply's per-number map is keyed by the normalised number, so a client that sent
"+7 (916) 123-45-67" or "89161234567" gets "79161234567" back, as the real service does
with its own normalisation: clients must match keys by number, not by the string sent.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s()+\-.]")


def normalize(raw: str) -> str | None:
    digits = _SEPARATORS.sub("", raw)
    if not digits.isdigit():
        return None
    if len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    elif len(digits) == 10 and digits[0] == "9":
        digits = "7" + digits
    return digits if 11 <= len(digits) <= 15 else None
