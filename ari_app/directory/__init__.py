"""Who may call and whom: the users, extensions and trunk flag every command checks, cached
(service.py), and whether a phone is registered before it is dialled (reach.py)."""
