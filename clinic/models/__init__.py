"""All tables. Import models from here so every mapper is configured."""

from clinic.models.base import Base, utcnow
from clinic.models.pbx import REVISION_APPLIED, REVISION_FAILED, REVISION_REJECTED, ConfigRevision
from clinic.models.people import (
    EMPLOYEE_CHIEF,
    EMPLOYEE_DOCTOR,
    EMPLOYEE_ROLES,
    ROLE_ADMIN,
    ROLE_REGISTRAR,
    USER_ROLES,
    ApiToken,
    Employee,
    Patient,
    User,
)
from clinic.models.schedule import (
    APPOINTMENT_STATUSES,
    CONFIRMATION_STATUSES,
    STATUS_BOOKED,
    STATUS_CANCELLED,
    Appointment,
    Cabinet,
    Service,
)
from clinic.models.settings import ClinicSettings
from clinic.models.sms import (
    MAILING_STATES,
    MESSAGE_STATES,
    RECIPIENT_TYPES,
    SmsMailing,
    SmsMailingRow,
    SmsMessage,
    SmsPhoneFlag,
    SmsStopEntry,
    SmsTemplate,
)

__all__ = [
    "APPOINTMENT_STATUSES",
    "CONFIRMATION_STATUSES",
    "EMPLOYEE_CHIEF",
    "EMPLOYEE_DOCTOR",
    "EMPLOYEE_ROLES",
    "REVISION_APPLIED",
    "REVISION_FAILED",
    "REVISION_REJECTED",
    "ROLE_ADMIN",
    "ROLE_REGISTRAR",
    "STATUS_BOOKED",
    "STATUS_CANCELLED",
    "USER_ROLES",
    "ApiToken",
    "Appointment",
    "Base",
    "Cabinet",
    "ClinicSettings",
    "ConfigRevision",
    "Employee",
    "Patient",
    "Service",
    "MAILING_STATES",
    "MESSAGE_STATES",
    "RECIPIENT_TYPES",
    "SmsMailing",
    "SmsMailingRow",
    "SmsMessage",
    "SmsPhoneFlag",
    "SmsStopEntry",
    "SmsTemplate",
    "User",
    "utcnow",
]
