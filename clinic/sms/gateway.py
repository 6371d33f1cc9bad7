"""The sms.ru client for the clinic's settings (api_id and sender from «ЛПУ → Параметры»)."""

from __future__ import annotations

import logging

from clinic.config import Config
from clinic.models import ClinicSettings
from clinic.services import ValidationError
from clinic.smsru import SmsRuClient
from clinic.smsru.transport import Exchange

log = logging.getLogger("clinic.sms")

NO_KEY = "Не задан ключ СМС-шлюза: ЛПУ → Параметры → Сервис"


def _log_exchange(exchange: Exchange) -> None:
    # Already masked by the client: no api_id in the request or the response.
    log.debug(
        "sms.ru %s http=%s %.3fs error=%s",
        exchange.method,
        exchange.http_status,
        exchange.elapsed,
        exchange.error,
    )


def make_client(config: Config, settings: ClinicSettings, *, read_timeout: float = 30.0) -> SmsRuClient:
    if not settings.sms_api_key:
        raise ValidationError({"sms_api_key": NO_KEY})
    return SmsRuClient(
        settings.sms_api_key,
        base_url=config.smsru_url,
        test_mode=config.smsru_test_mode,
        default_sender=settings.sms_sender or None,
        read_timeout=read_timeout,
        on_exchange=_log_exchange,
    )
