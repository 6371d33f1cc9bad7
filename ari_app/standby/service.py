"""Standby lines: a browser softphone's leg held up before it is needed.

A desk phone answers a click-to-call's callback leg in a few milliseconds; a browser must
first build a WebRTC session for it (peer connection, SDP offer/answer, ICE, DTLS), tens of
milliseconds on a quiet computer and hundreds on a busy one, and the patient is only dialled
once the registrar's leg is up. So each idle softphone window keeps one call of its own
open to Asterisk, to the dialplan's `mis-standby`, which lands here (Stasis `standby`): we
answer it and hold it, in no bridge (nothing is sent either way; the window sends no audio
on it). When the registrar presses «Звонок», the dialing feature takes his line (`claim`)
as his answered leg and dials the patient at once; Asterisk tells the window whom it now
talks to (a connected-line UPDATE with P-Asserted-Identity, from CONNECTEDLINE below), and
the window turns its microphone on. From the claim on, the channel is an ordinary leg of an
ordinary call: hold, transfers, recording and the end of the call treat it as any other, and
the call's end hangs it up; the window then opens a new standby line.

This is the persistent agent connection of contact-centre softphones (Amazon Connect's
"persistent connection", app_agent_pool's AgentLogin), kept per call rather than for the
whole shift, so the rest of call control keeps one channel per call.

A window keeps a standby line only while it has no other call (it hangs the line up when a
call rings it or it dials out itself), so a softphone's device state INUSE with a ready
line here means «зарегистрирован» (presence asks `only_standby`)."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from ari_app.client import AriClient, AriError
from ari_app.events import Channel
from clinic.softphone import STANDBY_EXTEN, WEB_SUFFIX

log = logging.getLogger(__name__)

STASIS_ARG = "standby"  # the dialplan's Stasis(${ARI_APP},standby)
TECH = "PJSIP/"


def endpoint_of(channel_name: str) -> str:
    """The endpoint a PJSIP channel belongs to: "PJSIP/reg101-web-0000002a" → "PJSIP/reg101-web"."""
    if not channel_name.startswith(TECH) or "-" not in channel_name:
        return ""
    return channel_name.rsplit("-", 1)[0]


@dataclass
class Line:
    channel_id: str
    endpoint: str  # "PJSIP/reg101-web"
    ready: bool = False  # answered: ours to claim


class StandbyService:
    def __init__(self, ari: AriClient, changed: Callable[[str], None] | None = None) -> None:
        self.ari = ari
        self.lines: dict[str, Line] = {}  # endpoint → its line (one per softphone)
        self.channels: dict[str, Line] = {}  # channel id → line, until claimed or gone
        self.changed = changed or (lambda _endpoint: None)  # presence: recompute the device
        self.claimed = 0  # lines taken by calls (health, tests)

    # ------------------------------------------------------------------ ARI events

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.channels

    async def start(self, channel: Channel) -> None:
        """A softphone's standby call entered Stasis: answer and keep it (the window's newer
        line replaces an older one: a reloaded window's line may not have gone yet)."""
        endpoint = endpoint_of(channel.name)
        if not endpoint.endswith(WEB_SUFFIX):
            log.warning("standby: %s is not a browser softphone: hung up", channel.name)
            await self._hangup(channel.id)
            return
        line = Line(channel.id, endpoint)
        older = self.lines.get(endpoint)
        self.lines[endpoint] = line
        self.channels[channel.id] = line
        if older is not None:
            self.channels.pop(older.channel_id, None)
            await self._hangup(older.channel_id)
        try:
            await self.ari.call("answer", channelId=channel.id)
        except AriError as exc:
            log.info("standby: %s not answered (%s)", channel.name, exc)
            self.gone(channel.id)
            return
        if self.channels.get(channel.id) is line:
            line.ready = True
            self.changed(endpoint)

    def gone(self, channel_id: str) -> None:
        """The line's channel left Stasis or was destroyed before anyone claimed it."""
        line = self.channels.pop(channel_id, None)
        if line is None:
            return
        if self.lines.get(line.endpoint) is line:
            del self.lines[line.endpoint]
            self.changed(line.endpoint)

    # ------------------------------------------------------------------ call control

    def claim(self, endpoints: tuple[str, ...]) -> Line | None:
        """The ready line of the first of `endpoints` that has one, now the caller's: its
        events go to the call from here on. None: no ready line (the leg is dialled)."""
        for endpoint in endpoints:
            line = self.lines.get(endpoint)
            if line is not None and line.ready:
                del self.lines[endpoint]
                self.channels.pop(line.channel_id, None)
                self.claimed += 1
                self.changed(endpoint)
                return line
        return None

    def only_standby(self, device: str) -> bool:
        """Whether `device` ("PJSIP/reg101-web") is in use by nothing but its line (ready, or
        still being answered: Asterisk counts the new channel INUSE from its first moment)."""
        return device in self.lines

    async def show_peer(self, channel_id: str, name: str, number: str) -> None:
        """Tell the window whom the line now talks to: Asterisk sends the connected line
        (an UPDATE with P-Asserted-Identity), which is also the window's signal that its
        line is in a call. A failure is logged: the call goes on."""
        shown = re.sub(r'["<>\\]', "", name).strip()
        value = f'"{shown}" <{number}>' if shown else f"<{number}>"
        try:
            await self.ari.call(
                "set_var", channelId=channel_id, variable="CONNECTEDLINE(all)", value=value
            )
        except AriError as exc:
            log.warning("standby: connected line of %s not sent: %s", channel_id, exc)

    # ------------------------------------------------------------------ reconnection

    async def resync(self, tracked: Callable[[str], bool]) -> None:
        """After a (re)connection of the events socket: lines whose channels are gone are
        forgotten; a standby channel in Stasis that is not ours (ari_app restarted) is hung
        up, and its window opens a new one, whose state we then know from the start."""
        try:
            channels = await self.ari.channels()
        except AriError as exc:
            log.warning("standby: channels not read after reconnecting: %s", exc)
            return
        alive = {ch.id for ch in channels}
        for channel_id in [c for c in self.channels if c not in alive]:
            self.gone(channel_id)
        for ch in channels:
            if ch.exten == STANDBY_EXTEN and ch.id not in self.channels and not tracked(ch.id):
                await self._hangup(ch.id)

    async def _hangup(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):  # gone already
            await self.ari.hangup(channel_id)
