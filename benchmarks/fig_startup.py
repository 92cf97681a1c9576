"""Figure 2: command start-up — ``hotfix status HOTFIX`` and ``hotfix --version`` against
``python -c "import sqlalchemy.orm"``, subprocess wall times in alternating rounds.

The command runs as the console script would: ``hotfix`` next to this interpreter when the
package is installed, else ``python -c "import sys; from <module> import main; ..."`` with the
entry point ``pyproject.toml`` declares (exactly what the generated wrapper does).
``status`` reads a store holding one finished hotfix with a real-sized journal (58 rows).

When a command misses its goal, ``python -X importtime`` of it is parsed and the import cost
is attributed to top-level packages (self times summed, so nothing is counted twice).
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PYTHON,
    ROOT,
    SOURCE,
    Options,
    Row,
    bench_env,
    entry_point,
    interleave,
    median,
    spread,
    timed_run,
)
from benchmarks.fixtures import make_hotfix

BASELINE = (PYTHON, "-c", "import sqlalchemy.orm")
HOTFIX_ID = "BENCH-2-20250101-000000"


def shim() -> str:
    """What the generated console-script wrapper runs, as ``python -c`` code."""
    module, function = entry_point()
    return f"import sys; from {module} import {function}; sys.exit({function}())"


def cli_argv() -> tuple[list[str], str]:
    """How to launch ``hotfix`` here, and a description for the notes."""
    if ROOT.resolve() == SOURCE:
        script = Path(PYTHON).parent / "hotfix"
        found = str(script) if script.exists() else shutil.which("hotfix")
        if found and Path(found).resolve().parent == Path(PYTHON).resolve().parent:
            return [found], found
    code = shim()
    return [PYTHON, "-c", code], f"{PYTHON} -c {code!r} (the console script's own code)"


def cli_available() -> str | None:
    """None when ``hotfix_fsm.cli`` can be imported, else why not."""
    try:
        _, proc = timed_run([PYTHON, "-c", "import hotfix_fsm.cli"], env=bench_env(), expect=(0, 1))
    except (OSError, RuntimeError) as exc:
        return str(exc)
    if proc.returncode != 0:
        return proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "import failed"
    return None


def importtime(argv: Sequence[str], env: dict[str, str], runs: int = 3) -> dict[str, Any]:
    """Median ``-X importtime`` self time per top-level package, and the slowest modules."""
    per_pkg: dict[str, list[int]] = defaultdict(list)
    per_mod: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for _ in range(runs):
        _, proc = timed_run([argv[0], "-X", "importtime", *argv[1:]], env=env, expect=(0, 1, 3))
        totals: dict[str, int] = defaultdict(int)
        for line in proc.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            try:
                _, rest = line.split(":", 1)
                self_us, cum_us, name = rest.split("|", 2)
            except ValueError:
                continue
            module = name.strip()
            totals[module.split(".")[0]] += int(self_us)
            per_mod[module].append((int(self_us), int(cum_us)))
        for pkg, us in totals.items():
            per_pkg[pkg].append(us)
    packages = sorted(((pkg, median(v) / 1e6) for pkg, v in per_pkg.items()), key=lambda kv: -kv[1])
    total = sum(s for _, s in packages)
    modules = sorted(
        (
            (mod, median([c for _, c in v]) / 1e6, median([s for s, _ in v]) / 1e6)
            for mod, v in per_mod.items()
        ),
        key=lambda t: -t[1],
    )
    ours = sorted(m for m in per_mod if m.split(".")[0] == "hotfix_fsm")
    return {
        "total_import_s": round(total, 4),
        "by_package_s": {pkg: round(s, 4) for pkg, s in packages[:15]},
        "slowest_modules_cumulative_s": {m: round(c, 4) for m, c, _ in modules[:15]},
        "hotfix_fsm_modules_imported": ours,
    }


def run(opts: Options) -> list[Row]:
    why = cli_available()
    if why is not None:
        return [
            Row(
                figure="2",
                name="start-up (hotfix CLI)",
                verdict="SKIP",
                notes=[f"hotfix_fsm.cli not available yet: {why}"],
            )
        ]
    folder = opts.work / "fig2"
    folder.mkdir()
    db = folder / "store.db"
    made = make_hotfix(db, HOTFIX_ID, until="done")
    env = bench_env(HOTFIX_FSM_DB=str(db))
    cli, how = cli_argv()
    commands: dict[str, list[str]] = {
        "status": [*cli, "status", HOTFIX_ID],
        "version": [*cli, "--version"],
        "baseline": list(BASELINE),
    }

    def runner(argv: list[str]) -> Callable[[], float]:
        return lambda: timed_run(argv, env=env)[0]

    # A sanity run: status must really have read the hotfix.
    _, proc = timed_run(commands["status"], env=env)
    if HOTFIX_ID not in proc.stdout:
        raise RuntimeError(f"`hotfix status` did not show the hotfix:\n{proc.stdout[-1000:]}")
    samples = interleave(
        {name: runner(argv) for name, argv in commands.items()},
        opts.rounds(8, 30),
        warmup=2,
    )
    baseline = median(samples["baseline"])
    rows: list[Row] = []
    for name, label in (("status", "`hotfix status HOTFIX`"), ("version", "`hotfix --version`")):
        row = Row(
            figure="2",
            name=f"start-up {label}",
            measured=median(samples[name]),
            baseline=baseline,
            goal="<= 1.0x `python -c 'import sqlalchemy.orm'`",
            goal_ratio=1.0,
            details={
                "command": commands[name],
                "launcher": how,
                "samples": spread(samples[name]),
                "baseline_samples": spread(samples["baseline"]),
                "journal_rows": made["rows"],
            },
        ).judge()
        if row.verdict == "MISS":
            profile = importtime(commands[name], env, runs=3 if opts.quick else 5)
            base_profile = importtime(list(BASELINE), env, runs=3)
            row.details["importtime"] = profile
            row.details["baseline_importtime"] = base_profile
            heavy = ", ".join(
                f"{pkg} {s * 1e3:.0f} ms" for pkg, s in list(profile["by_package_s"].items())[:8]
            )
            row.notes.append(
                f"{name}: imports take {profile['total_import_s'] * 1e3:.0f} ms "
                f"(baseline {base_profile['total_import_s'] * 1e3:.0f} ms); heaviest: {heavy}"
            )
        rows.append(row)
    rows[0].notes.insert(0, f"launched as {how}")
    return rows
