"""translit=1 (smsru.md §2.1): sms.ru does not publish its table, so this is the common
passport-style one. It matters for the emulator because a transliterated text is GSM-7 and
so counts 160/153 per part instead of 70/67."""

from __future__ import annotations

_TABLE = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
}  # fmt: skip


def transliterate(text: str) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        if low not in _TABLE:
            out.append(ch)
            continue
        latin = _TABLE[low]
        out.append(latin.capitalize() if ch != low else latin)
    return "".join(out)
