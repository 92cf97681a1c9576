"""Run the real ``hotfix`` command in this process and report its peak memory and times.

Usage: ``python cli_driver.py REPORT.json [--profile STATS] -- <hotfix arguments>``. The
command is entered through ``HOTFIX_BENCH_ENTRY`` (``module:function``, the console script's
target; default ``hotfix_fsm.cli:main``).
At exit (the command always ends with ``sys.exit``) REPORT.json receives this process's own
peak resident set (``VmHWM`` of ``/proc/self/status``: the high-water mark of this process's
address space since it was exec'd — not git or the gates it spawned, and not its parent), CPU
times and the wall time since the interpreter started running this script. ``ru_maxrss`` is
reported beside it but not used: Linux carries the pre-exec high-water mark into it, so a
child of a large parent (forked, then exec'd) reports at least the parent's size. With
``--profile`` the main thread runs under cProfile and the stats are written to STATS.
A daemon thread samples the resident set size every 20 ms (``rss_samples``: epoch time and
MB) and notes newly imported top-level packages (``imports``), so the harness can tell which
phase grew the process and which imports happened late.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import sys
import threading
import time
from typing import Any

STARTED = time.monotonic()
MARKS: dict[str, float] = {"script_started": time.time()}
SAMPLES: list[tuple[float, float]] = []
IMPORTS: list[tuple[float, list[str]]] = []
PAGE_MB = resource.getpagesize() / (1024 * 1024)


def _sample_rss(stop: threading.Event) -> None:
    """Every 20 ms: the resident set size, and which top-level packages appeared since."""
    seen = {name.partition(".")[0] for name in list(sys.modules)}
    while True:
        try:
            with open("/proc/self/statm", encoding="ascii") as statm:
                resident = int(statm.read().split()[1])
        except (OSError, ValueError, IndexError):
            return
        now = time.time()
        SAMPLES.append((now, round(resident * PAGE_MB, 2)))
        packages = {name.partition(".")[0] for name in list(sys.modules)}
        new = sorted(packages - seen)
        if new:
            IMPORTS.append((now, new))
            seen |= packages
        if stop.wait(0.02):
            return


def _own_peak_kb() -> int | None:
    """``VmHWM``: the peak resident set of this process's own address space, in kB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _report(path: str, profiler: Any, stats: str | None) -> None:
    if profiler is not None and stats:
        profiler.disable()
        profiler.dump_stats(stats)
    MARKS["atexit"] = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(path, "w", encoding="utf-8") as out:
        json.dump(
            {
                "peak_rss_kb": _own_peak_kb(),
                "maxrss_kb": usage.ru_maxrss,
                "cpu_user_s": usage.ru_utime,
                "cpu_system_s": usage.ru_stime,
                "wall_s": time.monotonic() - STARTED,
                "rss_samples": SAMPLES,
                "imports": IMPORTS,
                "marks": MARKS,
            },
            out,
        )


def main(argv: list[str]) -> None:
    report, rest = argv[0], argv[1:]
    stats = None
    if rest[:1] == ["--profile"]:
        stats, rest = rest[1], rest[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    threading.Thread(target=_sample_rss, args=(threading.Event(),), name="rss", daemon=True).start()
    profiler = None
    if stats:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    atexit.register(_report, report, profiler, stats)
    import importlib

    module, _, function = (os.environ.get("HOTFIX_BENCH_ENTRY") or "hotfix_fsm.cli:main").partition(
        ":"
    )
    hotfix = getattr(importlib.import_module(module), function or "main")
    MARKS["cli_imported"] = time.time()
    sys.argv = ["hotfix", *rest]  # as the console script sees its arguments
    try:
        hotfix()
    finally:
        MARKS["cli_returned"] = time.time()


if __name__ == "__main__":
    main(sys.argv[1:])
