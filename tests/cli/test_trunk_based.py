"""A trunk-based set-up (the production branch is the main branch): no back-merge PR, and
the plan, the phase table, the log and the report say why."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from hotfix_fsm.errors import ExitCode
from hotfix_fsm.sandbox.serve import RunningSandbox
from tests.cli.conftest import Cli

ISSUE = "INC-21"
REASON = "production branch is the main branch (trunk-based)"
PATCH = "\n".join(
    [
        "--- a/README.md",
        "+++ b/README.md",
        "@@ -1,3 +1,4 @@",
        " # shop",
        " ",  # the blank context line
        " The rehearsal sandbox's tiny application.",
        "+Served from main.",
        "",
    ]
)


def test_trunk_based_hotfix_skips_the_back_merge_and_says_why(
    cli: Cli, served: RunningSandbox, tmp_path: Path
) -> None:
    info = served.info
    work = Path(info.work)
    config = Path(info.config)
    text = config.read_text(encoding="utf-8")
    assert 'production_branch = "production"' in text
    config.write_text(
        text.replace('production_branch = "production"', 'production_branch = "main"')
    )
    patch = tmp_path / "fix.patch"
    patch.write_text(PATCH, encoding="utf-8")

    plan = cli(
        "start", ISSUE, "Say where we serve from", "--patch", str(patch), "--dry-run", cwd=work
    )
    assert plan.code == ExitCode.OK, plan
    assert f"backport        skipped ({REASON})" in plan.out, plan.out

    started = cli(
        "start", ISSUE, "Say where we serve from", "--patch", str(patch), "--yes", cwd=work
    )
    assert started.code == ExitCode.OK, started

    status = json.loads(cli("status", ISSUE, "--json").out)
    assert status["state"] == "done"
    backport = next(p for p in status["phases"] if p["name"] == "backport")
    assert backport["status"] == "done"
    assert backport["skipped"] == REASON
    hotfix_id = status["id"]

    effects = json.loads(cli("sandbox", "effects", info.root, "--json").out)
    assert len(effects["pull_requests"]) == 1, effects["pull_requests"]  # the hotfix PR only
    assert all(pr["base"] == "main" for pr in effects["pull_requests"])
    heads = subprocess.run(
        ["git", "ls-remote", "--heads", info.origin],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "refs/heads/backport/" not in heads

    log = json.loads(cli("log", hotfix_id, "--json").out)
    done = [e for e in log["entries"] if e["phase"] == "backport" and e["kind"] == "done"]
    assert len(done) == 1
    assert done[0]["payload"]["facts"]["backport_status"] == "skipped"
    assert done[0]["payload"]["facts"]["backport_skipped"] == REASON
    assert f"backport: done — skipped: {REASON}" in done[0]["summary"]

    report = cli("report", hotfix_id).out
    row = next(line for line in report.splitlines() if line.startswith("| backport |"))
    assert f"skipped: {REASON}" in row, row
