"""The API methods other than sending (smsru.md §3, §5–§7), each reproducing the real
reply shapes, quirks included: no ``balance`` when no id was found, ``total_limit`` as a
string, ``used_today: null``, no ``senders`` key for an account without senders, ``[]``
for an empty stop list, no ``callback`` key after deleting the last handler.

Called under the Emulator's lock; each returns the reply payload.
"""

from __future__ import annotations

from typing import Any

from emulators.smsru import codes, render
from emulators.smsru.callbacks import CallbackDispatcher
from emulators.smsru.clock import moscow_date
from emulators.smsru.numbers import normalize
from emulators.smsru.options import EmulatorOptions
from emulators.smsru.state import AccountState, Params


def status(params: Params, state: AccountState, options: EmulatorOptions) -> dict[str, Any]:
    raw = params.get("sms_id") or params.get("id") or ""  # "id" is the legacy name (§3)
    ids = list(dict.fromkeys(i.strip() for i in raw.split(",") if i.strip()))
    entries: dict[str, Any] = {}
    found = False
    for sms_id in ids:
        message = state.messages.get(sms_id)
        if message is None or message.test:  # test=1 sent nothing, so there is nothing to find
            entries[sms_id] = render.error(codes.NOT_FOUND, codes.DELIVERY_TEXTS[codes.NOT_FOUND])
            continue
        found = True
        entry: dict[str, Any] = {
            "status": "OK",
            "status_code": message.code,
            "cost": message.cost,
            "status_text": codes.text_for(message.code),
        }
        if options.status_times:
            entry["send_time"] = int(message.start_at)
            entry["status_time"] = int(message.status_at)
        entries[sms_id] = entry
    payload = render.ok(sms=entries or [])
    if found:
        payload["balance"] = state.balance
    return payload


def balance(state: AccountState) -> dict[str, Any]:
    return render.ok(balance=state.balance)


def limit(state: AccountState, options: EmulatorOptions, now: float) -> dict[str, Any]:
    used = state.sent_per_day[moscow_date(now)]
    return render.ok(total_limit=str(options.daily_limit), used_today=used)


def free(options: EmulatorOptions) -> dict[str, Any]:
    return render.ok(total_free=options.total_free, used_today=None)


def senders(options: EmulatorOptions) -> dict[str, Any]:
    return render.ok(senders=list(options.senders)) if options.senders else render.ok()


def stoplist_add(params: Params, state: AccountState) -> dict[str, Any]:
    phone = normalize(params.get("stoplist_phone") or "")
    if phone is None:
        return render.error(202, codes.TEXT_202_STOPLIST)
    state.stoplist[phone] = params.get("stoplist_text") or ""
    return render.ok()


def stoplist_del(params: Params, state: AccountState) -> dict[str, Any]:
    phone = normalize(params.get("stoplist_phone") or "")
    if phone is None:
        return render.error(202, codes.TEXT_202_STOPLIST)
    state.stoplist.pop(phone, None)
    return render.ok()


def stoplist_get(state: AccountState) -> dict[str, Any]:
    return render.ok(stoplist=dict(state.stoplist) or [])


def callback_add(
    params: Params, state: AccountState, dispatcher: CallbackDispatcher, now: float
) -> dict[str, Any]:
    url = (params.get("url") or "").strip()
    if not url.startswith(("http://", "https://")):
        return render.error(901)
    if url not in state.callbacks:
        state.callbacks.append(url)
        # sms.ru tests a new handler straight away ("Тестирование…" in the dashboard, §7).
        dispatcher.enqueue(url, f"test\n{int(now)}")
    return render.ok(callback=list(state.callbacks))


def callback_del(params: Params, state: AccountState, dispatcher: CallbackDispatcher) -> dict[str, Any]:
    url = (params.get("url") or "").strip()
    if url not in state.callbacks:
        return render.error(902)
    state.callbacks.remove(url)
    dispatcher.forget(url)
    return render.ok(callback=list(state.callbacks)) if state.callbacks else render.ok()


def callback_get(state: AccountState) -> dict[str, Any]:
    return render.ok(callback=list(state.callbacks))
