"""Phone numbers: parse anything a registrar types, store E.164, match on the last 10 digits."""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "RU"


class PhoneError(ValueError):
    """A phone number that cannot be understood; the message is for the user (Russian)."""


def normalize(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return the E.164 form of `raw` or raise PhoneError.

    Russian habits are accepted: "8 (916) 123-45-67", "+7 916 1234567", "9161234567".
    """
    text = (raw or "").strip()
    if not text:
        raise PhoneError("Не указан номер телефона")
    digits = "".join(ch for ch in text if ch.isdigit())
    if region == "RU" and not text.startswith("+"):
        if len(digits) == 11 and digits[0] == "8":
            text = "+7" + digits[1:]
        elif len(digits) == 10 and digits[0] == "9":
            text = "+7" + digits
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"Некорректный номер телефона: {raw}") from exc
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(f"Некорректный номер телефона: {raw}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_optional(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    return normalize(raw, region) if raw and raw.strip() else None


def is_mobile(e164: str) -> bool:
    number = phonenumbers.parse(e164, None)
    kind = phonenumbers.number_type(number)
    return kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def match_key(raw: str) -> str:
    """Last 10 digits: how caller IDs in any format are matched to stored numbers."""
    return "".join(ch for ch in raw if ch.isdigit())[-10:]


def display(e164: str | None) -> str:
    """"+79161234567" -> "+7 916 123-45-67" for pages."""
    if not e164:
        return ""
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
    except phonenumbers.NumberParseException:
        return e164
