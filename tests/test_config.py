from pathlib import Path

import pytest

from clinic.config import Config


def test_generated_secrets_persist_and_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MIS_ARI_PASSWORD", raising=False)
    first, second = Config.from_env(), Config.from_env()
    assert first.pbx.ari_password == second.pbx.ari_password and len(first.pbx.ari_password) >= 24
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0
    assert first.pbx.ari_password not in repr(first)
    assert first.secret_key not in repr(first)


def test_bad_integer_env_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MIS_WEB_PORT", "eighty")
    with pytest.raises(SystemExit, match="MIS_WEB_PORT"):
        Config.from_env()


def test_external_pbx_mode_targets_etc_asterisk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MIS_PBX_MODE", "external")
    monkeypatch.setenv("MIS_ARI_URL", "http://10.0.0.5:8088/ari")
    cfg = Config.from_env()
    assert cfg.pbx.conf_dir == Path("/etc/asterisk") and cfg.pbx.ari_url == "http://10.0.0.5:8088/ari"
