"""«Перевод»: blind and attended transfers (service.py), their state machine (state.py), the
target leg's ARI events (stasis.py) and the commands (http.py)."""
