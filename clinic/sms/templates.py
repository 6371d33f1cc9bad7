"""«Шаблоны для отправки СМС»: validation and saving; one default per recipient type."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from clinic.models import RECIPIENT_TYPES, SmsTemplate
from clinic.models.sms import RECIPIENT_PATIENT
from clinic.services import ValidationError, as_text, parse_bool
from clinic.sms import templating
from clinic.smsru.parts import MAX_PARTS, count_parts

MAX_BODY = 2000


def save_template(session: Session, template: SmsTemplate | None, data: Mapping[str, object]) -> SmsTemplate:
    errors: dict[str, str] = {}
    name = as_text(data.get("name"))
    recipient = as_text(data.get("recipient_type")) or RECIPIENT_PATIENT
    is_default = parse_bool(data.get("is_default"))
    body = str(data.get("body") or "").replace("\r\n", "\n").strip()
    if not name:
        errors["name"] = "Укажите наименование шаблона"
    elif len(name) > 200:
        errors["name"] = "Наименование длиннее 200 символов"
    if recipient not in RECIPIENT_TYPES:
        errors["recipient_type"] = "Выберите абонента: Пациент, Врач или Гл.Врач"
    if is_default is None:
        errors["is_default"] = "Некорректное значение флажка"
    if not body:
        errors["body"] = "Текст шаблона пуст"
    elif len(body) > MAX_BODY:
        errors["body"] = f"Текст шаблона длиннее {MAX_BODY} символов"
    elif problems := templating.problems(body):
        errors["body"] = "; ".join(problems)
    elif count_parts(templating.render(body, templating.sample_values_for_length())).parts > MAX_PARTS:
        errors["body"] = f"Текст с подставленными данными не помещается в {MAX_PARTS} частей СМС"
    if errors:
        raise ValidationError(errors)
    if template is None:
        template = SmsTemplate()
        session.add(template)
    template.name, template.recipient_type, template.is_default, template.body = (
        name,
        recipient,
        bool(is_default),
        body,
    )
    session.flush()
    if template.is_default:
        session.execute(
            update(SmsTemplate)
            .where(SmsTemplate.recipient_type == recipient, SmsTemplate.id != template.id)
            .values(is_default=False)
            .execution_options(synchronize_session="fetch")
        )
    return template


def default_template(session: Session, recipient: str = RECIPIENT_PATIENT) -> SmsTemplate | None:
    return session.scalar(
        select(SmsTemplate)
        .where(SmsTemplate.recipient_type == recipient, SmsTemplate.is_default.is_(True))
        .order_by(SmsTemplate.id)
        .limit(1)
    )


def list_templates(session: Session) -> list[SmsTemplate]:
    return list(session.scalars(select(SmsTemplate).order_by(SmsTemplate.recipient_type, SmsTemplate.name)))
