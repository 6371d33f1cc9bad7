"""The robot's speech: espeak-ng (or RHVoice) renders 8 kHz mono WAV that is not silence,
once per text; a broken engine fails cleanly and the generic prompt still plays."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from clinic.voice_robot import prompts
from clinic.voice_robot.tts import BUNDLED, Espeak, Tts, TtsError


def _rms(path: Path) -> tuple[int, float, int]:
    with wave.open(str(path)) as wav:
        frames = wav.readframes(wav.getnframes())
        rate = wav.getframerate()
        seconds = wav.getnframes() / rate
    samples = memoryview(frames).cast("h")
    rms = int((sum(x * x for x in samples) / max(1, len(samples))) ** 0.5)
    return rate, seconds, rms


def test_speech_is_8khz_non_silent_and_cached(tmp_path: Path) -> None:
    tts = Tts(tmp_path / "sounds", "/var/lib/asterisk/sounds/mis-robot", [Espeak()])
    text = prompts.CONFIRMED
    name = tts.render(text)
    rate, seconds, rms = _rms(tmp_path / "sounds" / f"{name}.wav")
    assert rate == 8000 and seconds > 1.0 and rms > 300
    assert tts.render(text) == name and tts.rendered == 1  # the second time from the cache
    assert tts.media(name) == f"sound:/var/lib/asterisk/sounds/mis-robot/{name}"
    assert (tmp_path / "sounds" / f"{name}.wav").stat().st_mode & 0o044 == 0o044  # Asterisk reads it


def test_a_failing_engine_leaves_the_generic_prompt(tmp_path: Path) -> None:
    tts = Tts(tmp_path / "sounds", "/snd", [Espeak(binary=str(tmp_path / "no-such-espeak"))])
    with pytest.raises(TtsError, match="espeak-ng"):
        tts.render("Здравствуйте")
    name = tts.generic("generic", prompts.GENERIC)
    rate, seconds, rms = _rms(tmp_path / "sounds" / f"{name}.wav")
    assert name == "generic-bundled" and rate == 8000 and seconds > 3 and rms > 300
    assert BUNDLED["generic"].exists() and BUNDLED["generic_inbound"].exists()
