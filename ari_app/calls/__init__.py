"""The calls feature (a call as a whole: service.py, stasis.py — the ARI events router —,
http.py) and what every feature writes through: the call log in its own process (store.py,
its queries in queries.py) and the event bus to the browsers (notifier.py)."""
