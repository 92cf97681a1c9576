"""The durable core: the runner (lease, loop, pauses), the step protocol and the journal writer."""
