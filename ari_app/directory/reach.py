"""Whether the phones of a call can ring, asked of Asterisk before dialling.

A registrar's SIP endpoint is "online" in Asterisk once his phone has registered and
"offline" while it has no contact. Dialling an offline endpoint fails inside Asterisk with
a bare 500, so the registrar would learn only that the PBX refused: asked first, he is told
which phone is not registered, and nothing is dialled or logged.
"""

from __future__ import annotations

import asyncio

from ari_app.client import AriClient, AriError, AriNotFound
from ari_app.core.errors import Unreachable


def own_phone_offline(extension: str) -> str:
    return (
        f"Ваш телефон (доб. {extension}) не зарегистрирован на АТС: "
        "включите телефон или проверьте его настройки"
    )


def phone_offline(extension: str) -> str:
    return f"Телефон доб. {extension} не зарегистрирован на АТС: абонент сейчас не может принять звонок"


async def registered(ari: AriClient, endpoint: str) -> bool | None:
    """True/False for a registrar's PJSIP endpoint ("PJSIP/<sip id>"); None when Asterisk
    cannot tell (a Local channel, the trunk, ARI unreachable): then dialling decides."""
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


async def check(ari: AriClient, own: tuple[str, str] | None, other: tuple[str, str] | None) -> None:
    """Raise Unreachable if the registrar's own phone or the extension he calls is not
    registered. `own` and `other` are (endpoint, extension); both asked at once."""
    pairs = [p for p in (own, other) if p is not None]
    states = await asyncio.gather(*(registered(ari, endpoint) for endpoint, _ in pairs))
    for (endpoint, extension), state in zip(pairs, states, strict=True):
        if state is False:
            is_own = own is not None and endpoint == own[0]
            raise Unreachable(own_phone_offline(extension) if is_own else phone_offline(extension))
