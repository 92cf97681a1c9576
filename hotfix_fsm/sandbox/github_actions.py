"""CI checks, commit statuses and GitHub Actions runs of the rehearsal GitHub server."""

from __future__ import annotations

import sys
import time
import zlib
from collections.abc import Mapping, Sequence

from hotfix_fsm.sandbox import github_shapes as shapes
from hotfix_fsm.sandbox.github_protection import CURRENT_USER, environment_for
from hotfix_fsm.sandbox.github_state import (
    JSON,
    ApiError,
    WorldBase,
    created_matches,
    iso,
    not_found,
    page,
)

_SUCCESSFUL = {"success", "neutral", "skipped"}


class ActionsMixin(WorldBase):
    """CI check runs for pushed commits and workflow_dispatch runs."""

    # -- CI ----------------------------------------------------------------------------------

    def set_ci(
        self,
        *,
        conclusion: str | None,
        checks: Sequence[str] | None,
        seconds: float | None,
        sha: str | None,
    ) -> None:
        """Configure CI outcomes for new shas, or override one sha (also if already seen)."""
        ci = self.data["ci"]
        if sha is None:
            if conclusion is not None:
                ci["conclusion"] = conclusion
            if checks is not None:
                ci["checks"] = list(checks)
            if seconds is not None:
                ci["seconds"] = seconds
            return
        override = ci["overrides"].setdefault(sha, {})
        if conclusion is not None:
            override["conclusion"] = conclusion
        if seconds is not None:
            override["seconds"] = seconds
        record = self.data["ci_shas"].get(sha)
        if record is not None:
            record.update(override)

    def _resolve_commit(self, ref: str) -> str:
        resolved = self.repo.resolve(ref)
        if resolved is None:
            raise ApiError(422, f"No commit found for SHA: {ref}")
        return resolved[0]

    def _ci_record(self, sha: str) -> JSON | None:
        record: JSON | None = self.data["ci_shas"].get(sha)
        if record is not None:
            return record
        # CI only runs for pushed commits; the clock starts when the server first sees it.
        if not self.repo.branches_containing(sha):
            return None
        ci = self.data["ci"]
        names = ci["checks"] if ci["checks"] is not None else self.ci_checks
        record = {
            "first_seen": time.time(),
            "seconds": ci["seconds"] if ci["seconds"] is not None else self.ci_seconds,
            "conclusion": ci["conclusion"],
            "checks": [{"id": self._next("check"), "name": name} for name in names],
        }
        record.update(ci["overrides"].get(sha, {}))
        self.data["ci_shas"][sha] = record
        return record

    def _check_state(self, record: JSON) -> tuple[str, str | None, float | None]:
        seconds = float(record["seconds"])
        elapsed = time.time() - float(record["first_seen"])
        if elapsed < seconds * 0.2:
            return "queued", None, None
        if elapsed < seconds:
            return "in_progress", None, None
        return "completed", str(record["conclusion"]), float(record["first_seen"]) + seconds

    def check_runs(self, ref: str, query: Mapping[str, str]) -> JSON:
        """GET /commits/{ref}/check-runs."""
        sha = self._resolve_commit(ref)
        record = self._ci_record(sha)
        if record is None:
            return {"total_count": 0, "check_runs": []}
        status, conclusion, completed = self._check_state(record)
        runs = []
        app = shapes.actions_app(self.base_url, self.created_at)
        for check in record["checks"]:
            if query.get("check_name") and query["check_name"] != check["name"]:
                continue
            url = f"{self.web}/runs/{check['id']}"
            runs.append(
                {
                    "id": check["id"],
                    "node_id": f"CR_{check['id']}",
                    "name": check["name"],
                    "head_sha": sha,
                    "status": status,
                    "conclusion": conclusion,
                    "started_at": iso(record["first_seen"]),
                    "completed_at": iso(completed),
                    "html_url": url,
                    "details_url": url,
                    "url": f"{self.api}/check-runs/{check['id']}",
                    "external_id": "",
                    "output": {
                        "title": None if conclusion is None else f"{check['name']}: {conclusion}",
                        "summary": None,
                        "text": None,
                        "annotations_count": 0,
                        "annotations_url": f"{self.api}/check-runs/{check['id']}/annotations",
                    },
                    # One suite per commit, as Actions makes for a push.
                    "check_suite": {"id": 7000 + int(record["checks"][0]["id"])},
                    "app": app,
                    "pull_requests": [],
                }
            )
        return {"total_count": len(runs), "check_runs": runs}

    def combined_status(self, ref: str) -> JSON:
        """GET /commits/{ref}/status, derived from the same CI checks."""
        sha = self._resolve_commit(ref)
        record = self._ci_record(sha)
        statuses: list[JSON] = []
        overall = "pending"
        if record is not None:
            status, conclusion, _ = self._check_state(record)
            if status != "completed":
                state = "pending"
            elif conclusion in _SUCCESSFUL:
                state = "success"
            else:
                state = "failure"
            overall = state
            for check in record["checks"]:
                statuses.append(
                    {
                        "id": check["id"],
                        "node_id": f"SC_{check['id']}",
                        "url": f"{self.api}/statuses/{sha}",
                        "avatar_url": shapes.app_avatar(shapes.ACTIONS_APP_ID),
                        "context": check["name"],
                        "state": state,
                        "description": f"{check['name']}: {state}",
                        "target_url": f"{self.web}/runs/{check['id']}",
                        "created_at": iso(record["first_seen"]),
                        "updated_at": iso(time.time()),
                    }
                )
        return {
            "state": overall,
            "sha": sha,
            "total_count": len(statuses),
            "statuses": statuses,
            "commit_url": f"{self.api}/commits/{sha}",
            "url": f"{self.api}/commits/{sha}/status",
            "repository": shapes.minimal_repository(self.facts),
        }

    # -- Actions -----------------------------------------------------------------------------

    def _workflow_file(self, ident: str) -> str:
        if ident in self.workflows:
            return ident
        for file in self.workflows:
            if str(zlib.crc32(file.encode())) == ident:
                return file
        raise not_found()

    def get_workflow(self, ident: str) -> JSON:
        """GET /actions/workflows/{file or id}."""
        file = self._workflow_file(ident)
        wid = zlib.crc32(file.encode())
        return {
            "id": wid,
            "node_id": f"W_{wid}",
            "name": self.workflows[file],
            "path": f".github/workflows/{file}",
            "state": "active",
            "url": f"{self.api}/actions/workflows/{wid}",
            "html_url": f"{self.web}/blob/{self.default_branch}/.github/workflows/{file}",
            "badge_url": f"{self.web}/workflows/{file}/badge.svg",
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }

    def set_workflow_conclusion(self, workflow: str, conclusion: str) -> None:
        """Conclusion for runs of ``workflow`` dispatched from now on."""
        self.data["workflow_conclusions"][workflow] = conclusion

    def dispatch(self, ident: str, body: JSON) -> JSON:
        """POST /actions/workflows/{file}/dispatches; returns the stored run."""
        file = self._workflow_file(ident)
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            raise ApiError(422, 'Invalid request.\n\n"ref" wasn\'t supplied.')
        inputs = body.get("inputs", {})
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, dict):
            raise ApiError(422, "Invalid request.\n\nFor 'properties/inputs', must be an object.")
        for key, value in inputs.items():
            if not isinstance(value, str):
                raise ApiError(
                    422, f"Invalid request.\n\nFor 'properties/{key}', {value!r} is not a string."
                )
        resolved = self.repo.resolve(ref)
        if resolved is None:
            raise ApiError(422, f"No ref found for: {ref}")
        sha, branch = resolved
        run_id = self._next("run")
        numbers = self.data["run_numbers"]
        numbers[file] = int(numbers.get(file, 0)) + 1
        now = time.time()
        name = self.workflows[file]
        corr = inputs.get("correlation_id")
        run: JSON = {
            "id": run_id,
            "workflow": file,
            "name": name,
            "display_title": f"{name} {corr}" if corr else name,
            "head_sha": sha,
            "head_branch": branch,
            "run_number": numbers[file],
            "created_at": now,
            "queued_seconds": self.run_queued_seconds,
            "run_seconds": self.run_seconds,
            "planned_conclusion": self.data["workflow_conclusions"].get(file, "success"),
            "inputs": dict(inputs),
            "notified": False,
            "environment": environment_for(self.data, file),
            "approved_at": None,
        }
        self.data["runs"][str(run_id)] = run
        self._effect(
            "dispatches",
            {
                "workflow": file,
                "ref": ref,
                "inputs": dict(inputs),
                "run_id": run_id,
                "created_at": iso(now),
            },
        )
        return self.render_run(run)

    def _run_status(self, run: JSON) -> tuple[str, str | None, float]:
        started = float(run["created_at"]) + float(run["queued_seconds"])
        if run.get("environment") is not None:
            # A protected environment holds the run until a reviewer approves it.
            approved = run.get("approved_at")
            if approved is None:
                return "waiting", None, float(run["created_at"])
            started = max(started, float(approved))
        done = started + float(run["run_seconds"])
        now = time.time()
        if now < started:
            return "queued", None, float(run["created_at"])
        if now < done:
            return "in_progress", None, started
        return "completed", str(run["planned_conclusion"]), done

    def advance_runs(self) -> bool:
        """Fire ``on_deploy`` once for each run that completed successfully; True if any."""
        fired = False
        for key in sorted(self.data["runs"], key=int):
            run = self.data["runs"][key]
            if run["notified"]:
                continue
            status, conclusion, at = self._run_status(run)
            if status != "completed":
                continue
            run["notified"] = True
            fired = True
            if conclusion != "success":
                continue
            inputs = {str(k): str(v) for k, v in run["inputs"].items()}
            sha = inputs.get("target_sha") or run["head_sha"]
            self._effect(
                "deploys",
                {"workflow": run["workflow"], "sha": sha, "run_id": run["id"], "at": iso(at)},
            )
            if self.on_deploy is not None:
                try:
                    self.on_deploy(run["workflow"], sha, inputs)
                except Exception as exc:  # a broken callback must not wedge the API
                    print(f"rehearsal github: on_deploy failed: {exc!r}", file=sys.stderr)
        return fired

    def render_run(self, run: JSON) -> JSON:
        """A workflow run object (without inputs, as on GitHub)."""
        status, conclusion, updated = self._run_status(run)
        rid = run["id"]
        file = run["workflow"]
        wid = zlib.crc32(file.encode())
        url = f"{self.api}/actions/runs/{rid}"
        repository = shapes.minimal_repository(self.facts)
        actor = self.user(CURRENT_USER)
        return {
            "id": rid,
            "node_id": f"WFR_{rid}",
            "name": run["name"],
            "display_title": run["display_title"],
            "path": f".github/workflows/{file}",
            "workflow_id": wid,
            "head_branch": run["head_branch"],
            "head_sha": run["head_sha"],
            "event": "workflow_dispatch",
            "status": status,
            "conclusion": conclusion,
            "run_number": run["run_number"],
            "run_attempt": 1,
            "created_at": iso(run["created_at"]),
            "updated_at": iso(updated),
            "run_started_at": iso(run["created_at"]),
            "url": url,
            "html_url": f"{self.web}/actions/runs/{rid}",
            "workflow_url": f"{self.api}/actions/workflows/{wid}",
            "jobs_url": f"{url}/jobs",
            "logs_url": f"{url}/logs",
            "check_suite_url": f"{self.api}/check-suites/{8000 + rid}",
            "check_suite_id": 8000 + rid,
            "check_suite_node_id": f"CS_{8000 + rid}",
            "artifacts_url": f"{url}/artifacts",
            "cancel_url": f"{url}/cancel",
            "rerun_url": f"{url}/rerun",
            "previous_attempt_url": None,
            "actor": actor,
            "triggering_actor": actor,
            "pull_requests": [],
            "referenced_workflows": [],
            "head_commit": shapes.simple_commit(self.commit_info(run["head_sha"])),
            "repository": repository,
            "head_repository": repository,
        }

    def list_runs(self, query: Mapping[str, str], workflow: str | None = None) -> JSON:
        """GET /actions/runs and /actions/workflows/{file}/runs, newest first."""
        file = self._workflow_file(workflow) if workflow is not None else None
        found: list[JSON] = []
        for key in sorted(self.data["runs"], key=int, reverse=True):
            run = self.data["runs"][key]
            if file is not None and run["workflow"] != file:
                continue
            if query.get("event") and query["event"] != "workflow_dispatch":
                continue
            if query.get("branch") and query["branch"] != run["head_branch"]:
                continue
            if query.get("head_sha") and query["head_sha"] != run["head_sha"]:
                continue
            if query.get("created") and not created_matches(run["created_at"], query["created"]):
                continue
            rendered = self.render_run(run)
            wanted = query.get("status")
            if wanted and wanted not in (rendered["status"], rendered["conclusion"]):
                continue
            found.append(rendered)
        return {"total_count": len(found), "workflow_runs": page(found, query)}

    def get_run(self, run_id: str) -> JSON:
        """GET /actions/runs/{id}."""
        run = self.data["runs"].get(run_id)
        if run is None:
            raise not_found()
        return self.render_run(run)
