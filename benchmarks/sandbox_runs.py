"""One complete hotfix in a fresh rehearsal sandbox, driven by the real ``hotfix`` command.

The sandbox (rehearsal GitHub API and production app) is served from threads of the harness
process; the hotfix is driven by a separate process (``drivers/cli_driver.py`` running
``hotfix start … --yes``) so its peak memory and wall time are its own. Afterwards the
journal, the sandbox's request counters (``GET /_sandbox/requests``) and its state file (when
CI and workflow runs completed) are collected.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.common import DRIVERS, PYTHON, bench_env, entry_point

ISSUE = "BENCH-6"
DESCRIPTION = "Fix token expiry check"


@dataclass
class RunResult:
    """What one sandbox run measured."""

    state: str
    wall_s: float  # harness: spawn to exit
    spawned_at: float  # epoch
    exited_at: float
    driver: dict[str, Any]  # the driver's own report (maxrss, cpu, wall)
    journal: list[dict[str, Any]]  # seq, at, kind, phase
    context: dict[str, Any]
    requests: dict[str, dict[str, int]]
    github_state: dict[str, Any]
    config: dict[str, Any]
    output: str
    profile: Path | None = None
    server_s: float = 0.0  # time the rehearsal GitHub server spent answering the hotfix
    server_by_route: dict[str, float] = field(default_factory=dict)
    hook_s: float | None = None  # time git spent in the origin's ref-log hook
    hook_calls: int = 0
    world_s: float = 0.0  # union of the two above (server calls can run the hook)


class _ServerClock:
    """Wraps ``RehearsalGitHub.handle`` to add up the server's own time per request."""

    def __init__(self, github: Any) -> None:
        self.total = 0.0
        self.by_route: dict[str, float] = {}
        self.intervals: list[tuple[float, float]] = []
        self._handle = github.handle
        self._lock = threading.Lock()
        setattr(github, "handle", self)  # noqa: B010 - replaces the bound method on purpose

    def __call__(self, method: str, target: str, headers: Any, raw: bytes) -> Any:
        began = time.time()
        started = time.perf_counter()
        try:
            return self._handle(method, target, headers, raw)
        finally:
            elapsed = time.perf_counter() - started
            self.intervals.append((began, began + elapsed))
            path = urlsplit(target).path
            if not path.startswith("/_sandbox/"):
                key = f"{method} {re.sub(r'/[0-9a-f]{7,40}|/[0-9]+', '/…', path)}"
                with self._lock:
                    self.total += elapsed
                    self.by_route[key] = self.by_route.get(key, 0.0) + elapsed


def _time_hook(origin: Path, log: Path) -> bool:
    """Wrap the origin's reference-transaction hook so each call's duration is logged."""
    hook = origin / "hooks" / "reference-transaction"
    try:
        lines = hook.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    if len(lines) != 2 or not lines[1].startswith("exec "):
        return False
    hook.write_text(
        "#!/bin/sh\n"
        "t0=$(date +%s%N)\n"
        f"{lines[1][len('exec ') :]}\n"
        "rc=$?\n"
        f'echo "$t0 $(date +%s%N)" >> "{log}"\n'
        "exit $rc\n",
        encoding="utf-8",
    )
    return True


def _hook_intervals(log: Path) -> list[tuple[float, float]]:
    out = []
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            start, _, end = line.partition(" ")
            out.append((int(start) / 1e9, int(end) / 1e9))
    return out


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping intervals."""
    total, reach = 0.0, float("-inf")
    for begin, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(begin, reach)
        reach = end
    return total


def _tune_config(path: Path, *, poll_interval: float | None, monitor: float | None) -> None:
    """Rewrite the sandbox's hotfix.toml: CI/deploy poll interval and monitoring window."""
    text = path.read_text(encoding="utf-8")
    if poll_interval is not None:
        for section in ("ci", "deploy"):
            text, n = re.subn(
                rf"(\[{section}\][^\[]*?poll_interval = )[0-9.]+",
                rf"\g<1>{poll_interval}",
                text,
            )
            if n != 1:
                raise RuntimeError(f"cannot set {section}.poll_interval in {path}")
    if monitor is not None:
        text, n = re.subn(r"(\[monitor\][^\[]*?duration = )[0-9.]+", rf"\g<1>{monitor}", text)
        if n != 1:
            raise RuntimeError(f"cannot set monitor.duration in {path}")
    path.write_text(text, encoding="utf-8")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - a local sandbox URL
        return json.loads(resp.read().decode("utf-8"))


