"""Scripts the harness runs as subprocesses (each is a separate process on purpose)."""
