"""Mango Office VPBX emulator: the outbound-campaign API, signed like the real one, plus a
robot that "calls" tasks and POSTs the patient's answer to the clinic's webhook.

See docs/mango.md for options and the `/_emulator/` admin endpoints.
"""

from .app import create_app, emulator_of
from .emulator import MangoEmulator
from .options import CampaignSpec, EmulatorOptions

__all__ = ["CampaignSpec", "EmulatorOptions", "MangoEmulator", "create_app", "emulator_of"]