def run_hotfix(
    folder: Path,
    *,
    timings: dict[str, float],
    poll_interval: float | None = None,
    monitor: float | None = None,
    profile: bool = False,
    existing_store: bool = True,
) -> RunResult:
    """Build a sandbox in ``folder``, serve it, drive one hotfix to its end; collect."""
    from hotfix_fsm.sandbox.serve import serve_sandbox
    from hotfix_fsm.sandbox.world import build_sandbox
    from hotfix_fsm.store import open_store

    info = build_sandbox(folder / "sandbox")
    db = folder / "hotfix.db"
    report = folder / "driver.json"
    stats = folder / "driver.pstats" if profile else None
    env = bench_env(
        HOTFIX_FSM_STATE_DIR=str(folder / "state"),
        XDG_STATE_HOME=str(folder / "xdg"),
        HOTFIX_FSM_DB=str(db),
        HOTFIX_BENCH_ENTRY=":".join(entry_point()),
    )
    if existing_store:
        # The store exists before the run, as it does after a team's first hotfix (so the
        # run does not include creating the schema).
        open_store(db).engine.dispose()
    hook_log = folder / "hook-times.log"
    with serve_sandbox(info.root, timings=timings) as running:
        clock = _ServerClock(running.github)
        hooked = _time_hook(Path(info.origin), hook_log)
        config_path = Path(info.config)
        _tune_config(config_path, poll_interval=poll_interval, monitor=monitor)
        config = tomllib.loads(config_path.read_text(encoding="utf-8"))
        argv = [PYTHON, str(DRIVERS / "cli_driver.py"), str(report)]
        if stats is not None:
            argv += ["--profile", str(stats)]
        argv += [
            "--",
            "--db",
            str(db),
            "--config",
            str(config_path),
            "start",
            ISSUE,
            DESCRIPTION,
            "--repo",
            info.work,
            "--cherry-pick",
            info.fix_sha,
            "--yes",
        ]
        spawned_at = time.time()
        t0 = time.perf_counter()
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        wall = time.perf_counter() - t0
        exited_at = time.time()
        requests = _get_json(f"{running.info.github_url}/_sandbox/requests")
    failure = f"(exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    store = open_store(db)
    try:
        hotfix = store.find(ISSUE)
        journal = [
            {"seq": e.seq, "at": e.at, "kind": e.kind, "phase": e.phase}
            for e in store.journal(hotfix.id)
        ]
        state, context = hotfix.state, hotfix.context
    except Exception as exc:
        raise RuntimeError(f"the sandbox hotfix did not start {failure}") from exc
    finally:
        store.engine.dispose()
    if state != "done":
        raise RuntimeError(f"the sandbox hotfix ended {state} {failure}")
    state_file = Path(info.root) / "github" / "github-state.json"
    github_state = json.loads(state_file.read_text(encoding="utf-8"))
    driver = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    hooks = _hook_intervals(hook_log)
    return RunResult(
        state=state,
        wall_s=wall,
        spawned_at=spawned_at,
        exited_at=exited_at,
        driver=driver,
        journal=journal,
        context=context,
        requests=requests,
        github_state=github_state,
        config=config,
        output=proc.stdout[-2000:] + proc.stderr[-2000:],
        profile=stats,
        server_s=clock.total,
        server_by_route=dict(sorted(clock.by_route.items(), key=lambda kv: -kv[1])),
        hook_s=sum(e - b for b, e in hooks) if hooked else None,
        hook_calls=len(hooks),
        world_s=union_seconds(clock.intervals + hooks),
    )


