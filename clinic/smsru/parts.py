"""How many SMS a text takes: the GSM 03.38 rules sms.ru bills by (smsru.md §11).

A text that fits the GSM-7 alphabet goes as 7-bit septets: 160 in one SMS, 153 per part
once it has to be split (the user data header eats 7). Anything else (any Cyrillic letter,
emoji) goes as UCS-2: 70 UTF-16 units in one SMS, 67 per part. Characters of the GSM-7
extension table (``{}[]~^|\\€`` and form feed) cost two septets, and a phone never splits
such an escape pair or a UTF-16 surrogate pair across parts, so splitting is done per
character rather than by dividing the total.

The client uses this to show the cost before sending. The emulator counts on its own
(emulators/smsru/parts.py), so the two are checked against each other, not shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAX_PARTS = 8  # sms.ru refuses longer texts with code 205

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# GSM 03.38 default alphabet (without ESC, which is not a user character) and the
# characters reachable through the extension table (each costs ESC + 1 septet).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

Encoding = Literal["gsm7", "ucs2"]


@dataclass(frozen=True)
class SmsParts:
    """The outcome of counting one text."""

    encoding: Encoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int  # 0 for an empty text: sms.ru refuses it (203) rather than sending a blank SMS
    single_limit: int  # units that fit one unsplit SMS in this encoding
    part_limit: int  # units per part of a split message

    @property
    def too_long(self) -> bool:
        return self.parts > MAX_PARTS


GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def is_gsm7(text: str) -> bool:
    return GSM7_ALL.issuperset(text)


def _units(text: str, encoding: Encoding) -> int:
    """The total of `_unit_widths` without building the list (the common, unsplit case)."""
    if encoding == "gsm7":
        return len(text) + sum(text.count(ch) for ch in GSM7_EXTENSION.intersection(text))
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _unit_widths(text: str, encoding: Encoding) -> list[int]:
    if encoding == "gsm7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _split(widths: list[int], part_limit: int) -> int:
    parts, used = 1, 0
    for width in widths:
        if used + width > part_limit:
            parts, used = parts + 1, 0
        used += width
    return parts


def count_parts(text: str) -> SmsParts:
    """Count the SMS parts `text` takes; see the module docstring for the rules."""
    encoding: Encoding = "gsm7" if is_gsm7(text) else "ucs2"
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_PART)
    units = _units(text, encoding)
    if units == 0:
        parts = 0
    elif units <= single:
        parts = 1
    elif units == len(text):
        parts = -(-units // part)  # every character is one unit: nothing to keep together
    else:
        parts = _split(_unit_widths(text, encoding), part)
    return SmsParts(encoding=encoding, units=units, parts=parts, single_limit=single, part_limit=part)


def max_length(encoding: Encoding, parts: int = MAX_PARTS) -> int:
    """Most single-unit characters that fit in `parts` SMS (536 Cyrillic, 1224 Latin for 8)."""
    single, part = (GSM7_SINGLE, GSM7_PART) if encoding == "gsm7" else (UCS2_SINGLE, UCS2_PART)
    return single if parts == 1 else part * parts
