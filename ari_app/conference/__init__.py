"""«Конференция» and «Запись»: a third party in the call's bridge, the bridge's recording
(service.py), their ARI events (stasis.py) and the commands and the recordings' files
(http.py)."""
