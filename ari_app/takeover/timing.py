"""When a call from a registrar's own phone began and was answered, read from Asterisk's
record of his channel (the CDR) when the call is taken under control: the log shows the
call from its dialling, not from the take-over."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

from ari_app.client import AriClient, AriError


async def dialled_and_answered(ari: AriClient, channel_id: str) -> tuple[datetime | None, datetime | None]:
    """(start, answer) of the channel's CDR as UTC instants; None where Asterisk has none
    (CDRs disabled, or not answered yet)."""
    start, answer = await asyncio.gather(
        _epoch(ari, channel_id, "CDR(start,u)"), _epoch(ari, channel_id, "CDR(answer,u)")
    )
    return start, answer


async def _epoch(ari: AriClient, channel_id: str, variable: str) -> datetime | None:
    try:
        raw = await ari.get_var(channel_id, variable)
    except AriError:
        return None
    return parse_epoch(raw)


def parse_epoch(raw: str) -> datetime | None:
    """An epoch such as "1796588417.997173" → that instant in UTC; "", "0.000000" or junk → None."""
    try:
        seconds = float(raw)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, UTC)
