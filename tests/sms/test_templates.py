"""Template bodies: safe substitution, unknown placeholders refused, one default per type,
the demo templates valid."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinic.db import transaction
from clinic.models import ClinicSettings, SmsTemplate
from clinic.services import ValidationError
from clinic.sms import templating
from clinic.sms.demo import TEMPLATES
from clinic.sms.templates import default_template, save_template


def test_substitution_runs_no_code_and_keeps_literal_braces() -> None:
    values = {k: "" for k in templating.PLACEHOLDERS} | {"patient_name": "{{7*7}} {__class__}"}
    out = templating.render("Здравствуйте, {patient_name}! {{скобки}} {unknown}", values)
    assert out == "Здравствуйте, {{7*7}} {__class__}! {скобки} {unknown}"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{имя}", "Неизвестное поле подстановки {имя}"),
        ("{patient_name.__class__}", "Неизвестное поле подстановки {patient_name.__class__}"),
        ("a { b", "Непарная фигурная скобка: для самой скобки пишите {{ или }}"),
    ],
)
def test_problems_are_named_in_russian(body: str, problem: str) -> None:
    assert templating.problems(body) == [problem]


def test_valid_body_has_no_problems() -> None:
    assert templating.problems("{patient_name} {{x}} {date}") == []


def test_preview_counts_characters_and_parts() -> None:
    assert (templating.preview("Я" * 70).parts, templating.preview("Я" * 71).parts) == (1, 2)
    assert templating.preview("a" * 160).parts == 1


def test_one_default_per_recipient_type(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        a = save_template(
            s, None, {"name": "A", "recipient_type": "patient", "is_default": "on", "body": "{date}"}
        )
        save_template(
            s, None, {"name": "D", "recipient_type": "doctor", "is_default": "on", "body": "{date}"}
        )
        b = save_template(
            s, None, {"name": "B", "recipient_type": "patient", "is_default": "on", "body": "{time}"}
        )
        assert default_template(s).id == b.id  # type: ignore[union-attr]
        assert s.get(SmsTemplate, a.id).is_default is False  # type: ignore[union-attr]
        assert default_template(s, "doctor").name == "D"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "", "recipient_type": "patient", "body": "x"}, "name"),
        ({"name": "x", "recipient_type": "robot", "body": "x"}, "recipient_type"),
        ({"name": "x", "recipient_type": "patient", "body": ""}, "body"),
        ({"name": "x", "recipient_type": "patient", "body": "{patient_name}" * 40}, "body"),
    ],
)
def test_invalid_templates_are_refused(
    sessions: sessionmaker[Session], data: dict[str, str], field: str
) -> None:
    with sessions() as s, pytest.raises(ValidationError) as info:
        save_template(s, None, data)
    assert field in info.value.errors


def test_demo_templates_are_valid(sessions: sessionmaker[Session]) -> None:
    for name, recipient, default, body in TEMPLATES:
        assert templating.problems(body) == [], name
        with sessions() as s:
            save_template(
                s, None, {"name": name, "recipient_type": recipient, "is_default": default, "body": body}
            )


def test_demo_seed_sets_the_demo_key_and_templates(sessions: sessionmaker[Session]) -> None:
    from datetime import date

    from clinic.seed import seed_demo
    from clinic.sms.demo import DEMO_API_ID

    seed_demo(sessions, date(2026, 5, 28))
    with sessions() as s:
        assert s.scalars(select(ClinicSettings.sms_api_key)).one() == DEMO_API_ID
        assert default_template(s) is not None


def test_quiet_hours_are_edited_in_the_clinic_settings(sessions: sessionmaker[Session]) -> None:
    from clinic.services.settings import update_settings

    with transaction(sessions) as s:
        update_settings(s, {"sms_quiet_from": "22", "sms_quiet_to": "8"})
    with sessions() as s:
        row = s.scalars(select(ClinicSettings)).one()
        assert (row.sms_quiet_from, row.sms_quiet_to) == (22, 8)
        with pytest.raises(ValidationError) as info:
            update_settings(s, {"sms_quiet_from": "24", "sms_quiet_to": "x"})
    assert set(info.value.errors) == {"sms_quiet_from", "sms_quiet_to"}
    assert "час от 0 до 23" in info.value.errors["sms_quiet_to"]
