"""Recovering and handing over hotfixes: adopt (rebuild from the world) and hand-off."""
