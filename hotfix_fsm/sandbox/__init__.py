"""The rehearsal world: a local GitHub REST API server and a local production app."""
