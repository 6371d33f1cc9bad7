"""Russian speech for the robot, rendered to files Asterisk plays: 8 kHz mono 16-bit WAV,
one file per text, named by the text's hash (the same words are synthesized once).

Engines, in order: RHVoice through the PyPI package rhvoice-wrapper (when installed: its
binary wheel builds only with network access to RHVoice's repository), then espeak-ng
(Debian). Resampling to 8 kHz by sox when present, else in Python. When synthesis fails the
caller plays the generic prompt (`generic()`), which falls back to the recording shipped in
this package, so a patient always hears a menu."""

from __future__ import annotations

import array
import hashlib
import io
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

RATE = 8000
BUNDLED = {
    "generic": Path(__file__).with_name("generic_ru.wav"),
    "generic_inbound": Path(__file__).with_name("generic_inbound_ru.wav"),
}


class TtsError(RuntimeError):
    pass


def to_8k(data: bytes) -> bytes:
    """A WAV (any rate, 16-bit mono) as 8 kHz mono 16-bit WAV."""
    sox = shutil.which("sox")
    if sox:
        done = subprocess.run(
            [sox, "-t", "wav", "-", "-r", str(RATE), "-c", "1", "-b", "16", "-t", "wav", "-"],
            input=data,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0 and done.stdout:
            return done.stdout
    with wave.open(io.BytesIO(data)) as src:
        rate, width, channels = src.getframerate(), src.getsampwidth(), src.getnchannels()
        frames = src.readframes(src.getnframes())
    if width != 2:
        raise TtsError(f"unexpected sample width {width}")
    samples = array.array("h", frames)[::channels]
    if rate != RATE:
        step = rate / RATE
        n = int(len(samples) / step)
        samples = array.array("h", (samples[min(int(i * step), len(samples) - 1)] for i in range(n)))
    out = io.BytesIO()
    with wave.open(out, "wb") as dst:
        dst.setnchannels(1)
        dst.setsampwidth(2)
        dst.setframerate(RATE)
        dst.writeframes(samples.tobytes())
    return out.getvalue()


class Espeak:
    name = "espeak-ng"

    def __init__(self, binary: str | None = None, voice: str = "ru", speed: int = 150) -> None:
        self.binary = binary or os.environ.get("MIS_TTS_ESPEAK") or "espeak-ng"
        self.voice, self.speed = voice, speed

    def synth(self, text: str) -> bytes:
        try:
            done = subprocess.run(
                [self.binary, "-v", self.voice, "-s", str(self.speed), "--stdout", text],
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TtsError(f"espeak-ng: {exc}") from exc
        if done.returncode != 0 or len(done.stdout) < 100:
            raise TtsError(f"espeak-ng exit {done.returncode}: {done.stderr[:200]!r}")
        return done.stdout


class RhVoice:
    name = "rhvoice"

    def __init__(self, voice: str = "anna") -> None:
        from rhvoice_wrapper import TTS  # optional: ImportError when not installed

        self._tts = TTS(threads=1)
        self.voice = voice

    def synth(self, text: str) -> bytes:
        try:
            return bytes(self._tts.get(text, voice=self.voice, format_="wav"))
        except Exception as exc:  # the wrapper raises bare RuntimeErrors of its own
            raise TtsError(f"rhvoice: {exc}") from exc


def default_engines() -> list[Espeak | RhVoice]:
    engines: list[Espeak | RhVoice] = []
    if os.environ.get("MIS_TTS_ENGINE", "auto") in ("auto", "rhvoice"):
        try:
            engines.append(RhVoice())
        except Exception as exc:  # not installed, or its data missing
            log.info("RHVoice unavailable (%s): espeak-ng speaks", exc)
    engines.append(Espeak())
    return engines


class Tts:
    """Render texts into `folder` (a folder Asterisk reads); `path_for_asterisk` maps a file
    there to the path Asterisk sees (inside its chroot)."""

    def __init__(
        self,
        folder: Path,
        asterisk_folder: str,
        engines: Sequence[Espeak | RhVoice] | None = None,
    ) -> None:
        self.folder = folder
        self.asterisk_folder = asterisk_folder.rstrip("/")
        self.engines = list(engines) if engines is not None else default_engines()
        self._lock = threading.Lock()
        self.rendered = 0  # files synthesized (not from the cache)

    def _name(self, text: str) -> str:
        return "tts-" + hashlib.sha256(text.strip().encode()).hexdigest()[:24]

    def media(self, name: str) -> str:
        """ARI media URI of a rendered file (no extension: Asterisk picks the .wav)."""
        return f"sound:{self.asterisk_folder}/{name}"

    def render(self, text: str) -> str:
        """The file's name for `text`, synthesized once; TtsError when every engine fails."""
        name = self._name(text)
        target = self.folder / f"{name}.wav"
        if target.exists():
            return name
        errors: list[str] = []
        for engine in self.engines:
            try:
                data = to_8k(engine.synth(text))
            except (TtsError, wave.Error, EOFError, OSError, subprocess.SubprocessError) as exc:
                errors.append(f"{engine.name}: {exc}")
                continue
            self._write(target, data)
            self.rendered += 1
            return name
        raise TtsError("; ".join(errors) or "no TTS engine")

    def generic(self, kind: str = "generic", text: str = "") -> str:
        """The generic prompt: synthesized if possible, else the recording shipped here."""
        if text:
            try:
                return self.render(text)
            except TtsError as exc:
                log.warning("TTS failed for the generic prompt: %s", exc)
        name = f"{kind}-bundled"
        target = self.folder / f"{name}.wav"
        if not target.exists():
            self._write(target, BUNDLED[kind].read_bytes())
        return name

    def _write(self, target: Path, data: bytes) -> None:
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            os.chmod(self.folder, 0o755)  # Asterisk runs as its own user
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".part")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
