"""The own voice robot: outbound confirmation calls of a campaign and the inbound
confirmation step (service.py), its ARI events ahead of call control's (stasis.py), and
its control API routes (http.py)."""
