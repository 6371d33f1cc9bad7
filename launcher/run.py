"""`mis-telephony run` (what `make run` calls): the whole demo system in one foreground command.

Order: migrate → seed → local Asterisk (provision once, render config, start) → web and
hooks as child processes → print URLs and logins → wait. Ctrl-C or SIGTERM stops the
children, then Asterisk, and leaves no process behind. If any child dies, everything stops
and the exit code says so.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from sqlalchemy.orm import Session, sessionmaker

from clinic.config import Config
from clinic.db import make_engine, make_session_factory, migrate
from clinic.seed import DEMO_PASSWORD, DemoUser, clinic_today, demo_logins_in_use, seed_demo

log = logging.getLogger("mis-telephony")


def _wait_http(url: str, deadline_s: float, child: subprocess.Popen[bytes]) -> None:
    """Poll `url` until it answers (any HTTP status) or the child exits or time runs out."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if child.poll() is not None:
            raise RuntimeError(f"процесс завершился с кодом {child.returncode} до готовности {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            threading.Event().wait(0.1)  # poll interval, not synchronisation
    raise RuntimeError(f"{url} не ответил за {deadline_s:.0f} с")


def _spawn(command: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "launcher.cli", command, *args], env=os.environ.copy())


def _spawn_mango_emulator(
    config: Config, factory: sessionmaker[Session], children: list[subprocess.Popen[bytes]]
) -> str | None:
    """The Mango Office emulator for the demo entry, wired to our UpdateStatus; its URL."""
    from clinic.robot.demo import emulator_command, emulator_port

    with factory() as session:
        command = emulator_command(session, sys.executable, f"http://{config.hooks_host}:{config.hooks_port}")
    if command is None:
        return None
    argv, extra_env = command
    children.append(subprocess.Popen(argv, env={**os.environ, **extra_env}))
    return f"http://127.0.0.1:{emulator_port()}"


def _spawn_smsru_emulator(config: Config, children: list[subprocess.Popen[bytes]]) -> str | None:
    """The sms.ru emulator for the demo, unless MIS_SMSRU_URL points somewhere already; the
    web, hooks and worker children inherit MIS_SMSRU_URL and send to it."""
    from clinic.sms.demo import emulator_command, emulator_port

    if os.environ.get("MIS_SMSRU_URL", "").strip():
        return None
    callback = f"http://{config.hooks_host}:{config.hooks_port}/smsru/callback"
    port = emulator_port()
    children.append(subprocess.Popen(emulator_command(sys.executable, callback, port), env=os.environ.copy()))
    url = f"http://127.0.0.1:{port}"
    os.environ["MIS_SMSRU_URL"] = url
    return url


def _print_banner(config: Config, demo: list[tuple[DemoUser, bool]]) -> None:
    web = f"http://{config.web_host}:{config.web_port}"
    lines = [
        "",
        "mis-telephony запущена",
        f"  Веб-интерфейс:     {web}/login",
        f"  REST API:          {web}/api/v1/openapi.json",
        f"  Приём вебхуков:    http://{config.hooks_host}:{config.hooks_port}/healthz",
        f"  События телефонии: {config.events_url}/events (для страниц веб-интерфейса)",
        f"  Asterisk ARI:      {config.pbx.ari_url}/asterisk/info (пользователь {config.pbx.ari_user})",
        "  SIP:               127.0.0.1:5060/udp",
    ]
    # Only logins that still have the demo's passwords: a password changed by the clinic is
    # not printed (nor a stale one), and with no demo login left there is no list at all.
    if demo:
        lines += ["", "  Демо-пользователи (логин / пароль):"]
    for u, sip_in_use in demo:
        sip = f", доб. {u.extension}, SIP {u.extension} / {u.sip_password}" if sip_in_use else ""
        lines.append(f"    {u.login} / {DEMO_PASSWORD}  ({u.full_name}{sip})")
    lines += ["", "  Ctrl-C останавливает всё.", ""]
    print("\n".join(lines), flush=True)


def run_all(config: Config) -> int:
    from asterisk_conf import runtime
    from asterisk_conf.apply import apply_from_db

    migrate(config.database_url)
    factory = make_session_factory(make_engine(config.database_url))
    counts = seed_demo(factory, clinic_today(factory))
    log.info("демо-данные: %s", counts)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    children: list[subprocess.Popen[bytes]] = []
    pbx_started = False
    code = 0
    try:
        if config.pbx.mode == "local":
            runtime.provision(config.pbx)
        result = apply_from_db(config, factory, author_id=None, reload=False)
        if not result.ok:
            raise RuntimeError(result.message)
        if config.pbx.mode == "local":
            runtime.start(config.pbx, config.data_dir)
            pbx_started = True
        smsru_url = _spawn_smsru_emulator(config, children)  # before the children that use it
        if smsru_url:
            _wait_http(f"{smsru_url}/_emulator/config", 30, children[-1])
        web = _spawn("web", "--port", str(config.web_port))
        hooks = _spawn("hooks", "--port", str(config.hooks_port))
        children = [*children, web, hooks]
        mango_url = _spawn_mango_emulator(config, factory, children)
        if mango_url:  # up before the worker, whose Mango export may be due at once
            _wait_http(f"{mango_url}/_emulator/health", 30, children[-1])
        children += [_spawn("worker"), _spawn("ari"), _spawn("agi")]
        _wait_http(f"http://{config.web_host}:{config.web_port}/login", 30, web)
        _wait_http(f"http://{config.hooks_host}:{config.hooks_port}/healthz", 30, hooks)
        _print_banner(config, demo_logins_in_use(factory))
        if smsru_url:
            print(f"  Эмулятор sms.ru: {smsru_url}/_emulator/messages (отправленные СМС)", flush=True)
        if mango_url:
            print(f"  Эмулятор Mango Office: {mango_url}/vpbx/", flush=True)
            print(f"    звонок робота по всем задачам: POST {mango_url}/_emulator/dial-pending\n", flush=True)
        while not stop.wait(0.5):
            dead = [c for c in children if c.poll() is not None]
            if dead:
                log.error("процесс %s завершился с кодом %s", dead[0].args, dead[0].returncode)
                code = 1
                break
    except Exception as exc:  # report, then still tear everything down
        log.error("запуск не удался: %s", exc)
        code = 1
    finally:
        _stop_children(children)
        if pbx_started:
            runtime.stop(config.pbx, config.data_dir)
        log.info("остановлено")
    return code


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
