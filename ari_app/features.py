"""Call control, put together: the shared core (ari_app/core/) and one package per feature,
each split as wazo-calld splits its plugins (service: the logic; stasis: its ARI events;
http: its routes; notifier where it tells the browsers something of its own):

    calls/       a call as a whole: list, get, «Завершить», DTMF, a leg's end, resync
    directory/   users, extensions, the trunk; target checks; phones registered?
    dialing/     click-to-call
    incoming/    incoming calls and the screen pop
    hold/        «Удержание»
    conference/  «Конференция» and «Запись»
    transfers/   «Перевод», blind and attended, with its state machine
    takeover/    calls from the registrar's own phone taken under control
    robot/       the own voice robot: confirmation calls and the inbound confirmation step
    standby/     browser softphones' standby lines: the registrar's leg up before «Звонок»
    presence/    every registrar's phone: registered, busy, ringing (device states)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ari_app.calls import stasis as calls_stasis
from ari_app.calls.notifier import Notifier
from ari_app.calls.service import CallsService
from ari_app.calls.store import CallStore
from ari_app.client import AriClient
from ari_app.conference import stasis as conference_stasis
from ari_app.conference.service import ConferenceService
from ari_app.core import ringing
from ari_app.core.call import LiveCall
from ari_app.core.core import CallCore, Timeouts
from ari_app.core.errors import CallError
from ari_app.core.notifier import CallNotifier
from ari_app.core.registry import CallRegistry
from ari_app.core.routes import StasisRoutes
from ari_app.dialing import stasis as dialing_stasis
from ari_app.dialing.service import DialingService
from ari_app.directory.service import DirectoryService, Endpoints
from ari_app.events import Event
from ari_app.hold.service import HoldService
from ari_app.incoming import stasis as incoming_stasis
from ari_app.incoming.notifier import PopNotifier
from ari_app.incoming.service import IncomingService
from ari_app.presence import stasis as presence_stasis
from ari_app.presence.notifier import PresenceNotifier
from ari_app.presence.service import PresenceService
from ari_app.robot.service import RobotService, RobotSetup
from ari_app.robot.stasis import RobotStasis
from ari_app.standby.service import StandbyService
from ari_app.standby.stasis import StandbyStasis
from ari_app.takeover import stasis as takeover_stasis
from ari_app.takeover.service import Redirect, TakeoverService
from ari_app.transfers import stasis as transfers_stasis
from ari_app.transfers.service import TransfersService


class CallControl:
    def __init__(
        self,
        ari: AriClient,
        store: CallStore,
        bus: Notifier,
        *,
        endpoints: Endpoints | None = None,
        timeouts: Timeouts | None = None,
        redirect_to_stasis: Redirect | None = None,
        clinic_now: Callable[[], datetime] | None = None,
        robot: RobotSetup | None = None,
    ) -> None:
        self.ari = ari
        self.store = store
        self.registry = CallRegistry()
        self.directory = DirectoryService(store, endpoints or Endpoints())
        self.core = CallCore(
            ari, store, CallNotifier(bus), self.registry, self.directory, timeouts or Timeouts()
        )
        self.lifecycle = CallsService(self.core)
        # browser softphones' standby lines: presence hears of each change
        self.standby = StandbyService(ari, lambda endpoint: self.presence.refresh(endpoint))
        self.dialing = DialingService(self.core, self.standby)
        self.incoming = IncomingService(self.core, PopNotifier(bus), self.dialing.answered, clinic_now)
        self.hold = HoldService(self.core)
        self.conference = ConferenceService(self.core)
        self.transfers = TransfersService(self.core, self.lifecycle.leg_gone)
        self.takeover = TakeoverService(self.core, redirect_to_stasis)
        routes = StasisRoutes()
        dialing_stasis.register(routes, self.dialing)
        incoming_stasis.register(routes, self.incoming)
        conference_stasis.register(routes, self.conference)
        transfers_stasis.register(routes, self.transfers)
        takeover_stasis.register(routes, self.takeover)
        # a party with several phones (SIP phone + browser softphone) is one party to them all
        ringing.install(routes, self.core, self.lifecycle.leg_gone)
        self.stasis: calls_stasis.CallsStasis | RobotStasis | StandbyStasis = calls_stasis.CallsStasis(
            self.core, self.lifecycle, routes
        )
        # the robot's channels are its own; their events are taken before call control's
        self.robot = RobotService(self.core, self.incoming, robot) if robot is not None else None
        if self.robot is not None:
            self.stasis = RobotStasis(self.robot, self.stasis)
        # standby lines are not calls: their events are taken first
        self.stasis = StandbyStasis(self.standby, self.stasis)
        self.presence = PresenceService(
            ari, store, PresenceNotifier(bus), only_standby=self.standby.only_standby
        )
        self.presence_stasis = presence_stasis.PresenceStasis(self.presence)

    async def handle(self, event: Event) -> None:
        """Every ARI event: device states to presence, the rest to the calls' router."""
        if event.type in presence_stasis.EVENT_TYPES:
            self.presence_stasis.handle(event)
        else:
            await self.stasis.handle(event)

    @property
    def calls(self) -> dict[str, LiveCall]:
        """The live calls (read-only use: tests and the health check)."""
        return self.registry.calls

    @property
    def resyncs(self) -> int:
        return self.lifecycle.resyncs

    async def resync(self) -> list[str]:
        closed = await self.lifecycle.resync()
        await self.standby.resync(self.registry.knows_channel)
        return closed

    async def hello(self, user_id: int) -> list[dict[str, Any]]:
        """The calls a user's window shows when his event stream opens."""
        try:
            return await self.lifecycle.visible_to(user_id)
        except CallError:  # not in the call directory (yet): no calls to show
            return []

    async def refresh_directory(self) -> None:
        """Read users, extensions and the trunk now (they are cached for a few seconds)."""
        await self.directory.current(newer_than=time.monotonic())
