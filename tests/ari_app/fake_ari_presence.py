"""The fake ARI with Asterisk's device states (presence): `PresenceFakeAri` adds to FakeAri
the application subscription, `GET /endpoints/{tech}`, `GET /deviceStates/{name}` and the
`DeviceStateChanged` events, shaped as the real Asterisk 22 sends them
(tests/fixtures/ari-presence/device_states.json, re-checked by tests/pbx/test_presence.py).

As in Asterisk, a registered phone's device state follows its channels: a channel on the
endpoint that is not up makes it RINGING, an answered one INUSE, none NOT_INUSE; a phone
that unregisters is UNAVAILABLE. Events go out only once the application has subscribed to
`deviceState:` (and only those its event filter lets through)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .fake_ari import FakeAri
from .fake_ari_model import Json, now_iso

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "ari-presence" / "device_states.json"


class PresenceFakeAri(FakeAri):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registered: dict[str, bool] = {}  # "PJSIP/reg101" -> a phone is registered
        self.device_states: dict[str, str] = {}  # the state Asterisk would tell now
        self.subscriptions: set[str] = set()
        self.recorded = json.loads(RECORDED.read_text())

    # -- the outside world ------------------------------------------------------------

    def register(self, endpoint: str, on: bool = True) -> None:
        """A phone registers (or unregisters, `on=False`) as `endpoint` ("PJSIP/reg101")."""
        self.call(lambda: self._register(endpoint, on))

    def set_device(self, name: str, state: str, *, announce: bool = True) -> None:
        """Set a device's state directly; `announce=False`: Asterisk changed it without the
        app hearing (its socket was down)."""
        self.call(lambda: self._set(name, state, announce))

    def device_event(self, name: str, state: str) -> Json:
        event = copy.deepcopy(self.recorded["events"][0])
        event.update(timestamp=now_iso(), application=self._app, asterisk_id="fa:ke:00:00:00:01")
        event["device_state"] = {"name": name, "state": state}
        return event

    # -- the model --------------------------------------------------------------------

    def _register(self, endpoint: str, on: bool) -> None:
        self.registered[endpoint] = on
        self.endpoints[endpoint] = "online" if on else "offline"  # reach.py asks endpoint_get
        self._follow()

    def _set(self, name: str, state: str, announce: bool) -> None:
        if self.device_states.get(name) == state:
            return
        self.device_states[name] = state
        if announce and self._socket_open() and "deviceState:" in self.subscriptions:
            self._emit(self.device_event(name, state))

    def _socket_open(self) -> bool:
        return bool(self._sockets)

    def _follow(self) -> None:
        """Every registered endpoint's device state from its channels, as chan_pjsip derives it."""
        for endpoint, on in self.registered.items():
            mine = [ch for ch in self.channels.values() if ch.endpoint == endpoint]
            if not on:
                state = "UNAVAILABLE"
            elif not mine:
                state = "NOT_INUSE"
            elif any(ch.state == "Up" for ch in mine):
                state = "INUSE"
            else:
                state = "RINGING"
            self._set(endpoint, state, True)

    def _changed(self) -> None:
        super()._changed()  # type: ignore[misc]
        if not hasattr(self, "registered"):
            return  # FakeAri.__init__ still running
        if not self._sockets:
            self.subscriptions.clear()  # the application went with its socket: subscribe again
        self._follow()

    # -- REST (the routes are the base fake's: fake_ari_model.ROUTES) ----------------

    def _op_endpoints_by_tech(self, p: Json, b: Json) -> tuple[int, Any]:
        tech = str(p["tech"])
        names = sorted({*self.endpoints, *self.registered, *self.device_states})
        listed = []
        for name in names:
            t, _, resource = name.partition("/")
            if t != tech:
                continue
            offline = self.device_states.get(name) == "UNAVAILABLE"
            state = self.endpoints.get(name) or ("offline" if offline else "online")
            ids = [ch.id for ch in self.channels.values() if ch.endpoint == name]
            listed.append({"technology": t, "resource": resource, "state": state, "channel_ids": ids})
        return 200, listed

    def _op_device_state_get(self, p: Json, b: Json) -> tuple[int, Any]:
        name = str(p["deviceName"])
        return 200, {"name": name, "state": self.device_states.get(name, "INVALID")}

    def _op_app_subscribe(self, p: Json, b: Json) -> tuple[int, Any]:
        self.subscriptions.add(str(p.get("eventSource", "")))
        return 200, {**self._op_app_get(p, b)[1], "device_names": ["__AST_DEVICE_STATE_ALL_TOPIC"]}
