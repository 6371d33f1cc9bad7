"""How many SMS parts the emulated sms.ru bills a text as (smsru.md §11, §12).

The reference gives the standard GSM rules: a text in the GSM 03.38 7-bit alphabet takes
160 septets in one SMS and 153 per part once split; any other text (any Cyrillic letter)
goes as UCS-2, 70 UTF-16 units in one SMS and 67 per part. More than 8 parts is code 205.
From GSM 03.38 itself: the extension-table characters are an escape plus a septet (two
units), a character outside the BMP is a surrogate pair (two units), and neither pair is
cut between parts, so a part may end a unit short.

Written from those rules, not taken from the client's counter, so that the client's cost
preview and the emulator's ``sms/cost`` are two independent readings.
"""

from __future__ import annotations

from emulators.smsru.codes import MAX_PARTS

# GSM 03.38 default alphabet, row by row in code order 0x00-0x7F; ESC (0x1B) is left out
# because it is not a character a text can contain.
GSM_DEFAULT = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The extension table (each one is ESC + a septet): form feed ^ { } \ [ ~ ] | €
GSM_EXTENDED = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_PER_PART = 160, 153
UCS2_SINGLE, UCS2_PER_PART = 70, 67


def _gsm_width(ch: str) -> int:
    return 2 if ch in GSM_EXTENDED else 1


def _ucs2_width(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def is_gsm(text: str) -> bool:
    return all(ch in GSM_DEFAULT or ch in GSM_EXTENDED for ch in text)


def sms_parts(text: str) -> int:
    """Parts `text` is sent and billed as; 0 for an empty text (refused with 203)."""
    if not text:
        return 0
    if is_gsm(text):
        width, single, per_part = _gsm_width, GSM_SINGLE, GSM_PER_PART
    else:
        width, single, per_part = _ucs2_width, UCS2_SINGLE, UCS2_PER_PART
    widths = [width(ch) for ch in text]
    total = sum(widths)
    if total <= single:
        return 1
    if total == len(text):  # no pairs to keep whole: plain division
        return (total + per_part - 1) // per_part
    parts, room = 1, per_part
    for w in widths:
        if w > room:  # this pair does not fit: it opens the next part
            parts, room = parts + 1, per_part
        room -= w
    return parts


def too_long(text: str) -> bool:
    return sms_parts(text) > MAX_PARTS
