"""Presence: the state of every registrar's phone (зарегистрирован / не зарегистрирован /
занят / звонит), followed live from Asterisk's device states and told to every open page
(service.py the state, stasis.py its ARI events, http.py the snapshot, notifier.py the
events, queries.py who has which phones)."""
