"""One party, several phones: a registrar whose choice is «Оба» has his SIP phone and his
browser softphone (`<sip_id>-web`) ring together, as the dialplan's `Dial(A&B)` does. ARI
originates one endpoint per channel, so each phone gets a leg of its own, all in one group
(`Leg.group`, the first leg's channel id): the first to answer wins and the others are hung
up; the party has gone (busy, no answer, rejected) only when the last of its phones has.

`ring_all` originates a group; `install` wraps every feature's handlers so that they see one
party whatever the number of its phones: a leg's answer reaches the feature only for the
winner (a phone answering after it is hung up: role DROPPED), a leg's end only for the last
of the group (the cause a busy phone gave wins, so «Занято» is not hidden by the other
phone's «no answer"). Features therefore keep the single-phone logic they had."""

from __future__ import annotations

import asyncio
import logging

from ari_app.client import AriError
from ari_app.core import call as c
from ari_app.core.call import Leg, LiveCall
from ari_app.core.core import CallCore
from ari_app.core.routes import Answered, Gone, StasisRoutes
from ari_app.events import Channel

log = logging.getLogger(__name__)

_GROUPED_ROLES = (c.REGISTRAR, c.AGENT, c.REMOTE, c.THIRD, c.TRANSFER)


def legs_for(
    call: LiveCall, role: str, endpoints: tuple[str, ...], label: str, user_id: int | None = None
) -> list[Leg]:
    """One leg per endpoint of a party, grouped when there are several."""
    legs = [Leg(call.next_channel_id(role), role, endpoint, label, user_id=user_id) for endpoint in endpoints]
    if len(legs) > 1:
        for leg in legs:
            leg.group = legs[0].channel_id
    return legs


def group_key(leg: Leg) -> str:
    """The id a party's phones share: its first leg's channel id (a lone leg's own id)."""
    return leg.group or leg.channel_id


def siblings(call: LiveCall, leg: Leg) -> list[Leg]:
    if not leg.group:
        return []
    return [lg for lg in call.legs.values() if lg.group == leg.group and lg is not leg]


async def ring_all(
    core: CallCore,
    call: LiveCall,
    legs: list[Leg],
    *,
    caller_id: str,
    timeout: int,
    originator: str | None = None,
    app_args: str | None = None,
    variables: dict[str, dict[str, str]] | None = None,
) -> list[Leg]:
    """Originate every leg of a party at once; the legs Asterisk accepted. Raises the first
    refusal when it accepted none. `variables`: channel variables per endpoint (a leg whose
    endpoint is not named gets none). Called under the call's lock: the legs' events wait until
    every originate has been answered, so a phone's end is never taken for the party's while
    another originate is still on its way (all legs are tracked before the first request)."""
    for leg in legs:
        core.registry.track(call, leg)
    results = await asyncio.gather(
        *(
            core.originate(
                call,
                leg,
                caller_id=caller_id,
                timeout=timeout,
                originator=originator,
                app_args=app_args,
                variables=(variables or {}).get(leg.endpoint),
            )  # fmt: skip
            for leg in legs
        ),
        return_exceptions=True,
    )
    ringing = [leg for leg, result in zip(legs, results, strict=True) if result is None]
    errors = [r for r in results if isinstance(r, BaseException)]
    for error in errors:
        if not isinstance(error, AriError):
            raise error
    if not ringing:
        raise errors[0]
    return ringing


def install(routes: StasisRoutes, core: CallCore, default_gone: Gone) -> None:
    """Wrap the features' handlers (after they have all registered) with the group rules."""
    for role, handler in list(routes.answered.items()):
        routes.answered[role] = _first_answer(core, handler)
    for role in _GROUPED_ROLES:
        routes.gone[role] = _last_gone(routes.gone.get(role, default_gone))
    routes.on_answered(c.DROPPED, _late_answer(core))
    routes.on_gone(c.DROPPED, _nothing)


def _first_answer(core: CallCore, handler: Answered) -> Answered:
    async def answered(call: LiveCall, leg: Leg, channel: Channel) -> None:
        if leg.group:
            leg.won = True
            others = [lg for lg in siblings(call, leg) if not lg.gone]
            for other in others:
                other.role = c.DROPPED  # its answer or end no longer means anything
            await asyncio.gather(*(core.quiet(core.ari.hangup(lg.channel_id)) for lg in others))
            if others:
                log.info("call %s: %s answered, %d other phone(s) of the party hung up",
                         call.uid, leg.endpoint, len(others))  # fmt: skip
        await handler(call, leg, channel)

    return answered


def _last_gone(handler: Gone) -> Gone:
    async def gone(call: LiveCall, leg: Leg, cause: int | None) -> None:
        if leg.group and not leg.won:
            group = [leg, *siblings(call, leg)]
            if any(not lg.gone and lg.role == leg.role for lg in group):
                return  # another of the party's phones still rings
            if any(lg.cause in c.CAUSE_BUSY for lg in group):
                cause = next(lg.cause for lg in group if lg.cause in c.CAUSE_BUSY)
        await handler(call, leg, cause)

    return gone


def _late_answer(core: CallCore) -> Answered:
    async def late(call: LiveCall, leg: Leg, channel: Channel) -> None:
        """Answered just after another phone of the party (both at once): hung up."""
        leg.answered, leg.answered_at = False, None
        await core.quiet(core.ari.hangup(channel.id))

    return late


async def _nothing(call: LiveCall, leg: Leg, cause: int | None) -> None:
    """A dropped phone's end: the party goes on on the phone that answered."""
