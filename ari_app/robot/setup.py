"""The robot's setup from the configuration: the database, and where prompts are rendered
(a folder Asterisk reads: inside the local chroot, or on the host of an external Asterisk)."""

from __future__ import annotations

import os
from pathlib import Path

from ari_app.robot.service import RobotSetup
from clinic.config import Config
from clinic.db import make_engine, make_session_factory
from clinic.voice_robot.tts import Tts

ASTERISK_SOUNDS = "/var/lib/asterisk/sounds/mis-robot"


def sounds_folders(config: Config) -> tuple[Path, str]:
    """(the folder we write, the same folder as Asterisk names it)."""
    seen_by_asterisk = os.environ.get("MIS_ROBOT_SOUNDS", ASTERISK_SOUNDS)
    if config.pbx.mode == "local":
        return config.pbx.chroot / seen_by_asterisk.lstrip("/"), seen_by_asterisk
    return Path(seen_by_asterisk), seen_by_asterisk


def robot_setup(config: Config, number_endpoint: str, dialer: bool = True) -> RobotSetup:
    folder, seen = sounds_folders(config)
    sessions = make_session_factory(make_engine(config.database_url))
    return RobotSetup(sessions, Tts(folder, seen), number_endpoint=number_endpoint, enabled=dialer)
