"""The channels a reminder rule can use, as a registry.

A channel is offered in «Правила напоминаний» only once a dispatcher is registered for it:
SMS and the Mango robot register themselves (clinic/reminders/__init__.py); our own voice
robot is plugged in by calling `register(Channel("voice", ...))` from its package, and
nothing else changes. A stored rule whose channel has no dispatcher plans nothing.

A channel gets the ids of reminders (`reminder_jobs`) that are due now and were checked just
before (the visit is booked, not confirmed, not moved, outside quiet hours, not too late);
it must move each of them out of `planned` (sent / skipped / failed) in its own commits.
`withdraw` (optional) stops what the channel already handed over for visits that were
confirmed, cancelled or moved since (the Mango robot deletes its pending task); it returns
how many reminders it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config

CHANNEL_SMS = "sms"
CHANNEL_MANGO = "mango"
CHANNEL_VOICE = "voice"  # our own robot on Asterisk, registered by its package when ready


@dataclass(frozen=True)
class Context:
    """What a channel needs: the database, the configuration, the (injectable) clock and
    channel-specific options (e.g. the Mango client's test clock) by channel key."""

    sessions: sessionmaker[Session]
    config: Config
    clock: Callable[[], datetime]
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Channel:
    key: str
    title: str  # as the rules page shows it
    needs_template: bool  # an SMS template makes its text (the Mango robot speaks its own)
    dispatch: Callable[[Context, list[int]], None]
    withdraw: Callable[[Context], int] | None = None
    # why the channel cannot work now (no SMS key, no Mango system), shown on the rules page
    problem: Callable[[Session], str | None] = lambda _session: None


_registry: dict[str, Channel] = {}


def register(channel: Channel) -> None:
    """Add (or replace) a channel; from then on the rules page offers it."""
    _registry[channel.key] = channel


def unregister(key: str) -> None:
    _registry.pop(key, None)


def get(key: str) -> Channel | None:
    return _registry.get(key)


def registered() -> list[Channel]:
    return list(_registry.values())


def title_of(key: str) -> str:
    channel = _registry.get(key)
    if channel is not None:
        return channel.title
    return {CHANNEL_SMS: "СМС", CHANNEL_MANGO: "Робот Mango Office", CHANNEL_VOICE: "Голосовой робот"}.get(
        key, key
    )
