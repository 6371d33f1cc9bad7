"""Call events for the browsers (Wazo's notifier.py): a call's snapshot to the registrar in
control of it (and the `all` subscribers), its release to a registrar who handed it over,
and the patient's DTMF. The screen pop has its own notifier (incoming/notifier.py)."""

from __future__ import annotations

from typing import Any

from ari_app.calls.notifier import Notifier
from ari_app.core.call import LiveCall
from clinic.models.calls import STATE_ENDED


class CallNotifier:
    def __init__(self, bus: Notifier) -> None:
        self.bus = bus

    def changed(self, call: LiveCall, **extra: Any) -> None:
        call.version += 1
        users = {call.user_id} if call.user_id is not None else set()
        self.bus.publish("call", {**call.snapshot(), **extra}, user_ids=users)

    def released(self, call: LiveCall, user_id: int, reason: str) -> None:
        """The call is no longer `user_id`'s (he transferred it): his window frees the line
        and shows why. Only his stream: for everyone else the call goes on."""
        call.version += 1
        self.bus.publish("call", self.released_view(call, reason), user_ids={user_id}, everyone=False)

    @staticmethod
    def released_view(call: LiveCall, reason: str) -> dict[str, Any]:
        """The call as a registrar who handed it over sees it: over for him, and why."""
        return {**call.snapshot(), "state": STATE_ENDED, "state_title": "Передан", "reason": reason}

    def dtmf(self, call: LiveCall, digit: str, role: str) -> None:
        if call.user_id is not None:
            self.bus.publish("dtmf", {"uid": call.uid, "digit": digit, "role": role}, user_ids={call.user_id})
