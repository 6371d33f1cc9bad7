"""FastAGI server (panoramisk 1.4): dialplan lookups that always fail open.

    [clinic-inbound] ... AGI(${AGI_URL}/patient_lookup,${CALLERID(num)})

`patient_lookup` matches the caller on the last 10 digits of the number and sets
CALLERID(name) to the patient's name and PATIENT_ID to the id, for the ARI app's screen pop.
The lookup has a time budget (default 0.5 s): when the database is slow or down, or the
number is unknown, the channel gets AGI_LOOKUP=timeout|error|none and the call goes on.

panoramisk's own connection handler loops forever on a connection closed before the AGI
headers end; `FastAgiServer` reads the headers itself, with a deadline, and then hands the
request to panoramisk's `Request` for the commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from panoramisk.fast_agi import Request
from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import make_engine, make_session_factory
from clinic.phones import match_key
from clinic.services import calls as calls_svc

log = logging.getLogger(__name__)

Route = Callable[[Request], Awaitable[None]]


def _quote(value: str) -> str:
    """A value for `SET VARIABLE name "value"`: no quotes, backslashes or line breaks."""
    return '"' + "".join(ch for ch in value if ch not in '"\\\r\n') + '"'


def short_name(full: str) -> str:
    """ "Иванов Пётр Сергеевич" -> "Иванов П.С." (what fits a phone's display)."""
    parts = full.split()
    if not parts:
        return ""
    return parts[0] + (" " + "".join(f"{p[0]}." for p in parts[1:]) if parts[1:] else "")


@dataclass(frozen=True)
class Found:
    patient_id: int
    name: str


class PatientLookup:
    def __init__(self, sessions: sessionmaker[Session], budget: float = 0.5) -> None:
        self.sessions = sessions
        self.budget = budget
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="agi-db")

    def _find(self, number: str) -> Found | None:
        with self.sessions() as session:
            found = calls_svc.find_patients_by_number(session, number, limit=2)
            if len(found) != 1:  # unknown, or several patients share the phone: no guess
                return None
            return Found(found[0].id, short_name(found[0].full_name))

    async def __call__(self, request: Request) -> None:
        number = request.headers.get("agi_arg_1") or request.headers.get("agi_callerid", "")
        outcome = "none"
        found: Found | None = None
        if len(match_key(number)) == 10:
            loop = asyncio.get_running_loop()
            try:
                found = await asyncio.wait_for(
                    loop.run_in_executor(self._pool, self._find, number), self.budget
                )
                outcome = "found" if found else "none"
            except TimeoutError:
                outcome = "timeout"
                log.warning("patient_lookup over budget (%.2f s) for %s: call goes on", self.budget, number)
            except Exception:
                outcome = "error"
                log.exception("patient_lookup failed for %s: call goes on", number)
        if found is not None:
            await request.send_command(f"SET VARIABLE CALLERID(name) {_quote(found.name)}")
            await request.send_command(f"SET VARIABLE PATIENT_ID {found.patient_id}")
        await request.send_command(f"SET VARIABLE AGI_LOOKUP {outcome}")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class FastAgiServer:
    def __init__(self, routes: dict[str, Route], header_timeout: float = 2.0) -> None:
        self.routes: OrderedDict[str, Route] = OrderedDict(routes)
        self.header_timeout = header_timeout
        self.handled = 0
        self._server: asyncio.Server | None = None

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\n\n"), self.header_timeout)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        headers = OrderedDict(
            line.split(": ", 1) for line in raw.decode("utf-8", "replace").splitlines() if ": " in line
        )
        script = headers.get("agi_network_script", "")
        route = self.routes.get(script)
        try:
            if route is None:
                log.error("FastAGI: no route %r", script)
            else:
                await route(Request(app=None, headers=headers, reader=reader, writer=writer))
                self.handled += 1
        except Exception:
            log.exception("FastAGI route %r failed: the dialplan continues", script)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self.handler, host, port, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def make_server(sessions: sessionmaker[Session], budget: float = 0.5) -> tuple[FastAgiServer, PatientLookup]:
    lookup = PatientLookup(sessions, budget)
    return FastAgiServer({"patient_lookup": lookup}), lookup


async def serve(config: Config) -> None:
    sessions = make_session_factory(make_engine(config.database_url))
    server, lookup = make_server(sessions)
    port = await server.start("127.0.0.1", config.pbx.agi_port)
    log.info("FastAGI on 127.0.0.1:%d", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
        lookup.close()
