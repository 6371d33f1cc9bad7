"""A registrar's own phone calls are found by his exact PJSIP endpoint: `reg` never sees
(or takes over) the calls of `reg-2` (issue 12, point 9)."""

from __future__ import annotations

import asyncio
from typing import Any

from ari_app.calls.notifier import Notifier
from ari_app.calls.queries import Actor, Directory
from ari_app.events import Channel
from ari_app.features import CallControl
from clinic.channels import pjsip_endpoint


class ChannelsOnlyAri:
    """The two ARI reads phone_calls() makes, answered from a fixed list of channels."""

    def __init__(self, channels: list[Channel], peers: dict[str, str]) -> None:
        self._channels, self._peers = channels, peers

    async def channels(self) -> list[Channel]:
        return self._channels

    async def get_var(self, channel_id: str, variable: str) -> str:
        assert variable == "BRIDGEPEER"
        return self._peers[channel_id]


def _up(cid: str, name: str, exten: str = "", context: str = "clinic-internal") -> Channel:
    return Channel(id=cid, name=name, state="Up", context=context, exten=exten, app_name="Dial")


def test_pjsip_endpoint_reads_the_whole_name() -> None:
    assert pjsip_endpoint("PJSIP/reg-0000001a") == "reg"
    assert pjsip_endpoint("PJSIP/reg-2-0000001a") == "reg-2"
    assert pjsip_endpoint("PJSIP/trunk-000000ff") == "trunk"
    assert pjsip_endpoint("Local/101@clinic-internal-00000001;1") is None
    assert pjsip_endpoint("PJSIP/reg") is None


def test_a_prefix_sip_id_does_not_see_the_other_registrars_calls() -> None:
    channels = [
        _up("a1", "PJSIP/reg-2-0000001a", exten="79161234567", context="clinic-outbound"),
        _up("a2", "PJSIP/trunk-0000001b"),
        _up("b1", "PJSIP/reg-0000001c", exten="79031112233", context="clinic-outbound"),
        _up("b2", "PJSIP/trunk-0000001d"),
    ]
    ari: Any = ChannelsOnlyAri(channels, {"a1": "PJSIP/trunk-0000001b", "b1": "PJSIP/trunk-0000001d"})
    control = CallControl(ari, store=None, bus=Notifier())  # type: ignore[arg-type]
    reg = Actor(1, False, "Регистратор", "101", "reg", True)
    reg2 = Actor(2, False, "Регистратор 2", "102", "reg-2", True)
    # fresh: no database read
    control.directory.preload(
        Directory(users={1: reg, 2: reg2}, by_extension={"101": reg, "102": reg2}, trunk=True)
    )

    mine = asyncio.run(control.takeover.phone_calls(1))
    theirs = asyncio.run(control.takeover.phone_calls(2))
    assert [c["channel_id"] for c in mine] == ["b1"]
    assert [c["channel_id"] for c in theirs] == ["a1"]
