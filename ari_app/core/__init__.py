"""What every call-control feature shares: a live call and its legs (call.py), the call and
transfer state machines (machine.py), the registry of live and recently ended calls
(registry.py), the ARI steps every feature takes (core.py) and the call events for the
browsers (notifier.py)."""
