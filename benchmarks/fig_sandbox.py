"""Figures 6, 7 and 8: a full hotfix in the rehearsal sandbox.

6. Reaction. (a) With every external condition already true (CI takes 0 s, workflow runs
   0 s, production healthy), ``hotfix start … --yes`` runs the whole happy path with a 3 s
   monitoring window; goal: it adds under 1.5 s beyond the window (process spawn to exit).
   (b) With CI taking 3 s and the deploy run 2 s, and a 1 s poll interval: the time from the
   condition becoming true (the sandbox's own completion instant) to the commit of the
   phase's done row; goal: within one poll interval.
7. GitHub API requests of one happy-path hotfix, from ``GET /_sandbox/requests`` (per
   route, with the 304s conditional polling earned), for both runs above.
8. Peak memory of the process driving the hotfix, its own (``VmHWM``: the high-water mark
   of its address space since exec, so neither its children nor the harness that forked it
   count); goal under 80 MB. Shown
   for runs against an existing store (the happy runs) and for a first run that creates the
   store (the delayed run).
"""

from __future__ import annotations

import pstats
from io import StringIO
from typing import Any

from benchmarks.common import Options, Row, median
from benchmarks.sandbox_runs import (
    RunResult,
    ci_reaction,
    deploy_reaction,
    phase_spans,
    request_summary,
    rss_by_segment,
    run_hotfix,
)

INSTANT = {"ci_seconds": 0.0, "run_queued_seconds": 0.0, "run_seconds": 0.0}
DELAYED = {"ci_seconds": 3.0, "run_queued_seconds": 0.0, "run_seconds": 2.0}
REACTION_POLL = 1.0
REACTION_MONITOR = 1.0


