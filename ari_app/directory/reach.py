"""Whether the phones of a call can ring, asked of Asterisk before dialling.

A registrar's PJSIP endpoint is "online" in Asterisk once his phone has registered and
"offline" while it has no contact. Dialling an offline endpoint fails inside Asterisk with
a bare 500, so the registrar would learn only that the PBX refused: asked first, he is told
which phone is not registered, and nothing is dialled or logged.

A user may have two phones that ring (his SIP phone and his browser softphone,
`users.softphone_ring`): he is reachable when any of them is registered, and only the
registered ones are dialled (an endpoint Asterisk cannot tell about is dialled too).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ari_app.client import AriClient, AriError, AriNotFound
from ari_app.core.errors import Unreachable
from clinic.softphone import DEFAULT_RING, RING_BOTH, RING_WEB

OWN_OFFLINE = "Ваш телефон не зарегистрирован на АТС"  # issue 15's words; the advice follows
_ADVICE = {
    RING_WEB: "откройте софтфон («Прием по телефону» → «Открыть софтфон»)",
    RING_BOTH: "включите SIP-телефон или откройте софтфон («Прием по телефону» → «Открыть софтфон»)",
}


def own_phone_offline(extension: str, ring: str = DEFAULT_RING) -> str:
    advice = _ADVICE.get(ring, "включите телефон или проверьте его настройки")
    return f"{OWN_OFFLINE} (доб. {extension}): {advice}"


def phone_offline(extension: str) -> str:
    return f"Телефон доб. {extension} не зарегистрирован на АТС: абонент сейчас не может принять звонок"


@dataclass(frozen=True)
class Phones:
    """A party's phones: the endpoints that ring for him and his extension (and, for the
    registrar himself, his choice, which names the advice)."""

    endpoints: tuple[str, ...]
    extension: str
    ring: str = DEFAULT_RING


async def registered(ari: AriClient, endpoint: str) -> bool | None:
    """True/False for a registrar's PJSIP endpoint ("PJSIP/<sip id>" or its softphone's
    "PJSIP/<sip id>-web"); None when Asterisk cannot tell (a Local channel, the trunk, ARI
    unreachable): then dialling decides."""
    tech, _, resource = endpoint.partition("/")
    if tech != "PJSIP" or not resource or "@" in resource:
        return None
    try:
        state = await ari.endpoint_state(tech, resource)
    except AriNotFound:
        return False  # not in Asterisk's configuration (yet): no phone can register as it
    except AriError:
        return None
    return state != "offline"


async def any_registered(ari: AriClient, endpoints: tuple[str, ...]) -> bool | None:
    """False only when every endpoint is known to be offline."""
    states = await asyncio.gather(*(registered(ari, e) for e in endpoints))
    if any(state is True for state in states):
        return True
    return False if states and all(state is False for state in states) else None


async def check(
    ari: AriClient, own: Phones | None, other: Phones | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The endpoints worth dialling of the registrar's own phones and of the extension he
    calls (those not known to be offline), all asked at once. Raises Unreachable when every
    phone of either is offline."""
    parties = [p for p in (own, other) if p is not None]
    flat = [endpoint for p in parties for endpoint in p.endpoints]
    states = dict(zip(flat, await asyncio.gather(*(registered(ari, e) for e in flat)), strict=True))
    usable: list[tuple[str, ...]] = []
    for party in parties:
        ringable = tuple(e for e in party.endpoints if states[e] is not False)
        if not ringable:
            is_own = party is own
            raise Unreachable(
                own_phone_offline(party.extension, party.ring) if is_own else phone_offline(party.extension)
            )
        usable.append(ringable)
    if own is None:
        return (), usable[0] if usable else ()
    return usable[0], usable[1] if other is not None else ()
