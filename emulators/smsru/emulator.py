"""The emulated sms.ru service: one object holding options, clock, account state, the
delivery planner and the callback dispatcher, with one lock around all of them.

HTTP is not this module's business (see api.py/admin.py); this is what they call.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from emulators.smsru import methods, render, sending
from emulators.smsru.callbacks import Attempt, CallbackDispatcher
from emulators.smsru.clock import Clock
from emulators.smsru.delivery import DeliveryPlanner
from emulators.smsru.faults import pick
from emulators.smsru.options import EmulatorOptions, FaultRule
from emulators.smsru.state import AccountState, Params

log = logging.getLogger("emulators.smsru")

AUTH_ERROR = 200
AUTH_CHECK_ERROR = 301  # auth/check answers the "wrong api_id or login/password" wording


class Emulator:
    def __init__(self, options: EmulatorOptions) -> None:
        self.lock = threading.RLock()
        self._initial = copy.deepcopy(options)
        self.options = copy.deepcopy(options)
        self.clock = Clock(options.clock, options.start_time)
        self.rng = random.Random(options.seed)
        self.state = self._fresh_state()
        self.planner = DeliveryPlanner()
        self.dispatcher = CallbackDispatcher(self.clock, lambda: self.options)
        self._release = threading.Event()
        self._held = 0
        self._holds_changed = threading.Condition(self.lock)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._methods: dict[str, Callable[[Params, float], dict[str, Any]]] = {
            "sms/status": lambda p, now: methods.status(p, self.state, self.options),
            "my/balance": lambda p, now: methods.balance(self.state),
            "my/limit": lambda p, now: methods.limit(self.state, self.options, now),
            "my/free": lambda p, now: methods.free(self.options),
            "my/senders": lambda p, now: methods.senders(self.options),
            "auth/check": lambda p, now: render.ok(),
            "stoplist/add": lambda p, now: methods.stoplist_add(p, self.state),
            "stoplist/del": lambda p, now: methods.stoplist_del(p, self.state),
            "stoplist/get": lambda p, now: methods.stoplist_get(self.state),
            "callback/add": lambda p, now: methods.callback_add(p, self.state, self.dispatcher, now),
            "callback/del": lambda p, now: methods.callback_del(p, self.state, self.dispatcher),
            "callback/get": lambda p, now: methods.callback_get(self.state),
        }

    def _fresh_state(self) -> AccountState:
        return AccountState(balance=self.options.balance, callbacks=list(self.options.callback_urls))

    # -- the API ------------------------------------------------------------------------

    def known(self, method: str) -> bool:
        return method in self._methods or method in ("sms/send", "sms/cost")

    def api(self, method: str, params: Params, *, not_utf8: bool = False) -> tuple[dict[str, Any], list[str]]:
        """The reply payload for one API call, and the per-number key order for plain text."""
        if not self.known(method):
            return render.error(211), []
        with self.lock:
            if params.get("api_id") != self.options.api_id:
                return render.error(AUTH_CHECK_ERROR if method == "auth/check" else AUTH_ERROR), []
            if not_utf8:
                return render.error(212), []
            now = self._tick_locked()
            if method in ("sms/send", "sms/cost"):
                ctx = sending.Context(self.options, self.state, self.planner, now)
                return sending.handle(params, ctx, cost_only=method == "sms/cost")
            return self._methods[method](params, now), []

    def pick_fault(self, method: str) -> FaultRule | None:
        with self.lock:
            return pick(self.options, method, self.rng)

    def hold(self, seconds: float) -> bool:
        """Keep a request open (a "timeout" fault); True if released before `seconds`."""
        with self._holds_changed:
            event = self._release
            self._held += 1
            self._holds_changed.notify_all()
        try:
            return event.wait(seconds)
        finally:
            with self._holds_changed:
                self._held -= 1
                self._holds_changed.notify_all()

    def wait_for_holds(self, count: int, timeout: float) -> bool:
        """Block until `count` requests are being held (tests: the reply is now surely late)."""
        with self._holds_changed:
            return self._holds_changed.wait_for(lambda: self._held >= count, timeout)

    def release_holds(self) -> int:
        with self.lock:
            held, event = self._held, self._release
            self._release = threading.Event()
        event.set()
        return held

    # -- time ---------------------------------------------------------------------------

    def tick(self) -> int:
        """Apply every delivery step that is due; returns how many were applied."""
        with self.lock:
            before = len(self.planner)
            self._tick_locked()
            return before - len(self.planner)

    def _tick_locked(self) -> float:
        now = self.clock.now()
        for step in self.planner.due(now):
            message = self.state.messages.get(step.sms_id)
            if message is None:
                continue
            message.code, message.status_at = step.code, step.at
            message.history.append((step.code, step.at))
            record = f"sms_status\n{message.sms_id}\n{step.code}\n{int(step.at)}"
            for url in self.state.callbacks:
                self.dispatcher.enqueue(url, record)
        return now

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the clock, apply due delivery steps, then push due callbacks synchronously,
        so when this returns every callback due by the new time has been attempted."""
        now = self.clock.advance(seconds)
        steps = self.tick()
        attempts = self.pump()
        return {"now": now, "steps": steps, "attempts": [asdict(a) for a in attempts]}

    def pump(self) -> list[Attempt]:
        return self.dispatcher.pump()

    # -- administration -----------------------------------------------------------------

    def configure(self, changes: Mapping[str, Any]) -> None:
        with self.lock:
            self.options = self.options.updated(changes)
            if "balance" in changes:
                self.state.balance = self.options.balance
            if "callback_urls" in changes:
                self.state.callbacks = list(self.options.callback_urls)
            if "seed" in changes:
                self.rng = random.Random(self.options.seed)

    def config(self) -> dict[str, Any]:
        with self.lock:
            data = self.options.public()
            data["current_balance"] = str(self.state.balance)
            data["now"] = self.clock.now()
            return data

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            self._tick_locked()
            return [m.public() for m in self.state.messages.values()]

    def reset(self) -> None:
        """Back to the start-up options and an empty account; the clock keeps its time."""
        with self.lock:
            self.options = copy.deepcopy(self._initial)
            self.state = self._fresh_state()
            self.planner.clear()
            self.rng = random.Random(self.options.seed)
            self.dispatcher.reset()

    # -- background progression (real clock) -------------------------------------------

    def start(self) -> None:
        """Run delivery and callbacks in the background, for the real-time demo."""
        if self._ticker is not None:
            return
        self._stop.clear()
        self._ticker = threading.Thread(target=self._run, name="smsru-emulator-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        self.release_holds()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
            self._ticker = None
        self.dispatcher.close()

    def _run(self) -> None:
        while not self._stop.wait(self.options.tick_interval):
            try:
                self.tick()
                self.pump()
            except Exception:  # the ticker must survive a bad receiver or a bug in one step
                log.exception("sms.ru emulator tick failed")
