"""Mango Office VPBX client: signed requests, outbound-campaign tasks, typed errors.

See docs/mango.md for usage and the error mapping.
"""

from .client import (
    DEFAULT_BASE_URL,
    Exchange,
    MangoClient,
    MangoSettings,
    MissingCustomFieldError,
    tls12_context,
)
from .clock import Clock, ManualClock, SystemClock
from .errors import (
    AccessBlockedError,
    BadResponseError,
    BadSignError,
    BillingError,
    CampaignError,
    CampaignStateError,
    CannotPerformError,
    DuplicateNumberError,
    InvalidKeyError,
    InvalidRequestError,
    MangoError,
    MissingParameterError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    ServerError,
    TaskLimitError,
    TransportError,
    error_class,
    error_for,
)
from .masking import mask_form, mask_secrets, redact
from .models import CLINIC_FIELD_NAMES, Attempt, CampaignReport, CustomField, Subtask, Task, mango_utc
from .ratelimit import DEFAULT_LIMITS, RateLimiter, TokenBucket
from .signing import compact_json, sign, signed_form, verify

__all__ = [
    "CLINIC_FIELD_NAMES",
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "AccessBlockedError",
    "Attempt",
    "BadResponseError",
    "BadSignError",
    "BillingError",
    "CampaignError",
    "CampaignReport",
    "CampaignStateError",
    "CannotPerformError",
    "Clock",
    "CustomField",
    "DuplicateNumberError",
    "Exchange",
    "InvalidKeyError",
    "InvalidRequestError",
    "MangoClient",
    "MangoError",
    "MangoSettings",
    "ManualClock",
    "MissingCustomFieldError",
    "MissingParameterError",
    "NotFoundError",
    "OutcomeUnknownError",
    "RateLimitError",
    "RateLimiter",
    "ServerError",
    "Subtask",
    "SystemClock",
    "Task",
    "TaskLimitError",
    "TokenBucket",
    "TransportError",
    "compact_json",
    "error_class",
    "error_for",
    "mango_utc",
    "mask_form",
    "mask_secrets",
    "redact",
    "sign",
    "signed_form",
    "tls12_context",
    "verify",
]
