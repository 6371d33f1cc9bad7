"""Flask side: registrar/admin UI, REST API for the МИС, public webhooks (:55055)."""