def _profile_summary(result: RunResult, limit: int = 25) -> str:
    if result.profile is None or not result.profile.exists():
        return ""
    out = StringIO()
    stats = pstats.Stats(str(result.profile), stream=out)
    stats.sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def _happy_rows(results: list[RunResult]) -> list[Row]:
    window = float(results[0].config["monitor"]["duration"])
    overheads = [r.wall_s - window for r in results]
    chosen = sorted(results, key=lambda r: r.wall_s)[len(results) // 2]
    spans = phase_spans(chosen)
    row = Row(
        figure="6",
        name=f"happy path beyond the {window:g}s monitoring window",
        measured=median(overheads),
        goal="< 1.5 s beyond the window",
        goal_max=1.5,
        details={
            "runs": len(results),
            "process_wall_s": [round(r.wall_s, 3) for r in results],
            "monitor_window_s": window,
            "sandbox_timings": INSTANT,
            "phase_seconds_of_median_run": spans,
            "journal_rows": len(chosen.journal),
        },
    ).judge()
    slow = sorted(
        ((k, v) for k, v in spans.items() if v >= 0.15 and k != "monitor"), key=lambda kv: -kv[1]
    )
    row.notes.append(
        f"process wall {median([r.wall_s for r in results]):.2f}s; biggest parts: "
        + ", ".join(f"{k} {v:.2f}s" for k, v in slow[:8])
    )
    world = chosen.world_s
    row.details.update(
        sandbox_github_server_s=round(chosen.server_s, 3),
        sandbox_github_server_by_route_s={
            k: round(v, 3) for k, v in list(chosen.server_by_route.items())[:10]
        },
        origin_ref_hook_s=None if chosen.hook_s is None else round(chosen.hook_s, 3),
        origin_ref_hook_calls=chosen.hook_calls,
        sandbox_total_s=round(world, 3),
        overhead_without_sandbox_time_s=round(chosen.wall_s - window - world, 3),
    )
    hook = (
        f" + {chosen.hook_s:.2f}s in the origin's ref-log hook ({chosen.hook_calls} calls)"
        if chosen.hook_s is not None
        else ""
    )
    row.notes.append(
        f"of the median run, the sandbox itself took {world:.2f}s ({chosen.server_s:.2f}s "
        f"answering GitHub API calls{hook}, overlaps counted once); without that the hotfix "
        f"added {chosen.wall_s - window - world:.2f}s"
    )
    # The figure as its goal was set: the sandbox's own time (its GitHub server answering,
    # its origin's ref-log hook) is the rehearsal's, not the hotfix's. The row above keeps
    # it in, and is judged against the same goal: the stricter reading.
    excluded = Row(
        figure="6",
        name="the same, the sandbox's own time excluded",
        measured=median([r.wall_s - window - r.world_s for r in results]),
        goal="< 1.5 s beyond the window, sandbox excluded",
        goal_max=1.5,
        details={"per_run_s": [round(r.wall_s - window - r.world_s, 3) for r in results]},
    ).judge()
    return [row, excluded]


def _reaction_rows(result: RunResult) -> list[Row]:
    rows = []
    for name, reaction in (
        ("CI completed -> wait_ci done", ci_reaction(result)),
        ("deploy run completed -> deploy done", deploy_reaction(result)),
    ):
        rows.append(
            Row(
                figure="6",
                name=f"reaction: {name}",
                measured=reaction["lag_s"],
                goal=f"<= one poll interval ({REACTION_POLL:g} s)",
                goal_max=REACTION_POLL,
                details={**{k: round(v, 4) for k, v in reaction.items()}, **DELAYED},
            ).judge()
        )
    return rows


def _request_rows(happy: RunResult, delayed: RunResult) -> list[Row]:
    rows = []
    for label, result in (
        ("happy path, conditions already true", happy),
        (f"happy path, CI 3 s / deploy 2 s, {REACTION_POLL:g}s polls", delayed),
    ):
        summary = request_summary(result.requests)
        row = Row(
            figure="7",
            name=f"GitHub API requests ({label})",
            measured=float(summary["total"]),
            unit="requests",
            goal="report",
            verdict="INFO",
            details=summary,
        )
        row.notes.append(
            f"{summary['total']} requests ({summary['not_modified']} answered 304): "
            + "; ".join(f"{k} {v}" for k, v in list(summary["routes"].items())[:12])
        )
        rows.append(row)
    return rows


def _own_peak_kb(result: RunResult) -> float:
    """The driving process's own peak resident set (VmHWM), in kB; 0 when not reported."""
    return float(result.driver.get("peak_rss_kb") or 0)


def _memory_row(results: list[RunResult], label: str) -> Row:
    peaks = [_own_peak_kb(r) / 1024 for r in results if r.driver and _own_peak_kb(r)]
    if not peaks:
        return Row(figure="8", name="peak memory", verdict="ERROR", notes=["no driver report"])
    biggest = max(results, key=_own_peak_kb)
    growth = rss_by_segment(biggest)
    row = Row(
        figure="8",
        name=f"peak memory (own VmHWM) of `hotfix start`, {label}",
        measured=max(peaks),
        unit="MB",
        goal="< 80 MB",
        goal_max=80.0,
        details={
            "per_run_mb": [round(p, 1) for p in peaks],
            "ru_maxrss_mb_not_used": [
                round(r.driver.get("maxrss_kb", 0) / 1024, 1) for r in results if r.driver
            ],
            "rss_by_segment": growth,
        },
    ).judge()
    top = sorted(growth, key=lambda g: -float(g["added_mb"]))[:6]
    if top:
        row.notes.append(
            "resident set grew most in: "
            + ", ".join(f"{g['segment']} +{g['added_mb']:.1f} MB" for g in top)
        )
    return row


def run(opts: Options) -> list[Row]:
    runs = 1 if opts.quick else 3
    happy = []
    for i in range(runs):
        folder = opts.work / f"fig6-happy-{i}"
        folder.mkdir()
        happy.append(run_hotfix(folder, timings=INSTANT))
    folder = opts.work / "fig6-delayed"
    folder.mkdir()
    delayed = run_hotfix(
        folder,
        timings=DELAYED,
        poll_interval=REACTION_POLL,
        monitor=REACTION_MONITOR,
        existing_store=False,
    )
    rows = _happy_rows(happy)
    rows += _reaction_rows(delayed)
    rows += _request_rows(happy[0], delayed)
    rows.append(_memory_row(happy, "store already there"))
    rows.append(_memory_row([delayed], "first run: it creates the store"))
    if rows[0].verdict == "MISS":
        folder = opts.work / "fig6-profile"
        folder.mkdir()
        profiled = run_hotfix(folder, timings=INSTANT, profile=True)
        text = _profile_summary(profiled)
        rows[0].details["cprofile_cumulative_top"] = text
        rows[0].details["profiled_phase_seconds"] = phase_spans(profiled)
    extra: dict[str, Any] = {"delayed_phase_seconds": phase_spans(delayed)}
    next(r for r in rows if r.name.startswith("reaction")).details.update(extra)
    return rows
