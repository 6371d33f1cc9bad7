"""FastAGI server (panoramisk 1.4): dialplan lookups that always fail open.

    [clinic-inbound] ... AGI(${AGI_URL}/patient_lookup,${CALLERID(num)})

`patient_lookup` matches the caller on the last 10 digits of the number and sets
CALLERID(name) to the patient's name and PATIENT_ID to the id, for the ARI app's screen pop;
and ROBOT_ASK=1 when our own voice robot's inbound confirmation is switched on and the
patient has upcoming visits to confirm: only then does the dialplan hand the call to the
robot first, so every other caller reaches the registrars without the extra hop.
The lookup has a time budget (default 0.5 s): when the database is slow or down, or the
number is unknown, the channel gets AGI_LOOKUP=timeout|error|none and the call goes on.

panoramisk's own connection handler loops forever on a connection closed before the AGI
headers end; `FastAgiServer` reads the headers itself, with a deadline, and then hands the
request to panoramisk's `Request` for the commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from panoramisk.fast_agi import Request
from sqlalchemy.orm import Session, sessionmaker

from clinic.channels import pjsip_endpoint
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
    robot_asks: bool = False  # the own robot's inbound confirmation has visits to read him


def _robot_asks(session: Session, number: str) -> bool:
    """Whether the own robot would read this caller his upcoming visits (its setting is on and
    he has some booked and unanswered); the robot checks again when the call reaches it."""
    from clinic.clock import clinic_zone
    from clinic.voice_robot import settings as robot_settings
    from clinic.voice_robot.answers import upcoming_for_caller

    if not robot_settings.read(session).inbound_confirm:
        return False
    now_local = datetime.now(UTC).astimezone(clinic_zone(session)).replace(tzinfo=None)
    return bool(upcoming_for_caller(session, number, now_local, limit=1))


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
            return Found(found[0].id, short_name(found[0].full_name), _robot_asks(session, number))

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
            if found.robot_asks:
                await request.send_command("SET VARIABLE ROBOT_ASK 1")
        await request.send_command(f"SET VARIABLE AGI_LOOKUP {outcome}")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _int(value: str | None) -> int:
    try:
        return int(float(value or 0))
    except (ValueError, OverflowError):  # "", "nan", "inf": not a duration
        return 0


class CallLog:
    """`call_log`, run by the dialplan's hangup handler for calls placed with Dial() (from a
    registrar's phone, or an incoming call while the ARI app was away): one call-log row.

        AGI(${AGI_URL}/call_log,<kind>,<endpoint>,<number>,${DIALSTATUS},${ANSWEREDTIME},
            ${DIALEDTIME},${UNIQUEID},${DIALEDPEERNAME})

    The channel has hung up already, so nothing is sent back; a slow or failed write is
    logged and given up after the budget, never retried into a duplicate (the row is keyed
    by the channel's UNIQUEID)."""

    def __init__(self, sessions: sessionmaker[Session], budget: float = 2.0) -> None:
        self.sessions = sessions
        self.budget = budget
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="agi-log")

    def _write(self, report: calls_svc.PhoneCallReport) -> None:
        with self.sessions() as session, session.begin():
            calls_svc.log_phone_call(session, report, now=datetime.now(UTC))

    async def __call__(self, request: Request) -> None:
        h = request.headers
        kind, endpoint = h.get("agi_arg_1", ""), h.get("agi_arg_2", "")
        peer = h.get("agi_arg_8", "")  # "PJSIP/reg101-0000002a": who answered an inbound call
        answered_by = pjsip_endpoint(peer)
        if kind == "inbound" and answered_by is not None:
            endpoint = answered_by
        report = calls_svc.PhoneCallReport(
            uniqueid=h.get("agi_arg_7") or h.get("agi_uniqueid", ""),
            kind=kind,
            endpoint=endpoint,
            number=h.get("agi_arg_3", ""),
            dial_status=h.get("agi_arg_4", ""),
            answered_s=_int(h.get("agi_arg_5")),
            dialed_s=_int(h.get("agi_arg_6")),
        )
        if not report.uniqueid or kind not in calls_svc.PHONE_CALL_KINDS:
            log.error("call_log: bad arguments %r", {k: v for k, v in h.items() if k.startswith("agi_arg")})
            return
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(self._pool, self._write, report), self.budget)
        except TimeoutError:
            log.warning("call_log over budget (%.1f s) for %s", self.budget, report.uniqueid)
        except Exception:
            log.exception("call_log failed for %s", report.uniqueid)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


# the secret, from Asterisk's environment (runtime.start puts it there): as a dialplan global
# it was printed into Asterisk's log at every reload
KEY_VARIABLE = "ENV(MIS_AGI_KEY)"


class FastAgiServer:
    def __init__(self, routes: dict[str, Route], header_timeout: float = 2.0, secret: str = "") -> None:
        self.routes: OrderedDict[str, Route] = OrderedDict(routes)
        self.header_timeout = header_timeout
        self.secret = secret
        self.handled = 0
        self.refused = 0
        self._last_refusal_log = -60.0
        self._server: asyncio.Server | None = None

    def _refuse(self, script: str, peer: object) -> None:
        # counted always, logged once a minute: a looping prober must not flood the log
        self.refused += 1
        now = time.monotonic()
        if now - self._last_refusal_log >= 60:
            self._last_refusal_log = now
            log.warning("FastAGI: refused %r from %s without the dialplan's key (%d so far)", script, peer,
                        self.refused)

    async def _proves_secret(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Ask the caller for the dialplan's key: only our Asterisk's dialplan has it. The
        caller cannot see it in the request; it must answer `200 result=1 (<key>)`."""
        writer.write(f"GET VARIABLE {KEY_VARIABLE}\n".encode())
        try:
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), self.header_timeout)
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            return False
        text = line.decode("utf-8", "replace").strip()
        prefix = "200 result=1 ("
        if not (text.startswith(prefix) and text.endswith(")")):
            return False
        offered = text[len(prefix) : -1].encode("utf-8", "replace")
        return hmac.compare_digest(offered, self.secret.encode())

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
            elif self.secret and not await self._proves_secret(reader, writer):
                self._refuse(script, writer.get_extra_info("peername"))
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


class Routes:
    """The server's handlers, closed together."""

    def __init__(self, sessions: sessionmaker[Session], budget: float) -> None:
        self.lookup = PatientLookup(sessions, budget)
        self.call_log = CallLog(sessions)

    def close(self) -> None:
        self.lookup.close()
        self.call_log.close()


def make_server(
    sessions: sessionmaker[Session], budget: float = 0.5, secret: str = ""
) -> tuple[FastAgiServer, Routes]:
    routes = Routes(sessions, budget)
    handlers: dict[str, Route] = {"patient_lookup": routes.lookup, "call_log": routes.call_log}
    return FastAgiServer(handlers, secret=secret), routes


async def serve(config: Config) -> None:
    sessions = make_session_factory(make_engine(config.database_url))
    if not config.pbx.agi_secret:
        raise SystemExit("MIS_AGI_SECRET is empty: the FastAGI server needs the dialplan's key")
    server, routes = make_server(sessions, secret=config.pbx.agi_secret)
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
        routes.close()
