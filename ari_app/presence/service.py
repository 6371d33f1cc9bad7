"""Presence: each registrar's phone state, kept from Asterisk's device states.

Why device states (ARI `deviceState:` event source) and not endpoint events or AMI: a PJSIP
device's state is what Asterisk itself derives from the endpoint's contacts and its channels
(UNAVAILABLE without a registered contact, NOT_INUSE, RINGING, INUSE, ONHOLD...), one
`DeviceStateChanged` per change, on the events socket ari_app already holds. Subscribing to
`endpoint:PJSIP` instead brings every event of every phone's channel (ChannelVarset,
ChannelDialplan...) and the channels' ChannelDestroyed into the call router; AMI would be a
second connection and its account would need the `call` read class.

State is explicit: `devices` (device → Asterisk state) is the model, set by the snapshot read
on every (re)connection of the events socket and changed only by events; a user's state is a
function of his devices (`combine`), and what the browsers were last told (`shown`) is kept
so only real changes go out, each with a sequence number (a page's snapshot and the events
it receives meanwhile are ordered by it). While the socket is down every state is «нет
данных»: nothing stale is shown as true.

A user's phones are those his `softphone_ring` choice makes ring (clinic/softphone.py): his
SIP phone `PJSIP/<sip_id>`, his browser softphone `PJSIP/<sip_id>-web`, or both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from ari_app.calls.store import CallStore, StoreError
from ari_app.client import AriClient, AriError, AriNotFound
from ari_app.presence import queries as q
from ari_app.presence.notifier import PresenceNotifier
from clinic.call_control import PRESENCE_TITLES, PresenceState

log = logging.getLogger(__name__)

USERS_EVERY = 5.0  # seconds between reads of who has which phones (a new user, a ring choice)
EVENT_SOURCE = "deviceState:"  # every device's state; we keep the PJSIP ones
TECH = "PJSIP"

# Asterisk's device states (deviceStates.json, DeviceState.state) → what a registrar sees
DEVICE_PRESENCE: dict[str, PresenceState] = {
    "NOT_INUSE": PresenceState.IDLE,
    "INUSE": PresenceState.BUSY,
    "BUSY": PresenceState.BUSY,
    "ONHOLD": PresenceState.BUSY,
    "RINGING": PresenceState.RINGING,
    "RINGINUSE": PresenceState.RINGING,
    "UNAVAILABLE": PresenceState.OFFLINE,
    "INVALID": PresenceState.OFFLINE,  # no such endpoint (yet): no phone can register as it
}


def combine(device_states: Iterable[str | None]) -> PresenceState:
    """A user's state from his phones' device states: ringing if any rings, busy if any is
    in a call, registered if any is registered, not registered if none can be; UNKNOWN (or a
    device not read yet) counts for nothing, and only unknowns give «нет данных»."""
    seen = {DEVICE_PRESENCE.get(s or "") for s in device_states}
    for state in (PresenceState.RINGING, PresenceState.BUSY, PresenceState.IDLE):
        if state in seen:
            return state
    if seen == {PresenceState.OFFLINE}:
        return PresenceState.OFFLINE
    return PresenceState.UNKNOWN


class PresenceService:
    def __init__(
        self,
        ari: AriClient,
        store: CallStore,
        notifier: PresenceNotifier,
        *,
        users_every: float = USERS_EVERY,
        only_standby: Callable[[str], bool] | None = None,
    ) -> None:
        self.ari = ari
        self.store = store
        self.notifier = notifier
        # a browser softphone's standby line (ari_app/standby) makes its device INUSE, but
        # the registrar is free: such a device counts as NOT_INUSE
        self.only_standby = only_standby or (lambda _device: False)
        self.users_every = users_every
        self.epoch = secrets.token_hex(4)  # this process: a page seeing another starts over
        self.devices: dict[str, str] = {}  # "PJSIP/reg101" -> Asterisk's device state
        self.synced = False  # devices hold the snapshot of the current connection
        self.snapshots = 0  # snapshots completed (health, tests)
        self.people: dict[int, q.Colleague] = {}
        self.recipients: frozenset[int] = frozenset()
        self.shown: dict[int, tuple[PresenceState, int]] = {}  # user -> (state, seq) last told
        self._by_device: dict[str, set[int]] = {}
        self._events = 0  # DeviceStateChanged applied so far
        self._set_by_event: dict[str, int] = {}  # device -> value of _events when an event set it
        self._generation = 0  # moves on at every (dis)connection: a late snapshot is dropped
        self._seq = 0
        self._users_loaded = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._users_task: asyncio.Task[None] | None = None

    # -------------------------------------------------------------- the ARI connection

    async def connected(self) -> None:
        """The events socket is (re)connected and nothing reads it yet: subscribe to the
        device states, then read the snapshot in the background (over the socket, once REST
        rides it). Events that arrive meanwhile win over the snapshot."""
        self._generation += 1
        self.synced = False
        try:
            await self.ari.call("app_subscribe", applicationName=self.ari.app, eventSource=EVENT_SOURCE)
        except AriError as exc:
            log.warning("presence: no subscription to device states (%s): states stay unknown", exc)
            return
        self._spawn(self._sync(self._generation))
        if self._users_task is None:
            self._users_task = asyncio.create_task(self._users_loop(), name="presence-users")

    def disconnected(self) -> None:
        """The socket is gone: every state is unknown until the next snapshot."""
        self._generation += 1
        self.synced = False
        self.devices.clear()
        self._set_by_event.clear()
        self._recompute(self.people)

    def on_device(self, name: str, state: str) -> None:
        """A DeviceStateChanged: the device's state now."""
        if not name.startswith(TECH + "/"):
            return
        self._events += 1
        self._set_by_event[name] = self._events
        self.devices[name] = state
        users = self._by_device.get(name)
        if users:
            self._recompute(users)

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._users_task] if self._users_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------------ reads

    def state_of(self, user_id: int) -> PresenceState:
        person = self.people.get(user_id)
        if person is None or not self.synced:
            return PresenceState.UNKNOWN
        return combine(self._state(d) for d in person.devices)

    def _state(self, device: str) -> str | None:
        state = self.devices.get(device)
        if state == "INUSE" and self.only_standby(device):
            return "NOT_INUSE"
        return state

    def refresh(self, device: str) -> None:
        """Something beside Asterisk's device state changed for `device` (its standby line
        came, went or was taken by a call): tell the browsers if its users' state did."""
        users = self._by_device.get(device)
        if users:
            self._recompute(users)

    def registered(self, device: str) -> bool | None:
        """Whether a phone ("PJSIP/reg101") is registered, from the events (no request to
        Asterisk); None while presence cannot tell (socket down, device not read yet).
        Meant for the check before dialling (directory/reach.py), which asks ARI then."""
        state = self.devices.get(device) if self.synced else None
        presence = DEVICE_PRESENCE.get(state or "")
        return None if presence is None else presence is not PresenceState.OFFLINE

    def snapshot(self) -> dict[str, Any]:
        """Every colleague's state, for a page's first paint (GET /presence)."""
        return self._view([self._entry(p) for p in self.people.values()])

    # ---------------------------------------------------------------------- internals

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sync(self, generation: int) -> None:
        try:
            await self.ari.rest_ready.wait()
            while not self._users_loaded and generation == self._generation:
                if not await self._load_users():
                    await asyncio.sleep(0.5)  # the call-log process is (re)starting: ask again
            if generation != self._generation:
                return
            since = self._events
            found = await self._read_devices(set(self._by_device))
        except AriError as exc:
            log.warning("presence: snapshot failed (%s); states unknown until the next connection", exc)
            return
        if generation != self._generation:
            return  # the socket dropped meanwhile: this snapshot is of a connection gone
        for name, state in found.items():
            if self._set_by_event.get(name, 0) <= since:  # no event since the snapshot began
                self.devices[name] = state
        self.synced = True
        self.snapshots += 1
        log.info("presence: snapshot of %d devices", len(found))
        self._recompute(self.people)

    async def _read_devices(self, names: set[str]) -> dict[str, str]:
        """The device states of `names` now: one request for every endpoint's registration
        and channels; a device state asked only of the endpoints in a call (ringing, talking
        or on hold is Asterisk's to tell)."""
        listed = await self.ari.call("endpoints_by_tech", tech=TECH) or []
        endpoints = {f"{TECH}/{e.get('resource', '')}": e for e in listed if isinstance(e, dict)}
        found: dict[str, str] = {}
        ask: list[str] = []
        for name in names:
            endpoint = endpoints.get(name)
            if endpoint is None:
                found[name] = "INVALID"
            elif endpoint.get("state") == "offline":
                found[name] = "UNAVAILABLE"
            elif endpoint.get("state") == "online" and not endpoint.get("channel_ids"):
                found[name] = "NOT_INUSE"
            else:
                ask.append(name)
        states = await asyncio.gather(*(self._device_state(n) for n in ask))
        found.update(zip(ask, states, strict=True))
        return found

    async def _device_state(self, name: str) -> str:
        try:
            data = await self.ari.call("device_state_get", deviceName=name)
        except AriNotFound:
            return "INVALID"
        return str((data or {}).get("state", "UNKNOWN"))

    async def _users_loop(self) -> None:
        """Who has which phones changes rarely (a new user, another ring choice): read again
        every few seconds. The states themselves come only from Asterisk's events."""
        while True:
            await asyncio.sleep(self.users_every)
            await self.reload_users()

    async def reload_users(self) -> bool:
        """Read who has which phones now (tests; the loop does it every few seconds)."""
        return await self._load_users()

    async def _load_users(self) -> bool:
        try:
            directory = await self.store.read(q.presence_directory)
        except (StoreError, OSError, EOFError) as exc:
            log.warning("presence: users not read: %s", exc)
            return False
        before = set(self.people)
        self.people = {p.id: p for p in directory.people}
        self.recipients = directory.recipients
        by_device: dict[str, set[int]] = {}
        for person in self.people.values():
            for device in person.devices:
                by_device.setdefault(device, set()).add(person.id)
        new_devices = set(by_device) - set(self._by_device)
        self._by_device = by_device
        self._users_loaded = True
        for gone in before - set(self.people):
            self.shown.pop(gone, None)
        if self.synced and new_devices - set(self.devices):
            self._spawn(self._add_devices(new_devices - set(self.devices), self._generation))
        self._recompute(self.people)
        return True

    async def _add_devices(self, names: set[str], generation: int) -> None:
        """Phones of a user added (or a ring choice changed) since the snapshot."""
        since = self._events
        try:
            found = await self._read_devices(names)
        except AriError as exc:
            log.warning("presence: new phones not read (%s)", exc)
            return
        if generation != self._generation:
            return
        for name, state in found.items():
            if self._set_by_event.get(name, 0) <= since:
                self.devices[name] = state
        self._recompute({u for n in names for u in self._by_device.get(n, ())})

    def _recompute(self, user_ids: Iterable[int]) -> None:
        """Tell the browsers about every user in `user_ids` whose state is not what they
        were told last."""
        changed = []
        for user_id in list(user_ids):
            person = self.people.get(user_id)
            if person is None:
                continue
            state = self.state_of(user_id)
            told = self.shown.get(user_id)
            if told is not None and told[0] == state:
                continue
            self._seq += 1
            self.shown[user_id] = (state, self._seq)
            changed.append(self._entry(person))
        if changed:
            self.notifier.changed(self.recipients, self._view(changed))

    def _entry(self, person: q.Colleague) -> dict[str, Any]:
        state, seq = self.shown.get(person.id, (PresenceState.UNKNOWN, 0))
        return {
            "id": person.id,
            "name": person.name,
            "extension": person.extension,
            "state": state.value,
            "title": PRESENCE_TITLES[state],
            "seq": seq,
        }

    def _view(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"epoch": self.epoch, "available": self.synced, "users": entries}
