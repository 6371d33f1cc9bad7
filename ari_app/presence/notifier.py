"""Presence events for the browsers: a change of any colleague's phone goes to every active
user's stream (the directory is everyone's), on the same bus as the call events."""

from __future__ import annotations

from typing import Any

from ari_app.calls.notifier import Notifier

EVENT = "presence"


class PresenceNotifier:
    def __init__(self, bus: Notifier) -> None:
        self.bus = bus

    def changed(self, recipients: frozenset[int], data: dict[str, Any]) -> None:
        self.bus.publish(EVENT, data, user_ids=set(recipients))
