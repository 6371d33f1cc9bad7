"""Choosing the fault (if any) for one API request: first the explicit rules in order, each
consumed by use, then the random rates (``--timeout-rate`` etc.) for a flaky demo."""

from __future__ import annotations

import random

from emulators.smsru.options import EmulatorOptions, FaultRule

_RATE_RULES = {
    "timeout": FaultRule(kind="timeout", count=None),
    "http500": FaultRule(kind="http_status", status=500, count=None),
    "code220": FaultRule(kind="api_error", code=220, count=None),
    "code500": FaultRule(kind="api_error", code=500, count=None),
}


def pick(options: EmulatorOptions, method: str, rng: random.Random) -> FaultRule | None:
    """Must be called under the Emulator's lock: it decrements the rule's count."""
    for rule in options.faults:
        if rule.matches(method):
            if rule.count is not None:
                rule.count -= 1
            return rule
    for name, rate in options.fault_rates.items():
        if rate > 0 and rng.random() < rate:
            return _RATE_RULES[name]
    return None
