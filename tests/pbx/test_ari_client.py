"""The ARI client's contract, checked against the running Asterisk 22.

`OPS` is every operation the application can send: each path, method and parameter name
must exist in the live `/ari/api-docs`. A recorder also sees what the client really sent
during a short originate/bridge/hangup exchange, and those requests are checked the same way.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiorun
import httpx
import pytest

from ari_app.client import OPS, AriClient, AriConflict, AriNotFound, error_for, supports_rest_over_ws
from ari_app.events import ChannelDestroyed, StasisStart, parse_event

from .pbxkit import Pbx

pytestmark = pytest.mark.pbx
LOOP = "Local/answer@clinic-loopback/n"


def _api_docs(pbx: Pbx) -> dict[tuple[str, str], set[str]]:
    """{(METHOD, path): {parameter names}} from the live api-docs."""
    cfg = pbx.config.pbx
    auth = (cfg.ari_user, cfg.ari_password)
    with httpx.Client(base_url=cfg.ari_url, auth=auth, timeout=5, trust_env=False) as http:
        resources = http.get("/api-docs/resources.json").json()
        out: dict[tuple[str, str], set[str]] = {}
        for api in resources["apis"]:
            name = api["path"].rsplit("/", 1)[-1].replace("{format}", "json")
            doc = http.get(f"/api-docs/{name}").json()
            for entry in doc["apis"]:
                for op in entry["operations"]:
                    out[(op["httpMethod"], entry["path"])] = {p["name"] for p in op.get("parameters", [])}
    return out


def _path_params(path: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", path))


def test_every_operation_matches_the_live_api_docs(pbx: Pbx) -> None:
    docs = _api_docs(pbx)
    assert len(docs) > 50, "api-docs looks empty"
    problems = []
    for name, op in OPS.items():
        known = docs.get((op.method, op.path))
        if known is None:
            problems.append(f"{name}: {op.method} {op.path} is not in api-docs")
            continue
        unknown = (op.params | _path_params(op.path)) - known
        if unknown:
            problems.append(f"{name}: parameters {sorted(unknown)} unknown to {op.method} {op.path}")
    assert not problems, problems


def test_a_parameter_outside_the_table_is_refused_before_sending(pbx: Pbx) -> None:
    cfg = pbx.config.pbx

    async def go() -> None:
        client = AriClient(cfg.ari_url, cfg.ari_user, cfg.ari_password, "clinic-contract")
        try:
            with pytest.raises(ValueError, match="bypassStasis"):
                await client.call("set_var", channelId="x", variable="A", value="1", bypassStasis=True)
        finally:
            await client.close()

    aiorun.run(go)


@pytest.mark.parametrize("transport", ["websocket", "http"])
def test_sent_requests_match_api_docs_and_errors_map_by_status(pbx: Pbx, transport: str) -> None:
    """Originate to a Local channel that answers, bridge it, hang up; every request sent is
    checked, and the errors come back typed — with REST over the events websocket (what
    Asterisk 22.10 gets) and over HTTP (an Asterisk before 22.4)."""
    cfg = pbx.config.pbx
    sent: list[tuple[str, str, dict[str, Any]]] = []
    docs = _api_docs(pbx)

    async def go() -> list[Any]:
        client = AriClient(
            cfg.ari_url,
            cfg.ari_user,
            cfg.ari_password,
            "clinic-contract",
            recorder=lambda n, m, p: sent.append((n, m, p)),
            rest_over_ws=transport == "websocket",
        )
        events: asyncio.Queue[Any] = asyncio.Queue()

        async def on_event(ev: Any) -> None:
            await events.put(ev)

        reader = asyncio.create_task(client.run_events(on_event))
        try:
            assert await asyncio.wait_for(client.rest_ready.wait(), 10) is True
            assert client.rest_transport == transport
            await client.create_bridge("contract-br")
            # a Local channel whose ;2 half answers and echoes (clinic-loopback); ;1 is ours
            await client.originate(
                LOOP, channel_id="contract-1", app_args="contract", variables={"CONTRACT": "1"}
            )
            seen = []
            while True:
                ev = await asyncio.wait_for(events.get(), 10)
                seen.append(ev)
                if isinstance(ev, StasisStart) and ev.channel.id == "contract-1":
                    break
            await client.add_to_bridge("contract-br", "contract-1")
            assert (await client.bridge("contract-br")).channels == ("contract-1",)
            assert await client.get_var("contract-1", "CONTRACT") == "1"
            with pytest.raises(AriNotFound):
                await client.hangup("no-such-channel")
            with pytest.raises(AriConflict):  # a duplicate channel id is a 409 ...
                await client.call(
                    "originate", endpoint=LOOP, app=client.app, appArgs="x", channelId="contract-1"
                )
            # ... which originate() takes as its own earlier attempt (our ids are unique)
            assert (await client.originate(LOOP, channel_id="contract-1", app_args="x")).id == "contract-1"
            await client.hangup("contract-1")
            while True:
                ev = await asyncio.wait_for(events.get(), 10)
                seen.append(ev)
                if isinstance(ev, ChannelDestroyed) and ev.channel.id == "contract-1":
                    break
            await client.destroy_bridge("contract-br")
            return seen
        finally:
            await client.close()
            reader.cancel()

    seen = aiorun.run(go)
    assert any(isinstance(e, StasisStart) and e.args == ("contract",) for e in seen)
    assert sent, "the recorder saw nothing"
    for name, method, params in sent:
        op = OPS[name]
        assert method == op.method
        known = docs[(op.method, op.path)]
        assert set(params) <= known, (name, sorted(set(params) - known))


def test_parse_event_and_error_mapping_offline() -> None:
    ev = parse_event(
        {
            "type": "ChannelDtmfReceived",
            "digit": "5",
            "duration_ms": 120,
            "channel": {
                "id": "c1",
                "name": "PJSIP/reg101-0001",
                "state": "Up",
                "caller": {"number": "101", "name": "Reg"},
            },
        }
    )
    assert ev.type == "ChannelDtmfReceived" and ev.digit == "5" and ev.channel.caller_number == "101"  # type: ignore[attr-defined]
    assert parse_event({"type": "SomethingNew"}).type == "SomethingNew"
    assert [type(error_for(s, "m")).__name__ for s in (400, 404, 409, 412, 422, 500, 503)] == [
        "AriBadRequest",
        "AriNotFound",
        "AriConflict",
        "AriInvalidState",
        "AriUnprocessable",
        "AriServerError",
        "AriServerError",
    ]


@pytest.mark.parametrize(
    ("version", "websocket"),
    [
        ("22.10.1+dfsg+~cs6.17.60671434-1", True),  # the chroot's Debian build
        ("22.4.0", True),
        ("22.3.0", False),
        ("21.9.0", True),
        ("21.8.2", False),
        ("20.14.1", True),
        ("20.13.0", False),
        ("18.26.0", False),
        ("23.0.0-rc1", True),
        ("GIT-master-abc123", False),
        ("", False),
    ],
)
def test_rest_over_websocket_is_used_from_the_versions_that_have_it(version: str, websocket: bool) -> None:
    assert supports_rest_over_ws(version) is websocket
