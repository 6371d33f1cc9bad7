"""A local emulator of the sms.ru HTTP API (shared/reference/smsru.md §12; docs/smsru.md).

``create_app(options)`` gives a Flask app; ``python -m emulators.smsru`` serves one.
"""

from emulators.smsru.app import create_app
from emulators.smsru.emulator import Emulator
from emulators.smsru.options import EmulatorOptions, FaultRule

__all__ = ["Emulator", "EmulatorOptions", "FaultRule", "create_app"]
