#!/usr/bin/env python3
"""Refresh tests/openapi/: the part of GitHub's official OpenAPI description hotfix-fsm uses.

Fetches the npm package ``@octokit/openapi`` (GitHub's description from
github/rest-api-description, as Octokit publishes it) with ``npm pack``, takes
``generated/api.github.com.json`` and keeps only the operations in ``OPERATIONS`` — every
operation the client calls and the rehearsal GitHub serves — plus every component they
reference, transitively (schemas, responses, parameters, headers, examples). The package's
LICENSE is copied beside it and SOURCE.md notes the version and the tarball's integrity.

Run it from the repository root; it needs npm and network access to the npm registry:

    python scripts/refresh-github-openapi.py                 # the pinned VERSION
    python scripts/refresh-github-openapi.py --version 23.1.0  # move to another release

The output is deterministic (sorted keys), so re-running with the same version changes
nothing. A new operation the client or the rehearsal GitHub needs is one more line in
``OPERATIONS``; tests/github/test_openapi_conformance.py fails until every rehearsal route
has its operation here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "@octokit/openapi"
VERSION = "23.0.2"
DESCRIPTION = "package/generated/api.github.com.json"
OUT = Path(__file__).resolve().parent.parent / "tests" / "openapi"

# operationIds: what hotfix_fsm/adapters/github*.py calls and hotfix_fsm/sandbox serves.
OPERATIONS = (
    "actions/create-workflow-dispatch",
    "actions/get-pending-deployments-for-run",
    "actions/get-reviews-for-run",
    "actions/get-workflow",
    "actions/get-workflow-run",
    "actions/list-jobs-for-workflow-run",
    "actions/list-workflow-runs",
    "actions/list-workflow-runs-for-repo",
    "actions/review-pending-deployments-for-run",
    "checks/list-for-ref",
    "git/delete-ref",
    "git/get-ref",
    "issues/add-labels",
    "issues/create-label",
    "issues/get-label",
    "issues/list-labels-on-issue",
    "pulls/check-if-merged",
    "pulls/create",
    "pulls/get",
    "pulls/list",
    "pulls/list-commits",
    "pulls/list-reviews",
    "pulls/merge",
    "pulls/update",
    "rate-limit/get",
    "repos/get",
    "repos/get-branch",
    "repos/get-branch-protection",
    "repos/get-branch-rules",
    "repos/get-combined-status-for-ref",
    "users/get-authenticated",
)
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def fetch(version: str, workdir: Path) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    """``npm pack`` the package; its description, LICENSE and npm's record of the tarball."""
    proc = subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{version}", "--json", "--pack-destination", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
        cwd=workdir,
    )
    if proc.returncode != 0:
        sys.exit(f"npm pack {PACKAGE}@{version} failed:\n{proc.stderr.strip()}")
    record = json.loads(proc.stdout)[0]
    with tarfile.open(workdir / record["filename"]) as tar:
        described = tar.extractfile(DESCRIPTION)
        licence = tar.extractfile("package/LICENSE")
        if described is None or licence is None:
            sys.exit(f"{PACKAGE}@{version} has no {DESCRIPTION} or LICENSE")
        return json.load(described), licence.read(), record


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def extract(full: dict[str, Any], operations: tuple[str, ...]) -> dict[str, Any]:
    """The description restricted to ``operations`` and what they reference."""
    paths: dict[str, Any] = {}
    wanted = set(operations)
    for path, item in full["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is not None and op.get("operationId") in wanted:
                kept = paths.setdefault(path, {k: v for k, v in item.items() if k not in METHODS})
                kept[method] = op
                wanted.discard(op["operationId"])
    if wanted:
        sys.exit(f"operations not in the description: {', '.join(sorted(wanted))}")
    components: dict[str, dict[str, Any]] = {}
    pending = _refs(paths)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, kind, name = ref.removeprefix("#/").split("/", 2)
        if _ != "components":
            sys.exit(f"unexpected reference {ref}")
        target = full["components"][kind][name]
        components.setdefault(kind, {})[name] = target
        pending |= _refs(target) - seen
    return {
        "openapi": full["openapi"],
        "info": full["info"],
        "servers": full.get("servers", []),
        "paths": paths,
        "components": components,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--version", default=VERSION, help=f"{PACKAGE} version ({VERSION})")
    args = parser.parse_args()
    if shutil.which("npm") is None:
        sys.exit("npm is needed: install Node.js (https://nodejs.org)")
    with tempfile.TemporaryDirectory(prefix="github-openapi-") as tmp:
        full, licence, record = fetch(args.version, Path(tmp))
    subset = extract(full, OPERATIONS)
    OUT.mkdir(parents=True, exist_ok=True)
    text = json.dumps(subset, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (OUT / "api.github.com.json").write_text(text, encoding="utf-8")
    (OUT / "LICENSE").write_bytes(licence)
    counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(subset["components"].items()))
    (OUT / "SOURCE.md").write_text(
        f"""# GitHub's REST API description (the part hotfix-fsm uses)

`api.github.com.json` is an excerpt of `generated/api.github.com.json` from the npm package
`{PACKAGE}` version **{record["version"]}** (GitHub's official description from
github/rest-api-description, OpenAPI {subset["openapi"]}, published by Octokit under the MIT
licence in `LICENSE`), unchanged but for what was left out: it keeps
{len(OPERATIONS)} operations and the components they reference ({counts}).

- tarball: `{record["filename"]}`, integrity `{record["integrity"]}`
- regenerate: `python scripts/refresh-github-openapi.py` (the operations are listed there)

The tests validate every answer of the rehearsal GitHub against it (tests/openapi_check.py).
""",
        encoding="utf-8",
    )
    print(f"{OUT}: {len(OPERATIONS)} operations from {PACKAGE}@{record['version']}; {counts}")


if __name__ == "__main__":
    main()
