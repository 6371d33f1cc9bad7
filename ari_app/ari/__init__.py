"""The ARI client (see ari_app/client.py)."""
