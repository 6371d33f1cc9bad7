"""The clinic's directory and bookings: patients, employees, cabinets, services, appointments.

One set of rules for every caller (the МИС over the REST API, the registrar's pages): each
entity has a tuple of `Field`s (fields.py) that says how a raw value is checked and
converted; the functions add the rules that need the database (references exist, keys are
unique, a doctor is not booked twice) and change nothing unless all of it passes. They flush,
never commit: the caller owns the transaction, so a failed request leaves no half-written rows.

Values come as JSON (`forms=False`: types are strict, unknown keys are rejected) or as HTML
form text (`forms=True`: "5", "on", "" are converted, unknown keys such as a CSRF token are
ignored). Errors: `clinic.services.ValidationError` (field -> Russian message), its subclass
`ConflictError` (a taken key, a busy doctor, a closed record) and `NotFoundError`.
"""

from clinic.clock import clinic_now, clinic_zone
from clinic.services.schedule.appointments import (
    APPOINTMENT_FIELDS,
    CANCEL_FIELDS,
    DEFAULT_DURATION_MIN,
    FREE_STATUSES,
    MAX_DURATION_MIN,
    SOURCE_REGISTRAR,
    appointments_for_day,
    cancel_appointment,
    confirm_appointment,
    create_appointment,
    get_appointment,
    get_appointment_by_external,
    update_appointment,
    upsert_appointment,
    with_confirmation_text,
)
from clinic.services.schedule.catalog import (
    CABINET_FIELDS,
    SERVICE_FIELDS,
    create_cabinet,
    create_service,
    get_cabinet,
    get_service,
    list_cabinets,
    list_services,
    upsert_cabinet,
    upsert_service,
)
from clinic.services.schedule.common import ConflictError, NotFoundError, Page
from clinic.services.schedule.fields import DB_INT_MAX, KINDS, Field, check_key, clean
from clinic.services.schedule.people import (
    EMPLOYEE_FIELDS,
    PATIENT_FIELDS,
    create_employee,
    create_patient,
    get_employee,
    get_employee_by_external,
    get_patient,
    get_patient_by_external,
    list_employees,
    search_patients,
    update_employee,
    update_patient,
    upsert_employee,
    upsert_patient,
)

__all__ = [
    "APPOINTMENT_FIELDS",
    "CABINET_FIELDS",
    "CANCEL_FIELDS",
    "DB_INT_MAX",
    "DEFAULT_DURATION_MIN",
    "EMPLOYEE_FIELDS",
    "FREE_STATUSES",
    "KINDS",
    "MAX_DURATION_MIN",
    "PATIENT_FIELDS",
    "SERVICE_FIELDS",
    "ConflictError",
    "Field",
    "NotFoundError",
    "Page",
    "appointments_for_day",
    "SOURCE_REGISTRAR",
    "cancel_appointment",
    "confirm_appointment",
    "check_key",
    "clean",
    "clinic_now",
    "clinic_zone",
    "create_appointment",
    "create_cabinet",
    "create_employee",
    "create_patient",
    "create_service",
    "get_appointment",
    "get_appointment_by_external",
    "get_cabinet",
    "get_employee",
    "get_employee_by_external",
    "get_patient",
    "get_patient_by_external",
    "get_service",
    "list_cabinets",
    "list_employees",
    "list_services",
    "search_patients",
    "update_appointment",
    "update_employee",
    "update_patient",
    "upsert_appointment",
    "upsert_cabinet",
    "upsert_employee",
    "upsert_patient",
    "upsert_service",
    "with_confirmation_text",
]
