"""sms.ru gateway client (reference: shared/reference/smsru.md; usage: docs/smsru.md).

Modules: ``client`` (SmsRuClient), ``errors`` (typed failures), ``results`` (typed
outcomes), ``parts`` (SMS part counting), ``webhook`` (delivery callbacks), ``masking``
(api_id out of logs), ``batching`` (the 100-per-request cap), ``codes`` (code tables).
"""

from clinic.smsru.batching import MAX_RECIPIENTS, batches
from clinic.smsru.client import DEFAULT_BASE_URL, RetryPolicy, SmsRuClient, clean_phone
from clinic.smsru.errors import (
    SmsRuAuthError,
    SmsRuBadResponse,
    SmsRuCallbackError,
    SmsRuConnectError,
    SmsRuError,
    SmsRuFundsError,
    SmsRuLimitError,
    SmsRuMessageError,
    SmsRuRecipientError,
    SmsRuRequestError,
    SmsRuRetryableError,
    SmsRuSenderError,
    SmsRuTimeout,
    SmsRuTransportError,
    TooManyRecipientsError,
    error_for_code,
)
from clinic.smsru.masking import mask_payload, mask_text
from clinic.smsru.parts import MAX_PARTS, SmsParts, count_parts
from clinic.smsru.results import (
    CostRecipient,
    CostResult,
    DailyLimit,
    FreeAllowance,
    MessageStatus,
    SendRecipient,
    SendResult,
    StatusResult,
)
from clinic.smsru.transport import Exchange

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_PARTS",
    "MAX_RECIPIENTS",
    "CostRecipient",
    "CostResult",
    "DailyLimit",
    "Exchange",
    "FreeAllowance",
    "MessageStatus",
    "RetryPolicy",
    "SendRecipient",
    "SendResult",
    "SmsParts",
    "SmsRuAuthError",
    "SmsRuBadResponse",
    "SmsRuCallbackError",
    "SmsRuClient",
    "SmsRuConnectError",
    "SmsRuError",
    "SmsRuFundsError",
    "SmsRuLimitError",
    "SmsRuMessageError",
    "SmsRuRecipientError",
    "SmsRuRequestError",
    "SmsRuRetryableError",
    "SmsRuSenderError",
    "SmsRuTimeout",
    "SmsRuTransportError",
    "StatusResult",
    "TooManyRecipientsError",
    "batches",
    "clean_phone",
    "count_parts",
    "error_for_code",
    "mask_payload",
    "mask_text",
]
