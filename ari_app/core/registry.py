"""The live calls of this process, the channel → call index every ARI event is routed by
(channel ids are ours, `<uid>-<role><n>`, or an incoming call's own), and the recently
ended calls (a command on one is a 409 with the reason, not a 404)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ari_app.calls.queries import Actor
from ari_app.core.call import Leg, LiveCall
from ari_app.core.errors import Forbidden, NoSuchCall

KEEP_ENDED = 500


class CallRegistry:
    def __init__(self) -> None:
        self.calls: dict[str, LiveCall] = {}
        self.ended: OrderedDict[str, LiveCall] = OrderedDict()
        self._by_channel: dict[str, str] = {}

    def add(self, call: LiveCall) -> None:
        self.calls[call.uid] = call

    def track(self, call: LiveCall, leg: Leg) -> None:
        call.legs[leg.channel_id] = leg
        self._by_channel[leg.channel_id] = call.uid

    def untrack(self, channel_id: str) -> str | None:
        return self._by_channel.pop(channel_id, None)

    def uid_of(self, channel_id: str) -> str | None:
        return self._by_channel.get(channel_id)

    def knows_channel(self, channel_id: str) -> bool:
        return channel_id in self._by_channel

    def live(self, uid: str) -> LiveCall | None:
        return self.calls.get(uid)

    def find(self, uid: str) -> LiveCall | None:
        """A live or recently ended call."""
        return self.calls.get(uid) or self.ended.get(uid)

    def retire(self, call: LiveCall) -> None:
        self.calls.pop(call.uid, None)
        self.ended[call.uid] = call
        while len(self.ended) > KEEP_ENDED:
            self.ended.popitem(last=False)

    def line_busy(self, user_id: int) -> bool:
        return any(c.user_id == user_id and not c.ended for c in self.calls.values())

    def owned(self, actor: Actor, uid: str) -> LiveCall:
        """The call `actor` may act on (admins: any); Forbidden or NoSuchCall otherwise. An
        ended call is returned: its state refuses the command with the reason."""
        call = self.find(uid)
        if call is None:
            raise NoSuchCall("Звонок не найден")
        if not actor.admin and call.user_id != actor.id:
            raise Forbidden("Это не ваш звонок")
        return call

    def visible_to(self, actor: Actor) -> list[dict[str, Any]]:
        """The calls in `actor`'s window: his own, those ringing his phone (admins: all)."""
        return [
            c.snapshot()
            for c in self.calls.values()
            if not c.ended and (actor.admin or c.user_id == actor.id or actor.id in c.ringing_users)
        ]
