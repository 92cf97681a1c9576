"""The jobs of the rehearsal GitHub's workflow runs, in GitHub's shape.

``GET /repos/{o}/{r}/actions/runs/{run_id}/jobs`` answers ``{total_count, jobs}`` as GitHub
documents it ("List jobs for a workflow run"). A run's jobs run one after the other over
the run's life: its running time is split evenly between them, so each job is ``queued``,
then ``in_progress``, then ``completed`` in turn. While a protected environment holds the
run, its last job (the one that deploys) is ``waiting`` and the others ``queued``. A run
that fails fails in its last job; the jobs before it succeed.

A workflow's jobs are named by the control ``POST /_sandbox/workflow_jobs``
(``{"workflow": "deploy.yml", "jobs": ["build", "deploy"]}``); by default they are
``build`` and the workflow file's stem (``deploy`` for ``deploy.yml``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from hotfix_fsm.sandbox.github_actions import ActionsMixin
from hotfix_fsm.sandbox.github_state import JSON, ApiError, WorldBase, iso, not_found, page


def workflow_jobs(world: WorldBase, workflow: str) -> list[str]:
    """The names of the jobs of ``workflow``'s runs."""
    configured = world.data.get("workflow_jobs", {}).get(workflow)
    if configured:
        return [str(name) for name in configured]
    return ["build", workflow.rsplit(".", 1)[0] or "deploy"]


def set_workflow_jobs(world: WorldBase, workflow: str, names: Sequence[str]) -> None:
    """Name the jobs of ``workflow``'s runs (from the next answer on)."""
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ApiError(422, "jobs must be a non-empty list of names")
    world.data.setdefault("workflow_jobs", {})[workflow] = list(names)


JobState = tuple[str, str | None, float | None, float | None]


def _job_states(
    run: JSON, names: list[str], status: str, conclusion: str | None, now: float
) -> list[JobState]:
    """``(status, conclusion, started, completed)`` of each job of ``run``."""
    if status == "waiting":
        held: list[JobState] = [("queued", None, None, None)] * (len(names) - 1)
        return [*held, ("waiting", None, None, None)]
    started = float(run["created_at"]) + float(run["queued_seconds"])
    if run.get("approved_at") is not None:
        started = max(started, float(run["approved_at"]))
    share = float(run["run_seconds"]) / len(names)
    out: list[JobState] = []
    for i in range(len(names)):
        begin, end = started + i * share, started + (i + 1) * share
        if status == "completed" or now >= end:
            last = i == len(names) - 1
            out.append(("completed", (conclusion or "success") if last else "success", begin, end))
        elif now >= begin:
            out.append(("in_progress", None, begin, None))
        else:
            out.append(("queued", None, None, None))
    return out


def render_jobs(world: WorldBase, run: JSON, status: str, conclusion: str | None) -> list[JSON]:
    """The jobs of ``run`` (whose rendered status and conclusion are given)."""
    names = workflow_jobs(world, str(run["workflow"]))
    rid = int(run["id"])
    jobs = []
    for i, (name, (job_status, job_conclusion, begin, end)) in enumerate(
        zip(names, _job_states(run, names, status, conclusion, time.time()), strict=True)
    ):
        jid = rid * 100 + i + 1
        jobs.append(
            {
                "id": jid,
                "run_id": rid,
                "run_url": f"{world.api}/actions/runs/{rid}",
                "run_attempt": 1,
                "node_id": f"CR_{jid}",
                "head_sha": run["head_sha"],
                "head_branch": run["head_branch"],
                "url": f"{world.api}/actions/jobs/{jid}",
                "html_url": f"{world.web}/actions/runs/{rid}/job/{jid}",
                "status": job_status,
                "conclusion": job_conclusion,
                "created_at": iso(float(run["created_at"])),
                "started_at": iso(begin if begin is not None else float(run["created_at"])),
                "completed_at": iso(end) if end is not None else None,
                "name": name,
                "steps": [],
                "check_run_url": f"{world.api}/check-runs/{jid}",
                "labels": ["ubuntu-latest"],
                "runner_id": None,
                "runner_name": None,
                "runner_group_id": None,
                "runner_group_name": None,
                "workflow_name": run["name"],
            }
        )
    return jobs


def list_jobs(world: ActionsMixin, run_id: str, query: Mapping[str, str]) -> JSON:
    """GET /actions/runs/{run_id}/jobs (``filter`` latest or all: one attempt here)."""
    run = world.data["runs"].get(run_id)
    if run is None:
        raise not_found()
    if query.get("filter", "latest") not in ("latest", "all"):
        raise ApiError(422, "Invalid filter: must be one of latest, all")
    rendered = world.render_run(run)  # the run's status as GET /actions/runs/{id} says
    jobs = render_jobs(world, run, str(rendered["status"]), rendered["conclusion"])
    return {"total_count": len(jobs), "jobs": page(jobs, query)}
