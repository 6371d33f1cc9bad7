"""Incoming calls: ring the DID's registrar or every registrar, the first to answer takes the
call (service.py); the screen pop and its withdrawal (notifier.py); the ARI events
(stasis.py). No commands of its own: an incoming call is driven as any other."""
