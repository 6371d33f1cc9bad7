"""The thin async ARI client, in two halves: REST (ari/rest.py, the operations in
ari/ops.py, errors in ari/errors.py) and the events websocket (ari/socket.py). This module
names them all in one place for the rest of the app."""

from __future__ import annotations

from ari_app.ari.errors import (
    AriBadRequest,
    AriConflict,
    AriError,
    AriInvalidState,
    AriMissing,
    AriNotFound,
    AriServerError,
    AriUnavailable,
    AriUnprocessable,
    error_for,
)
from ari_app.ari.ops import HTTP_ONLY, OPS, Op, Recorder
from ari_app.ari.rest import supports_rest_over_ws
from ari_app.ari.socket import AriClient, EventHandler, _CoalescingTransport, wait_connected

__all__ = [
    "HTTP_ONLY",
    "OPS",
    "AriBadRequest",
    "AriClient",
    "AriConflict",
    "AriError",
    "AriInvalidState",
    "AriMissing",
    "AriNotFound",
    "AriServerError",
    "AriUnavailable",
    "AriUnprocessable",
    "EventHandler",
    "Op",
    "Recorder",
    "_CoalescingTransport",
    "error_for",
    "supports_rest_over_ws",
    "wait_connected",
]
