import pytest

from clinic.phones import PhoneError, display, match_key, normalize, normalize_optional


@pytest.mark.parametrize(
    "raw",
    ["8 (916) 123-45-67", "+7 916 123 45 67", "9161234567", "+79161234567", "8-916-1234567"],
)
def test_russian_habits_normalize_to_e164(raw: str) -> None:
    assert normalize(raw) == "+79161234567"


@pytest.mark.parametrize("raw", ["", "   ", "abc", "123", "+7 916 123", "8 (916) 123-45-67-89-00"])
def test_garbage_is_rejected_with_a_russian_message(raw: str) -> None:
    with pytest.raises(PhoneError) as err:
        normalize(raw)
    assert "номер" in str(err.value).lower()


def test_optional_and_display_and_match_key() -> None:
    assert normalize_optional("") is None
    assert normalize_optional(" 8 916 123 45 67 ") == "+79161234567"
    assert display("+79161234567") == "+7 916 123-45-67"
    assert match_key("+7 (916) 123-45-67") == match_key("89161234567") == "9161234567"
