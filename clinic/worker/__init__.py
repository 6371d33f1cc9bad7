"""The worker process: periodic jobs (SMS sends and status checks, server tasks such as
the Mango export). `mis-telephony worker` runs it; `make run` starts it with the rest."""
