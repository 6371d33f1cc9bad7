"""The call directory: active users, the extensions with a working SIP account and whether
the trunk is set up, read from the call log's database and cached for DIRECTORY_TTL
seconds, so a command costs no database round trip. An unknown user or extension asks again
at once (someone added since the last read). Also the one place where a dialled target
(an extension or a number) is checked and turned into the endpoints that ring for it: an
extension rings its user's chosen phones (`softphone_ring`: his SIP phone, his browser
softphone `<sip_id>-web`, or both; clinic/softphone.py), a number goes through the trunk."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from ari_app.calls import queries as q
from ari_app.calls.queries import Actor, Directory
from ari_app.calls.store import CallStore
from ari_app.core.errors import BadRequest, Forbidden
from clinic.phones import PhoneError, normalize
from clinic.softphone import DEFAULT_RING, ring_names

DIRECTORY_TTL = 2.0  # seconds a user or trunk change may take to reach click-to-call
_EXTENSION = re.compile(r"^[0-9]{2,8}$")


@dataclass(frozen=True)
class Target:
    endpoints: tuple[str, ...]  # what rings: one originate each, the first to answer wins
    label: str  # extension or E.164 number
    is_extension: bool
    user_id: int | None = None  # the registrar behind an extension
    name: str = ""

    @property
    def endpoint(self) -> str:
        """The first (for a registrar: his SIP phone when it rings at all)."""
        return self.endpoints[0]


@dataclass(frozen=True)
class Endpoints:
    registrar: str = "PJSIP/{sip_id}"
    number: str = "PJSIP/{number}@trunk"

    def of_registrar(self, sip_id: str, ring: str = DEFAULT_RING) -> tuple[str, ...]:
        """The endpoints that ring for a user, by his choice; a template without `{sip_id}`
        (the benchmark's loopback) gives one endpoint whatever the choice."""
        names = ring_names(sip_id, ring)
        return tuple(dict.fromkeys(self.registrar.format(sip_id=name) for name in names))


def no_trunk(actor: Actor | None) -> str:
    """Only an administrator can set the trunk up: a registrar is sent to him, an
    administrator to the page."""
    where = (
        "настройте её в разделе «Администрирование → Транк»"
        if actor is not None and actor.admin
        else "обратитесь к администратору, чтобы он её настроил"
    )
    return f"Внешняя линия (транк) не настроена, звонки на городские и мобильные номера невозможны: {where}"


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class DirectoryService:
    def __init__(self, store: CallStore, endpoints: Endpoints) -> None:
        self.store = store
        self.endpoints = endpoints
        self._dir: Directory | None = None
        self._dir_at = self._dir_asked = 0.0
        self._refresh: asyncio.Future[Directory] | None = None

    async def current(self, newer_than: float | None = None) -> Directory:
        """The directory, at most DIRECTORY_TTL old (or read after the moment `newer_than`);
        concurrent callers share one refresh."""
        limit = time.monotonic() - DIRECTORY_TTL if newer_than is None else newer_than
        if self._dir is not None and self._dir_at >= limit:
            return self._dir
        refresh = self._refresh
        if refresh is None or refresh.done() or self._dir_asked < limit:
            self._dir_asked = time.monotonic()
            refresh = self._refresh = asyncio.ensure_future(self._load(self._dir_asked))
            refresh.add_done_callback(_retrieved)  # a failed refresh nobody waited for is no error
        if newer_than is None and self._dir is not None:
            # merely old: this command uses it while the refresh runs (an unknown user or
            # extension asks again with newer_than, and waits)
            return self._dir
        return await asyncio.shield(refresh)

    def preload(self, directory: Directory, fresh_for: float = 3600.0) -> None:
        """Use `directory` as read now (tests without a database)."""
        self._dir, self._dir_at = directory, time.monotonic() + fresh_for

    async def _load(self, asked: float) -> Directory:
        directory = await self.store.read(q.directory)
        if asked >= self._dir_at:  # an older refresh finishing late does not win
            self._dir, self._dir_at = directory, asked
        return directory

    async def actor(self, actor_id: int) -> Actor:
        asked = time.monotonic()
        actor = (await self.current()).users.get(actor_id)
        if actor is None:  # perhaps a user added since the last refresh
            actor = (await self.current(newer_than=asked)).users.get(actor_id)
        if actor is None:
            raise Forbidden("Пользователь не найден или отключён")
        return actor

    async def caller_and_target(self, actor_id: int, raw: str) -> tuple[Actor, Target]:
        """Everything click-to-call checks before dialling: the acting user and his phone,
        the target. Raises CallError."""
        asked = time.monotonic()
        try:
            return self._caller_and_target(await self.current(), actor_id, raw)
        except (Forbidden, BadRequest):  # perhaps a user or extension added since the last refresh
            return self._caller_and_target(await self.current(newer_than=asked), actor_id, raw)

    async def target(self, actor: Actor, raw: str) -> Target:
        """A conference or transfer target, checked the same way."""
        asked = time.monotonic()
        try:
            return self._target(await self.current(), actor, raw)
        except BadRequest:
            return self._target(await self.current(newer_than=asked), actor, raw)

    def _caller_and_target(self, d: Directory, actor_id: int, raw: str) -> tuple[Actor, Target]:
        actor = d.users.get(actor_id)
        if actor is None:
            raise Forbidden("Пользователь не найден или отключён")
        if not actor.has_telephony:
            raise BadRequest(
                "У вас не настроен добавочный номер SIP: попросите администратора заполнить "
                "вкладку «IP-телефония» в карточке пользователя"
            )
        return actor, self._target(d, actor, raw)

    def _target(self, d: Directory, actor: Actor, raw: str) -> Target:
        text = (raw or "").strip()
        if not text:
            raise BadRequest("Не указан номер: наберите номер телефона или добавочный")
        if _EXTENSION.match(text):
            other = d.by_extension.get(text)
            if other is None:
                raise BadRequest(f"Неизвестный добавочный номер {text}")
            if other.id == actor.id:
                raise BadRequest("Это ваш собственный добавочный номер")
            phones = self.endpoints.of_registrar(other.sip_id, other.ring)
            return Target(phones, text, True, other.id, other.name)
        try:
            number = normalize(text)
        except PhoneError as exc:
            raise BadRequest(str(exc)) from None
        if "@trunk" in self.endpoints.number and not d.trunk:
            raise BadRequest(no_trunk(actor))
        return Target((self.endpoints.number.format(number=number),), number, False)
