"""Benchmark: «Применить» of a changed template on a clinic with 200 telephony users, against
the bare `asterisk -rx 'core reload'` of the same kind of change, in one run on the local
Asterisk, with a real call held up the whole time.

    .venv/bin/python bench/pbx_apply.py [--users 200] [--applies 20]

- ours: the PBX console's apply (asterisk_conf.console.Console.apply, what the page's button
  and `pbx templates apply` call): render with the stored override → our validator → a
  throw-away Asterisk parses the files → write → `dialplan reload` + `module reload
  res_pjsip.so` → check that the running Asterisk carries the new render's tag in every
  endpoint and the dialplan, and that every extension is there → revision in the DB. Timed
  from the call to its answer (the override is saved before, untimed: that is the admin's
  «Сохранить»).
- baseline: the same kind of change (another text in [clinic-custom], so both
  extensions.conf and pjsip.conf's tags change), rendered and written by the bench, then only
  `asterisk -rx 'core reload'` is timed: no check, no validation, no record.

The two alternate, `--applies` times each. Meanwhile phone A (baresip) is in a call with
phone B (auto-answer), both registered users of the clinic; at the end the bench counts
calls dropped (a CALL_CLOSED on either phone, or fewer than two channels in Asterisk).
Asterisk is the local chroot on a temporary database, started for the run (it must not be
running already) and stopped at the end whatever happens; so are the phones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asterisk_conf import apply, runtime  # noqa: E402
from asterisk_conf.console import Console  # noqa: E402
from clinic.config import Config  # noqa: E402
from clinic.db import make_engine, make_session_factory, migrate, transaction  # noqa: E402
from clinic.models import ClinicSettings, User  # noqa: E402
from clinic.security import hash_password, sip_md5_cred  # noqa: E402
from tests.sip_phone import BaresipPhone, PhoneSpec, event_type, make_tone_wav  # noqa: E402

CUSTOM = "extensions_custom.conf.j2"
TARGET = 3.0


def sip_id(i: int) -> str:
    return f"bench{3000 + i}"


def custom(kind: str, i: int) -> str:
    return f"[clinic-custom]\n; {kind} {i}\nexten => 5{i:03d},1,Answer()\n same => n,Hangup()\n"


def setup(workdir: Path, users: int) -> tuple[Config, Console]:
    os.environ.update({"MIS_DATA_DIR": str(workdir), "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
                       "MIS_PBX_MODE": "local"})
    for var in ("MIS_ASTERISK_CONF_DIR", "MIS_ARI_URL", "MIS_AMI_HOST", "MIS_AMI_PORT"):
        os.environ.pop(var, None)
    config = Config.from_env()
    migrate(config.database_url)
    sessions = make_session_factory(make_engine(config.database_url))
    with transaction(sessions) as s:
        s.add(ClinicSettings(sip_domain="127.0.0.1", sip_port=5060))
        hashed = hash_password("x" * 12)
        for i in range(users):
            s.add(User(login=f"bench{i}", password_hash=hashed, full_name=f"Регистратор {i}",
                       extension=str(3000 + i), sip_id=sip_id(i),
                       sip_md5_cred=sip_md5_cred(sip_id(i), f"pw-{i}")))
    written = apply.apply_from_db(config, sessions, None, reload=False)
    if not written.ok:
        raise SystemExit(written.message)
    return config, Console(config, sessions)


def core_reload(config: Config) -> float:
    started = time.perf_counter()
    subprocess.run(["chroot", str(config.pbx.chroot), "/usr/sbin/asterisk", "-rx", "core reload"],
                   capture_output=True, check=True, timeout=60)
    return time.perf_counter() - started


def channels(config: Config) -> int:
    out = runtime.cli(config.pbx, "core show channels count")
    for line in out.splitlines():
        if "active channel" in line:
            return int(line.split()[0])
    return -1


def wait_registered(config: Config, names: set[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        out = runtime.cli(config.pbx, "pjsip show contacts")
        if all(f"{n}/sip:" in out for n in names):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"phones not registered: {names}")
        time.sleep(0.1)  # poll with a deadline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--applies", type=int, default=20)
    args = parser.parse_args()
    phones: list[BaresipPhone] = []
    with tempfile.TemporaryDirectory(prefix="bench-pbx-apply-") as tmp:
        workdir = Path(tmp)
        config, console = setup(workdir, args.users)
        runtime.provision(config.pbx, say=lambda _m: None)
        started = False
        try:
            print(runtime.start(config.pbx, config.data_dir).message)
            started = True
            tone = make_tone_wav(workdir / "tone8k.wav")
            for n, (sip_port, ctrl_port, rtp) in enumerate(((5100, 4401, 21000), (5110, 4402, 21100))):
                spec = PhoneSpec(sip_id(n), f"pw-{n}", sip_port, ctrl_port, rtp, rtp + 99)
                phones.append(BaresipPhone(workdir / f"phone{n}", spec, tone).start())
            a, b = phones
            wait_registered(config, {sip_id(0), sip_id(1)})
            assert a.ctrl is not None and b.ctrl is not None
            a.dial("sip:3001@127.0.0.1:5060")
            a.wait_for_event(event_type("CALL_ESTABLISHED"), 15)
            b.wait_for_event(event_type("CALL_ESTABLISHED"), 15)
            mark_a, mark_b = a.ctrl.mark(), b.ctrl.mark()
            before = channels(config)
            print(f"call up: {before} channels; {args.users} users; {args.applies} applies of each kind")

            ours: list[float] = []
            bare: list[float] = []
            version = 0
            for i in range(args.applies):
                prep = apply.prepare(config, console.sessions, overrides={CUSTOM: custom("bare", i)})
                assert prep.files is not None and not prep.problems, prep.problems
                apply.write_files(config.pbx, prep.files)
                bare.append(core_reload(config))

                saved = console.save(CUSTOM, custom("ours", i), version, None, f"bench {i}")
                assert saved.ok, saved.problems
                version = saved.version
                t0 = time.perf_counter()
                result = console.apply(None, f"bench {i}")
                ours.append(time.perf_counter() - t0)
                assert result.ok, result.message

            closed = [p.spec.sip_id for p, m in ((a, mark_a), (b, mark_b))
                      if p.ctrl is not None
                      and any(e.get("type") == "CALL_CLOSED" for e in p.ctrl.events[m:])]
            after = channels(config)
            dropped = 1 if closed or after < before else 0
            med_ours, med_bare = statistics.median(ours), statistics.median(bare)
            ratio = med_ours / med_bare
            print(f"apply (ours):      median {med_ours * 1000:.0f} ms, max {max(ours) * 1000:.0f} ms")
            print(f"core reload (bare): median {med_bare * 1000:.0f} ms, max {max(bare) * 1000:.0f} ms")
            print(f"ratio ours/bare (medians): {ratio:.2f} (target ≤ {TARGET:.0f})")
            print(f"call held through {2 * args.applies} reloads: channels {before} → {after}, "
                  f"dropped {dropped}{' (' + ', '.join(closed) + ' got CALL_CLOSED)' if closed else ''}")
            a.hangup()
            return 0 if ratio <= TARGET and not dropped else 1
        finally:
            for phone in phones:
                phone.stop()
            if started:
                runtime.stop(config.pbx, config.data_dir)


if __name__ == "__main__":
    raise SystemExit(main())
