"""The garbage collector while ``hotfix`` starts: young collections wait until the command has
opened its store, then what start-up made is frozen and the usual thresholds are back; a
command that opens no store gets them back too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import atexit, gc, json, sys
usual = gc.get_threshold()
seen = {}

def report():
    print(json.dumps({
        "usual": usual, "during": seen.get("during"), "after": gc.get_threshold(),
        "frozen": gc.get_freeze_count(),
    }))

atexit.register(report)
import hotfix_fsm.engine as engine_module
opened = engine_module.HotfixEngine.__init__

def watching(self, *args, **kwargs):
    seen.setdefault("during", gc.get_threshold())
    opened(self, *args, **kwargs)

engine_module.HotfixEngine.__init__ = watching
from hotfix_fsm.cli import main
main(sys.argv[1:])
"""


def _run(*args: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def test_a_command_that_opens_its_store_freezes_start_up_and_collects_as_usual(
    tmp_path: Path,
) -> None:
    found = _run("--db", str(tmp_path / "s.db"), "list")
    usual = found["usual"]
    assert isinstance(usual, list)
    during = found["during"]
    assert isinstance(during, list)
    assert during[0] > usual[0]  # young collections waited while it started
    assert found["after"] == usual
    assert isinstance(found["frozen"], int)
    assert found["frozen"] > 10_000  # the modules and objects start-up made


def test_a_command_without_a_store_gets_the_usual_collector_back() -> None:
    found = _run("graph")
    assert found["during"] is None  # no store opened
    assert found["after"] == found["usual"]
    assert found["frozen"] == 0
