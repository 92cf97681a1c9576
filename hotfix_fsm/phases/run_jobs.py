"""Which jobs of a workflow run are still running, for the live line of a deploy or rollback.

While a dispatched run is queued or in progress, each poll of the run asks GitHub for its
jobs too (``GET /actions/runs/{id}/jobs``: one more request per poll at most, conditional
like every read, so an unchanged list costs a 304). The names come from the workflow file,
text the tool did not write: they are sanitised here, and the list is cut after a few.

The jobs only describe the wait; they never decide it. A failed or refused read of the
jobs leaves the line without them: a definite refusal (4xx, e.g. a token without
``actions: read``) stops the asking for the rest of the wait; GitHub being unavailable only
skips this poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hotfix_fsm.core.sanitize import sanitize

if TYPE_CHECKING:
    from hotfix_fsm.adapters.github import GitHubClient

SHOWN = 4  # names on the line; the rest are counted
ACTIVE_RUN = ("queued", "in_progress")  # run states whose jobs are worth naming


def running_text(jobs: Sequence[dict[str, Any]]) -> str:
    """``jobs still running: build, deploy (queued)`` or "" when every job completed."""
    names = []
    for job in jobs:
        status = str(job.get("status") or "")
        if status == "completed":
            continue
        name = sanitize(str(job.get("name") or "?"))
        names.append(name if status == "in_progress" else f"{name} ({sanitize(status)})")
    if not names:
        return ""
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return "jobs still running: " + ", ".join(names[:SHOWN]) + more


class RunJobs:
    """Asks for a run's jobs at most once per poll, until GitHub refuses to tell."""

    def __init__(self, gh: GitHubClient, run_id: int) -> None:
        self.gh = gh
        self.run_id = run_id
        self.refused = False

    def text(self, run: dict[str, Any]) -> str:
        """What the run's unfinished jobs are, for a run queued or in progress ("" else)."""
        from hotfix_fsm.adapters.github import GitHubAPIError, GitHubUnavailable

        if self.refused or run.get("status") not in ACTIVE_RUN:
            return ""
        try:
            return running_text(self.gh.run_jobs(self.run_id))
        except GitHubAPIError:
            self.refused = True
        except GitHubUnavailable:
            pass
        return ""
