"""The screen pop: the caller's card to the registrars whose phones ring (only theirs), and
its withdrawal when someone answers, the caller hangs up or the phone stops ringing."""

from __future__ import annotations

from typing import Any

from ari_app.calls.notifier import Notifier
from ari_app.core.call import LiveCall


class PopNotifier:
    def __init__(self, bus: Notifier) -> None:
        self.bus = bus

    def pop(self, user_id: int, card: dict[str, Any]) -> None:
        self.bus.publish("incoming", card, user_ids={user_id}, everyone=False)

    def withdraw(self, call: LiveCall, user_ids: set[int], reason: str) -> None:
        if user_ids:
            self.bus.publish(
                "incoming_end", {"uid": call.uid, "reason": reason}, user_ids=user_ids, everyone=False
            )
        call.ringing_users -= user_ids
