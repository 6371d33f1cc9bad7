"""The standby lines' ARI events: a `standby` StasisStart and the end of a line nobody has
claimed are taken here; everything else (a claimed line's events included: its channel is
then tracked by its call) goes on to the next handler untouched."""

from __future__ import annotations

import asyncio

from ari_app.core.routes import EventHandler
from ari_app.events import ChannelDestroyed, Event, StasisEnd, StasisStart
from ari_app.standby.service import STASIS_ARG, StandbyService


class StandbyStasis:
    def __init__(self, standby: StandbyService, then: EventHandler) -> None:
        self.standby = standby
        self.then = then
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, event: Event) -> None:
        if isinstance(event, StasisStart) and event.args and event.args[0] == STASIS_ARG:
            # scheduled: the answer is a request, and the events socket must be drained now
            task = asyncio.create_task(self.standby.start(event.channel))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(event, StasisEnd | ChannelDestroyed) and self.standby.owns(event.channel.id):
            self.standby.gone(event.channel.id)
        else:
            await self.then.handle(event)
