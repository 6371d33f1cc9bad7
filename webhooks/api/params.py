"""Query parameters of the list endpoints, shared by the views and the OpenAPI document."""

from __future__ import annotations

from clinic.models import EMPLOYEE_ROLES
from clinic.services.schedule import DB_INT_MAX, Field
from webhooks.api.common import Param

LIMIT = Param(Field("limit", "int", "Размер страницы", min_value=1, max_value=200, doc="Default 50."), 50)
OFFSET = Param(Field("offset", "int", "Смещение", min_value=0, max_value=DB_INT_MAX, doc="Default 0."), 0)
Q = Param(
    Field(
        "q",
        "str",
        "Поиск",
        max_len=100,
        doc="Words matched (all of them) against name prefixes, the МИС code and phone digits.",
    ),
    "",
)
PHONE = Param(
    Field(
        "phone",
        "str",
        "Телефон",
        max_len=32,
        doc="Any notation; matched on the last 10 digits of phone or phone_extra.",
    ),
    "",
)
ROLE = Param(Field("role", "enum", "Должность", choices=tuple(EMPLOYEE_ROLES)))
ACTIVE = Param(Field("active", "bool", "Активные", doc="true or false; absent: all."))
DATE = Param(Field("date", "date", "День", required=True, doc="YYYY-MM-DD, clinic-local day."))
DOCTOR_ID = Param(Field("doctor_id", "int", "Врач", min_value=1, max_value=DB_INT_MAX))
ALLOW_PAST = Param(
    Field(
        "allow_past",
        "bool",
        "Разрешить прошедшее время",
        doc="true lets a booked appointment be created or moved into the past (importing history). "
        "Default false.",
    ),
    False,
)
