"""Take-over: a call on the registrar's own SIP phone, running in the dialplan, taken under
control (service.py; the AMI redirect in ami.py, the call's start from its CDR in
timing.py), its legs' ARI events (stasis.py) and the routes (http.py)."""
