"""``sms/send`` and ``sms/cost`` (smsru.md §2, §4, §12): recipients, validation, parts,
limits, balance. Called under the Emulator's lock.

Which errors are request-level and which per number is only partly documented (§2.3,
§14.2); the emulator's choices: 200/201/202 (no numbers at all)/203 (no text for a ``to``
list)/204/206/208/213 at the top; 202/203/205/207/209/214/215/216/221/230–232 per number.
221 entries carry an ``sms_id`` as the real ones do, and the top level stays OK/100 even
when every number failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from emulators.smsru import codes, render
from emulators.smsru.clock import moscow_date
from emulators.smsru.delivery import DeliveryPlanner
from emulators.smsru.numbers import normalize
from emulators.smsru.options import EmulatorOptions
from emulators.smsru.parts import sms_parts, too_long
from emulators.smsru.state import AccountState, Message, Params
from emulators.smsru.translit import transliterate

_PER_NUMBER_KEY = re.compile(r"^(?:to|multi)\[(.*)\]$")
MAX_AHEAD = 60 * 86400  # `time` at most two months ahead (§2.1)


@dataclass
class Recipient:
    raw: str
    text: str


@dataclass
class Accepted:
    key: str
    text: str
    parts: int
    cost: Decimal


@dataclass
class Context:
    options: EmulatorOptions
    state: AccountState
    planner: DeliveryPlanner
    now: float


def _recipients(params: Params) -> tuple[list[Recipient], int | None]:
    """Either the ``to[phone]=text`` / ``multi[phone]=text`` form or ``to`` + ``msg``/``text``."""
    per_number = [
        Recipient(m.group(1), value) for key, value in params.pairs if (m := _PER_NUMBER_KEY.match(key))
    ]
    if per_number:
        return per_number, None
    numbers = [n for n in (params.get("to") or "").split(",") if n.strip()]
    if not numbers:
        return [], 202
    text = params.get("msg") if params.get("msg") is not None else params.get("text")
    if not text:
        return [], 203
    return [Recipient(n, text) for n in numbers], None


def _when(params: Params, now: float) -> tuple[float, int | None]:
    raw = (params.get("time") or "").strip()
    if not raw:
        return now, None
    if not raw.isdigit() or int(raw) > now + MAX_AHEAD:
        return now, 208
    return max(now, float(raw)), None  # a past time sends at once (§2.1)


def _ttl(params: Params) -> tuple[int | None, bool]:
    raw = (params.get("ttl") or "").strip()
    if not raw:
        return None, True
    return (int(raw), True) if raw.isdigit() and 1 <= int(raw) <= 1440 else (None, False)


def _number_error(key: str, text: str, options: EmulatorOptions, state: AccountState) -> int | None:
    if key in state.stoplist:
        return 209
    if key in options.global_stoplist:
        return 215
    if options.russia_only and not key.startswith("7"):
        return 214
    if any(key.startswith(prefix) for prefix in options.no_route_prefixes):
        return 207
    if not text:
        return 203
    if too_long(text):
        return 205
    lowered = text.lower()
    if any(word.lower() in lowered for word in options.forbidden_words):
        return 216
    return None


def _limit_error(key: str, text: str, ctx: Context) -> int | None:
    options, state, day = ctx.options, ctx.state, moscow_date(ctx.now)
    limit = options.per_number_daily_limit
    if limit is not None and state.sent_per_phone_day[(day, key)] >= limit:
        return 230
    times = state.same_text_times.get((key, text), [])
    per_minute, per_day = options.same_text_per_minute, options.same_text_per_day
    if per_minute is not None and sum(1 for t in times if t > ctx.now - 60) >= per_minute:
        return 231
    if per_day is not None and sum(1 for t in times if moscow_date(t) == day) >= per_day:
        return 232
    return None


def _entry_error(code: int, text: str | None = None) -> dict[str, Any]:
    return render.error(code, text)


def handle(params: Params, ctx: Context, *, cost_only: bool) -> tuple[dict[str, Any], list[str]]:
    """The reply payload and the order of its per-number keys (for the plain-text form)."""
    options, state = ctx.options, ctx.state
    sender = (params.get("from") or "").strip() or None
    if sender is not None and sender not in options.senders:
        return render.error(204), []
    start_at, time_error = _when(params, ctx.now)
    ttl, ttl_ok = _ttl(params)
    if not cost_only and time_error:
        return render.error(time_error), []
    if not cost_only and not ttl_ok:
        # No code is documented for a bad ttl; 208 is the nearest ("a time parameter is wrong").
        return render.error(208, "Параметр ttl указан неправильно"), []
    recipients, request_error = _recipients(params)
    if request_error:
        return render.error(request_error), []
    if len(recipients) > codes.MAX_RECIPIENTS:
        if options.too_many_mode == "213":
            return render.error(213), []
        too_many = _entry_error(207, codes.TEXT_207_TOO_MANY)
        entries = {(normalize(r.raw) or r.raw): dict(too_many) for r in recipients}
        return render.ok(sms=entries, balance=state.balance), list(entries)

    translit = params.flag("translit")
    test = params.flag("test")
    entries: dict[str, dict[str, Any]] = {}
    accepted: list[Accepted] = []
    for recipient in recipients:
        key = normalize(recipient.raw)
        if key is None:
            entries[recipient.raw.strip() or recipient.raw] = _entry_error(202)
            continue
        if key in entries:
            continue  # the same number twice: one entry, as the map is keyed by number
        text = transliterate(recipient.text) if translit else recipient.text
        code = _number_error(key, text, options, state)
        if code is None and sender is None and options.account_sender is None:
            # The real quirk (§2.2): this ERROR entry carries an sms_id.
            entries[key] = {**_entry_error(221), "sms_id": state.new_sms_id(options.account_number)}
            continue
        if code is None and not cost_only:
            code = _limit_error(key, text, ctx)
        if code is not None:
            entries[key] = _entry_error(code)
            continue
        parts = sms_parts(text)
        accepted.append(Accepted(key, text, parts, options.price_per_part * parts))
        entries[key] = {}  # filled below, keeps the request order

    if cost_only:
        return _cost_reply(entries, accepted), list(entries)

    if not test:
        day = moscow_date(ctx.now)
        if state.sent_per_day[day] + len(accepted) > options.daily_limit:
            return render.error(206), []
        if sum((a.cost for a in accepted), Decimal(0)) > state.balance:
            return render.error(201), []
    chosen_sender = sender or options.account_sender
    for item in accepted:
        message = _commit(item, chosen_sender, start_at, ttl, params, test, ctx)
        entries[item.key] = {"status": "OK", "status_code": codes.OK, "sms_id": message.sms_id}
    return render.ok(sms=entries, balance=state.balance), list(entries)


def _commit(
    item: Accepted,
    sender: str | None,
    start_at: float,
    ttl: int | None,
    params: Params,
    test: bool,
    ctx: Context,
) -> Message:
    options, state, now = ctx.options, ctx.state, ctx.now
    message = Message(
        sms_id=state.new_sms_id(options.account_number),
        phone=item.key,
        text=item.text,
        sender=sender,
        parts=item.parts,
        cost=Decimal(0) if test else item.cost,
        created_at=now,
        start_at=start_at,
        ttl=ttl,
        daytime=params.flag("daytime"),
        translit=params.flag("translit"),
        test=test,
        status_at=now,
        history=[(codes.OK, now)],
    )
    state.messages[message.sms_id] = message
    if test:
        return message  # test=1: nothing is sent or charged, no delivery follows (§2.1)
    state.balance -= item.cost
    day = moscow_date(now)
    state.sent_per_day[day] += 1
    state.sent_per_phone_day[(day, item.key)] += 1
    state.same_text_times.setdefault((item.key, item.text), []).append(now)
    ctx.planner.schedule(message, options)
    return message


def _cost_reply(entries: dict[str, dict[str, Any]], accepted: list[Accepted]) -> dict[str, Any]:
    for item in accepted:
        entries[item.key] = {"status": "OK", "status_code": codes.OK, "cost": item.cost, "sms": item.parts}
    if not accepted:
        # Real quirk (§4): with every number failed, total_cost/total_sms are absent.
        return render.ok(sms=entries)
    total_cost = sum((a.cost for a in accepted), Decimal(0))
    return render.ok(sms=entries, total_cost=total_cost, total_sms=sum(a.parts for a in accepted))
