"""Asterisk restarts in the middle of a call: ari_app's events socket drops, it reconnects
with backoff, resyncs, and the call log closes the calls that died with Asterisk (and a call
left active by an earlier ari_app process). Then a new call works end to end.

Runs last among the PBX tests (file order) and leaves the phones registered again.
"""

from __future__ import annotations

import os
import signal
import uuid

import pytest
from sip_phone import BaresipPhone, event_type
from sqlalchemy import select

from ari_app.app import ThreadedApp
from asterisk_conf import apply, runtime
from clinic.models import Call

from .callkit import Control, SseReader, wait_idle, wait_until
from .pbxkit import PSTN_NUMBER, Pbx, wait_registered

pytestmark = pytest.mark.pbx


def test_asterisk_restart_mid_call_is_survived(
    pbx: Pbx,
    phones: dict[str, BaresipPhone],
    pstn: BaresipPhone,
    ari_app: ThreadedApp,
    control: Control,
    call_users: dict[str, int],
) -> None:
    wait_registered(pbx.config, {"reg101", "reg102"})
    app = ari_app.app
    actor = call_users["101"]
    sse = SseReader(control, "all")
    try:
        mark = sse.mark()
        uid = control.ok(actor, "/calls", {"target": PSTN_NUMBER})["uid"]
        sse.state(uid, "talking", since=mark)
        # a call an earlier ari_app process left "active" in the log
        stale_uid = uuid.uuid4().hex[:16]
        with pbx.sessions() as s:
            s.add(
                Call(uid=stale_uid, direction="outbound", user_id=actor, number=PSTN_NUMBER, state="talking")
            )
            s.commit()
        resyncs, reconnects = app.service.resyncs, app.ari.reconnects

        # a crash, not a clean stop: Asterisk hangs up nothing and sends no events
        pid = runtime.running_pid(pbx.config.pbx, pbx.config.data_dir)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not app.ari.connected.is_set(), 10, "events socket dropped")
        wait_until(
            lambda: runtime.running_pid(pbx.config.pbx, pbx.config.data_dir) is None, 10, "Asterisk gone"
        )
        health = control.get(actor, "/health").json()
        assert health["ari_connected"] is False
        busy = control.post(actor, f"/calls/{uid}/hold")
        assert busy.status_code == 503 and "Нет связи с АТС" in busy.json()["error"]

        # as `pbx start` does: our configuration first (the chroot's conf folder is shared
        # with whatever else on this machine renders into it)
        assert apply.apply_from_db(pbx.config, pbx.sessions, None, reload=False).ok
        started = runtime.start(pbx.config.pbx, pbx.config.data_dir)
        assert started.ok, started.message
        wait_until(lambda: app.ari.connected.is_set() and app.service.resyncs > resyncs, 30, "reconnected")
        assert app.ari.reconnects == reconnects + 1
        ended = sse.state(uid, "ended", since=mark)  # the control API's stream outlived Asterisk
        assert "перезапуск Asterisk" in ended["reason"]
        with pbx.sessions() as s:
            rows = {c.uid: c for c in s.scalars(select(Call).where(Call.uid.in_([uid, stale_uid]))).all()}
            assert rows[uid].state == "ended" and rows[uid].result == "answered" and rows[uid].ended_at
            assert rows[stale_uid].state == "ended" and rows[stale_uid].ended_at
        assert not app.service.calls
        assert control.post(actor, f"/calls/{uid}/hold").status_code == 409

        # the phones' calls died with Asterisk (no BYE came): hang them up; they register
        # again, and a new click-to-call works end to end
        for phone in (phones["101"], pstn):
            phone.hangup()
        wait_idle(phones["101"], pstn)
        for phone in phones.values():
            phone.reregister()
        wait_registered(pbx.config, {"reg101", "reg102"})
        mark = sse.mark()
        m = pstn.ctrl.mark()
        again = control.ok(actor, "/calls", {"target": PSTN_NUMBER})
        sse.state(again["uid"], "talking", since=mark)
        pstn.wait_for_event(event_type("CALL_ESTABLISHED"), 10, m)
        control.ok(actor, f"/calls/{again['uid']}/hangup")
        sse.state(again["uid"], "ended", since=mark)
    finally:
        sse.close()
