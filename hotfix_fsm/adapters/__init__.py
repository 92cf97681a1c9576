"""Thin adapters over the world: git (``git.py``), subprocesses (``commands.py``), GitHub, HTTP.

Phases reach them through ``ctx.services``; nothing here knows about the state machine.
"""
