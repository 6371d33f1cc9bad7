"""Where ari_app's events listener for the pages listens, how pages reach it and which
origins it answers (issue 11, point 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinic.config import Config


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Config:
    monkeypatch.setenv("MIS_DATA_DIR", str(tmp_path))
    for name in ("MIS_WEB_HOST", "MIS_WEB_PORT", "MIS_EVENTS_HOST", "MIS_EVENTS_PORT", "MIS_EVENTS_URL",
                 "MIS_WEB_ORIGIN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Config.from_env()


def test_defaults_follow_the_web_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, monkeypatch)
    assert (config.events_host, config.events_port) == ("127.0.0.1", 8091)
    assert config.events_url == "http://127.0.0.1:8091"
    assert config.allowed_origins == ("http://127.0.0.1:8000", "http://localhost:8000")
    lan = _config(tmp_path, monkeypatch, MIS_WEB_HOST="10.0.0.5", MIS_WEB_PORT="8080")
    assert lan.events_url == "http://10.0.0.5:8091"
    assert lan.allowed_origins == ("http://10.0.0.5:8080",)


def test_a_proxy_in_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(
        tmp_path, monkeypatch, MIS_EVENTS_HOST="0.0.0.0", MIS_EVENTS_PORT="9000",
        MIS_EVENTS_URL="https://mis.clinic.example/live/", MIS_WEB_ORIGIN="https://mis.clinic.example/, https://b.example",
    )  # fmt: skip
    assert (config.events_host, config.events_port) == ("0.0.0.0", 9000)
    assert config.events_url == "https://mis.clinic.example/live"
    assert config.allowed_origins == ("https://mis.clinic.example", "https://b.example")
