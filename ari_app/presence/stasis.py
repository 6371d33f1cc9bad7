"""Presence's ARI events: `DeviceStateChanged` of the `deviceState:` subscription (every
device's; the service keeps the PJSIP ones). Handled at once in the socket's reader: it only
updates the model and queues the browsers' events, nothing awaits Asterisk."""

from __future__ import annotations

from ari_app.events import Event
from ari_app.presence.service import PresenceService

EVENT_TYPES = ("DeviceStateChanged",)  # for the application's event filter


class PresenceStasis:
    def __init__(self, service: PresenceService) -> None:
        self.service = service

    def handle(self, event: Event) -> None:
        device = event.raw.get("device_state") if event.type == "DeviceStateChanged" else None
        if isinstance(device, dict):
            self.service.on_device(str(device.get("name", "")), str(device.get("state", "")))
