"""Asterisk channel names. A PJSIP channel is named `PJSIP/<endpoint>-<8 hex digits>`; the
endpoint is read from the name exactly, never by prefix: a registrar `reg` must not match the
channels of `reg-2`."""

from __future__ import annotations

import re

_PJSIP_CHANNEL = re.compile(r"PJSIP/(?P<endpoint>[^/]+)-[0-9a-f]{8}")


def pjsip_endpoint(channel_name: str) -> str | None:
    """The endpoint of a PJSIP channel name, or None for any other channel."""
    match = _PJSIP_CHANNEL.fullmatch(channel_name)
    return match["endpoint"] if match else None