def phase_spans(result: RunResult) -> dict[str, float]:
    """Seconds per phase (first intent to done), plus the runner's time between phases."""
    rows = result.journal
    spans: dict[str, float] = {}
    starts: dict[str, float] = {}
    busy = 0.0
    for row in rows:
        phase = row["phase"]
        if row["kind"] == "intent" and phase:
            starts.setdefault(phase, row["at"])
        elif row["kind"] == "done" and phase in starts:
            spans[phase] = round(row["at"] - starts[phase], 3)
    gates = [spans.pop(p) for p in list(spans) if p.startswith("gate:")]
    busy += sum(spans.values())
    if gates:
        first = min(r["at"] for r in rows if (r["phase"] or "").startswith("gate:"))
        last = max(r["at"] for r in rows if (r["phase"] or "").startswith("gate:"))
        spans["gates (parallel)"] = round(last - first, 3)
        busy += last - first
    created, finished = rows[0]["at"], rows[-1]["at"]
    spans["before the first journal row (start-up, preflight)"] = round(
        created - result.spawned_at, 3
    )
    spans["between phases (runner bookkeeping)"] = round((finished - created) - busy, 3)
    spans["after the last journal row (report, exit)"] = round(result.exited_at - finished, 3)
    return spans


def ci_reaction(result: RunResult) -> dict[str, float]:
    """When CI on the pushed sha completed, and when the wait_ci done row was committed."""
    sha = str(result.context.get("pushed_sha") or result.context.get("fix_sha"))
    record = result.github_state["ci_shas"][sha]
    completed = float(record["first_seen"]) + float(record["seconds"])
    done = next(r["at"] for r in result.journal if r["kind"] == "done" and r["phase"] == "wait_ci")
    return {"completed_at": completed, "done_at": done, "lag_s": done - completed}


def deploy_reaction(result: RunResult) -> dict[str, float]:
    """When the deploy run completed, and when the deploy done row was committed."""
    runs = [
        r for r in result.github_state["runs"].values() if r["workflow"] == "deploy-production.yml"
    ]
    if len(runs) != 1:
        raise RuntimeError(f"expected one deploy run, saw {len(runs)}")
    run = runs[0]
    completed = float(run["created_at"]) + float(run["queued_seconds"]) + float(run["run_seconds"])
    done = next(r["at"] for r in result.journal if r["kind"] == "done" and r["phase"] == "deploy")
    return {"completed_at": completed, "done_at": done, "lag_s": done - completed}


def request_summary(requests: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Total requests, 304s, and ``{route: "count (n x 304)"}``, busiest first."""
    total = sum(v.get("count", 0) for v in requests.values())
    not_modified = sum(v.get("not_modified", 0) for v in requests.values())
    routes = {
        route: f"{v.get('count', 0)}"
        + (f" ({v['not_modified']} x 304)" if v.get("not_modified") else "")
        for route, v in sorted(requests.items(), key=lambda kv: -kv[1].get("count", 0))
    }
    return {"total": total, "not_modified": not_modified, "routes": routes}


def rss_by_segment(result: RunResult) -> list[dict[str, Any]]:
    """Peak resident set size of the driver in each stretch of the run, and what it added."""
    samples = [(float(t), float(mb)) for t, mb in result.driver.get("rss_samples", [])]
    if not samples:
        return []
    rows = result.journal
    segments: list[tuple[str, float, float]] = [("start-up, store, preflight", 0.0, rows[0]["at"])]
    starts: dict[str, float] = {}
    for row in rows:
        phase = row["phase"] or ""
        if row["kind"] == "intent":
            starts.setdefault(phase, row["at"])
        elif row["kind"] == "done" and phase in starts and not phase.startswith("gate:"):
            segments.append((phase, starts[phase], row["at"]))
    gate_rows = [r["at"] for r in rows if (r["phase"] or "").startswith("gate:")]
    if gate_rows:
        segments.append(("gates", min(gate_rows), max(gate_rows)))
    segments.append(("after the last journal row", rows[-1]["at"], float("inf")))
    imports = [(float(t), list(names)) for t, names in result.driver.get("imports", [])]
    out = []
    for name, begin, end in sorted(segments, key=lambda s: s[1]):
        before = max((mb for t, mb in samples if t < begin), default=0.0)
        inside = [mb for t, mb in samples if begin <= t <= end]
        peak = max(inside, default=before)
        added = round(max(0.0, peak - before), 1)
        late = sorted({n for t, names in imports if begin <= t <= end for n in names})
        item: dict[str, Any] = {"segment": name, "peak_mb": peak, "added_mb": added}
        if late and begin > 0:
            item["new_imports"] = [n for n in late if not n.startswith("_")]
        out.append(item)
    return out
