"""Helpers shared by the browser-softphone tests and bench/softphone.py: Debian's chromium
with fake media (its microphone plays a 1000 Hz tone made by sox), logging a registrar in,
opening his softphone window, reading the window's WebRTC stats, a baresip phone that records
what it hears (sndfile) and sox's measure of it, Asterisk's channels (the windows' standby
lines), and a user's ring choice («Какой телефон звонит»)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import expect
from sip_phone import BaresipPhone, PhoneSpec, write_config
from sqlalchemy import select

from asterisk_conf import apply
from clinic import ami
from clinic.models import User
from clinic.softphone import STANDBY_EXTEN

from .callkit import wait_until
from .pbxkit import Pbx

PASSWORD = "x" * 12  # pbxkit's users
CHROMIUM = "/usr/bin/chromium"
TONE_HZ = 1000  # what the browsers' fake microphone plays


def media_args(tone: Path) -> list[str]:
    """chromium's flags: microphone = the tone file, permission granted, audio autoplays."""
    return [
        "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={tone}", "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    ]  # fmt: skip


def tone_file(folder: Path, seconds: int = 30) -> Path:
    tone = folder / f"mic{TONE_HZ}.wav"
    if not tone.exists():
        subprocess.run(["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", str(tone),
                        "synth", str(seconds), "sine", str(TONE_HZ), "vol", "0.5"], check=True)  # fmt: skip
    return tone


@contextmanager
def media_browser(folder: Path) -> Iterator[Any]:
    """Debian's chromium whose fake microphone plays the tone."""
    from playwright.sync_api import sync_playwright

    args = media_args(tone_file(folder))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield browser
        finally:
            browser.close()


def login(context: Any, web: str, login_name: str, path: str = "/phone") -> Any:
    """A new page of `context`, logged in as `login_name`, at `path`."""
    page = context.new_page()
    page.goto(f"{web}/login")
    page.get_by_label("Логин").fill(login_name)
    page.get_by_label("Пароль").fill(PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page).not_to_have_url(re.compile("/login"))
    page.goto(web + path)
    return page


def open_softphone(main: Any) -> Any:
    """«Открыть софтфон» in «Прием по телефону»; the window once registered."""
    with main.expect_popup() as popup:
        main.get_by_test_id("btn-open-softphone").click()
    phone = popup.value
    expect(phone.get_by_test_id("softphone-state")).to_have_text("Софтфон подключён")
    standby_ready(phone)  # as a registrar's idle window is: its standby line up
    # the main window learns the softphone's state over the BroadcastChannel
    expect(main.get_by_test_id("softphone-status")).to_contain_text("Софтфон подключён")
    return phone


def stats(page: Any) -> dict[str, Any]:
    """The softphone window's WebRTC figures (inEnergy, inPackets, outPackets …)."""
    return page.evaluate("() => window.misSoftphoneStats()") or {}


def hears(page: Any, what: str, timeout: float = 15) -> None:
    """The window's inbound audio has energy (the far end is heard)."""
    wait_until(lambda: (stats(page).get("inEnergy") or 0) > 0.01, timeout, what)


class RecordingPhone(BaresipPhone):
    """baresip with the sndfile module: every call's decoded audio lands in `rec/`."""

    def start(self) -> BaresipPhone:
        original = write_config

        def write(folder: Path, spec: PhoneSpec, tone: Path, more: Any = ()) -> None:
            original(folder, spec, tone, more)
            (folder / "rec").mkdir(exist_ok=True)
            with open(folder / "config", "a") as fh:
                fh.write(f"module              sndfile.so\nsnd_path            {folder / 'rec'}\n")

        import sip_phone

        sip_phone.write_config = write  # type: ignore[assignment]
        try:
            return super().start()
        finally:
            sip_phone.write_config = original  # type: ignore[assignment]

    def last_recording(self) -> Path:
        """The newest call's decoded audio (what this phone heard)."""
        import os

        return max((self.folder / "rec").glob("*dec*.wav"), key=os.path.getmtime)


@contextmanager
def recording_instead(phone: BaresipPhone) -> Iterator[RecordingPhone]:
    """The same phone (account, ports, tone) restarted with recording; put back after."""
    phone.stop()
    recorder = RecordingPhone(phone.folder, phone.spec, phone.tone, phone.more)
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()
        phone.start()


def sox_stat(path: Path, *effects: str) -> dict[str, float]:
    out = subprocess.run(["sox", "--ignore-length", str(path), "-n", *effects, "stat"],
                         capture_output=True, text=True, check=True).stderr  # fmt: skip
    found = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        try:
            found[key.strip()] = float(value.strip())
        except ValueError:
            continue
    return found


def heard_tone(path: Path, skip: float = 1.0) -> dict[str, float]:
    """sox's figures of a recording past its first `skip` seconds (the media settling)."""
    return sox_stat(path, "trim", f"{skip:.2f}")


def channels(pbx: Pbx) -> int:
    lines = ami.run(pbx.config.pbx, lambda c: c.command("core show channels count"))
    m = re.search(r"(\d+) active channels?", "\n".join(lines))
    assert m, lines
    return int(m.group(1))


def no_channels(pbx: Pbx) -> None:
    wait_until(lambda: channels(pbx) == 0, 10, "no channel left in Asterisk")


def standby_ready(page: Any, timeout: float = 15) -> None:
    """The softphone window's standby line is up, its media path connected (ari_app/standby)."""
    ready = "() => window.misSoftphoneStandby()"
    wait_until(lambda: page.evaluate(ready), timeout, "the window's standby line")


def standby_lines(pbx: Pbx) -> list[tuple[str, str, str, str]]:
    """Every channel in Asterisk as (name, extension, state, application)."""
    lines = ami.run(pbx.config.pbx, lambda c: c.command("core show channels concise"))
    rows = [line.split("!") for line in lines if line.count("!") > 6]
    return [(r[0], r[2], r[4], r[5]) for r in rows]


def only_standby_lines(pbx: Pbx, windows: int) -> None:
    """No call left in Asterisk: only the `windows` open softphone windows' standby lines,
    each answered, in Stasis and alone (a call's channel would be another one)."""

    def settled() -> bool:
        found = standby_lines(pbx)
        return len(found) == windows and all(
            ext == STANDBY_EXTEN and state == "Up" and app == "Stasis" and "-web-" in name
            for name, ext, state, app in found
        )

    wait_until(settled, 15, f"only {windows} standby line(s) left in Asterisk")


def set_ring(pbx: Pbx, sip_id: str, ring: str) -> bool:
    """A user's «Какой телефон звонит», applied to Asterisk when it changed. True if changed."""
    with pbx.sessions() as s:
        user = s.scalars(select(User).where(User.sip_id == sip_id)).one()
        changed = user.softphone_ring != ring
        user.softphone_ring = ring
        s.commit()
    if changed:
        result = apply.apply_from_db(pbx.config, pbx.sessions, None)
        assert result.ok, result.message
    return changed
