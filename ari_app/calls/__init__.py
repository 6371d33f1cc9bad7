"""Call control (Wazo's plugin layout, reference/asterisk.md §1.1): `service` holds the
logic and the explicit call state, `stasis` turns ARI events into service calls,
`notifier` publishes call events to the web side, `store` writes the call log."""
