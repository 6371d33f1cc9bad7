"""«Удержание»: the patient into the holding bridge with music and back (service.py), the
commands (http.py)."""
