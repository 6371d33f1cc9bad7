"""A small adapter over panoramisk 1.4 (AMI).

Rules learned the hard way (reference/asterisk.md §2, pbx-lab.md §7): the Manager is created
and connected inside the running event loop, and only async code touches it. panoramisk
reconnects forever after a lost connection and may log whole actions (the Login action holds
the secret), so we close it explicitly and give it a logger that redacts the secret.

    async with AmiClient.from_config(config.pbx) as ami:
        await ami.command("module reload res_pjsip.so")
        names = await ami.endpoints()

`run()` wraps one coroutine for synchronous callers (the launcher, apply, tests).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from panoramisk import Manager
from panoramisk.message import Message

from clinic.config import PbxConfig

T = TypeVar("T")
log = logging.getLogger(__name__)


class AmiError(RuntimeError):
    pass


class _Redact(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(s in text for s in self.secrets):
            for s in self.secrets:
                text = text.replace(s, "********")
            record.msg, record.args = text, ()
        return True


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager without the reconnect after we closed it on purpose."""

    closing = False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closing:
            self._connected = False
            return
        super().connection_lost(exc)


@dataclass
class AmiClient:
    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    timeout: float = 5.0
    _manager: _Manager | None = field(default=None, init=False, repr=False)
    events: list[Message] = field(default_factory=list, init=False, repr=False)

    @classmethod
    def from_config(cls, pbx: PbxConfig, timeout: float = 5.0) -> AmiClient:
        return cls(pbx.ami_host, pbx.ami_port, pbx.ami_user, pbx.ami_secret, timeout)

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def connect(self) -> None:
        plog = logging.getLogger("clinic.ami.panoramisk")
        redact = next((f for f in plog.filters if isinstance(f, _Redact)), None)
        if redact is None:
            redact = _Redact()
            plog.addFilter(redact)
            # its INFO lines ("Sending awaiting actions", protocol version) are noise for us
            plog.setLevel(logging.WARNING)
        if self.secret:
            redact.secrets.add(self.secret)
        manager = _Manager(
            loop=asyncio.get_running_loop(),
            host=self.host,
            port=self.port,
            username=self.username,
            secret=self.secret,
            ping_delay=3600,  # short-lived sessions; no keep-alive pings needed
            log=plog,
        )
        self._manager = manager
        try:
            await asyncio.wait_for(manager.connect(), self.timeout)
        except (TimeoutError, OSError) as exc:
            self.close()
            raise AmiError(f"AMI {self.host}:{self.port} unreachable: {exc.__class__.__name__}") from exc
        auth = manager.authenticated_future
        if auth is not None:
            try:
                await asyncio.wait_for(auth, self.timeout)
            except TimeoutError as exc:
                self.close()
                raise AmiError("AMI login timed out") from exc
        if not manager.authenticated:
            self.close()
            raise AmiError(f"AMI login refused for user {self.username!r}")

    def close(self) -> None:
        if self._manager is not None:
            self._manager.closing = True
            self._manager.close()
            self._manager = None

    def on_event(self, pattern: str, callback: Callable[[Message], Any]) -> None:
        """Call `callback(event)` for AMI events whose name matches `pattern` (fnmatch)."""
        if self._manager is None:
            raise AmiError("not connected")
        self._manager.register_event(pattern, lambda _m, ev: callback(ev))

    async def action(self, action: dict[str, str]) -> list[Message]:
        """Send an action; return every message of its answer (response + list events)."""
        if self._manager is None:
            raise AmiError("not connected")
        try:
            result = await asyncio.wait_for(self._manager.send_action(dict(action)), self.timeout)
        except TimeoutError as exc:
            raise AmiError(f"AMI action {action.get('Action')} timed out") from exc
        messages = result if isinstance(result, list) else [result]
        first = messages[0] if messages else None
        if first is not None and first.get("Response") == "Error":
            raise AmiError(f"AMI {action.get('Action')}: {first.get('Message', 'error')}")
        return messages

    async def command(self, cli: str) -> list[str]:
        """Run a CLI command; return its output lines."""
        messages = await self.action({"Action": "Command", "Command": cli})
        output = messages[0].get("Output", [])
        return output if isinstance(output, list) else str(output).splitlines()

    async def endpoints(self) -> list[str]:
        messages = await self.action({"Action": "PJSIPShowEndpoints"})
        return [m["ObjectName"] for m in messages if m.get("Event") == "EndpointList"]

    async def contacts(self) -> list[dict[str, str]]:
        """Registered contacts: dicts with at least Endpoint/AOR, URI and Status."""
        try:
            messages = await self.action({"Action": "PJSIPShowContacts"})
        except AmiError as exc:
            if "No Contacts found" in str(exc):
                return []
            raise
        return [dict(m) for m in messages if m.get("Event") == "ContactList"]

    async def dialplan_extensions(self, context: str) -> list[str]:
        try:
            messages = await self.action({"Action": "ShowDialPlan", "Context": context})
        except AmiError as exc:
            if "not found" in str(exc).lower():
                return []
            raise
        return [m["Extension"] for m in messages if m.get("Event") == "ListDialplan" and m.get("Extension")]


def run(pbx: PbxConfig, work: Callable[[AmiClient], Awaitable[T]], timeout: float = 5.0) -> T:
    """Open an AMI session in a fresh event loop, run `work(client)`, close it."""
    return run_client(AmiClient.from_config(pbx, timeout), work)


def run_client(client: AmiClient, work: Callable[[AmiClient], Awaitable[T]]) -> T:
    """Run from synchronous code. When the calling thread already runs an event loop (an
    async caller, or a library such as Playwright's sync API), asyncio.run() is refused
    there, so the session gets a short-lived thread of its own."""

    async def _main() -> T:
        async with client:
            return await work(client)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ami") as pool:
        return pool.submit(asyncio.run, _main()).result()
