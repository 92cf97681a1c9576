"""A custom ``deploy`` phase plugged in with ``HotfixEngine(phases={"deploy": ...})``.

Some teams do not deploy through a GitHub Actions workflow. This deployer talks to the
production service's own control API instead (here: the rehearsal production app's
``/_control`` endpoint). It follows the phase contract:

* ``prepare`` returns what the intent row stores before the effect (the sha to deploy);
* ``run`` records the rollback target *before* the effect, performs ONE side effect (set
  the running version) and returns facts later phases read (``deployed_sha``, ...); it uses
  the shared HTTP session ``ctx.services.http``;
* ``probe`` looks at the world after a crash: if production already runs the sha, the
  deploy happened and is adopted; otherwise it did not and is redone.

Everything else (verify, monitor, rollback, merge, tag ...) stays the standard phases.

    python examples/custom_deployer.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from hotfix_fsm import BasePhase, HotfixEngine, PermanentError, PhaseContext, Probe, TransientError
from hotfix_fsm.sandbox import temporary_sandbox


class ControlApiDeployer(BasePhase):
    """Deploy the fix by telling the service which version to run."""

    name = "deploy"

    def __init__(self, control_url: str, health_url: str) -> None:
        self.control_url = control_url
        self.health_url = health_url

    def key(self, ctx: PhaseContext) -> str:
        return f"{ctx.hotfix.id}:deploy:{ctx.data['fix_sha']}"

    def prepare(self, ctx: PhaseContext) -> dict[str, Any]:
        return {"sha": ctx.data["fix_sha"]}

    def probe(self, ctx: PhaseContext) -> Probe:
        running = self._running_version(ctx)
        if running == ctx.intent.get("sha"):
            return Probe.done(self._facts(running))
        return Probe.not_done(f"production runs {running[:12]}")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        sha = str(ctx.data["fix_sha"])
        if "rollback_target" not in ctx.data:  # the rollback phases need it
            ctx.save(rollback_target=self._production_head(ctx))
        ctx.progress(f"deploying {sha[:12]} through {self.control_url}")
        try:
            resp = ctx.services.http.post(self.control_url, json={"version": sha}, timeout=10)
        except requests.RequestException as exc:
            raise TransientError(f"the control API is unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise PermanentError(f"the control API answered {resp.status_code}: {resp.text[:200]}")
        return self._facts(sha)

    def _facts(self, sha: str) -> dict[str, Any]:
        return {"deployed_sha": sha, "deploy_method": "control-api"}

    def _running_version(self, ctx: PhaseContext) -> str:
        try:
            resp = ctx.services.http.get(self.health_url, timeout=5)
            return str(resp.json().get("version", ""))
        except (requests.RequestException, ValueError) as exc:
            raise TransientError(f"cannot read the running version: {exc}") from exc

    @staticmethod
    def _production_head(ctx: PhaseContext) -> dict[str, Any]:
        branch = ctx.config.production_branch
        out = subprocess.run(
            ["git", "ls-remote", ctx.config.remote, f"refs/heads/{branch}"],
            cwd=ctx.hotfix.repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split()
        if not out:
            raise PermanentError(f"{ctx.config.remote} has no branch {branch}")
        return {"sha": out[0], "tag": None, "branch": branch}


def main() -> int:
    with temporary_sandbox(prefix="hotfix-deployer-example-") as sandbox:
        info = sandbox.info
        deployer = ControlApiDeployer(f"{info.production_url}/_control", info.health_url)
        with HotfixEngine(
            Path(info.root) / "hotfix.db", config_path=info.config, phases={"deploy": deployer}
        ) as engine:
            hotfix = engine.start(
                "OPS-7",
                "Fix token expiry check",
                repo=info.work,
                cherry_pick=[info.fix_sha],
                yes=True,
            )
            outcome = engine.drive(hotfix.id)
            final = engine.get(hotfix.id)
        effects = sandbox.effects()
        workflow_runs = [
            d for d in effects["dispatches"] if d["workflow"] == "deploy-production.yml"
        ]
        print(f"{hotfix.id}: {outcome.state}")
        print(
            f"production runs {sandbox.production.version[:12]} "
            f"(the fix is {str(final.context.get('fix_sha'))[:12]})"
        )
        print(f"deploy workflow dispatches: {len(workflow_runs)} (the custom deployer used none)")
        ok = (
            outcome.state == "done"
            and not workflow_runs
            and sandbox.production.version == final.context.get("fix_sha")
        )
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
