"""Click-to-call: ring the registrar's phone, then the patient's, and bridge them
(service.py); the legs' ARI events (stasis.py); `POST /calls` (http.py)."""
