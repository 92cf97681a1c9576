"""Hostile input: refused clearly, or carried as data; nothing runs that was not configured."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hotfix_fsm.config import config_from_mapping
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import ConfigError, ExitCode, InvalidInput
from tests.helpers_git import GitWorld, build_git_world, git

Engines = Callable[..., HotfixEngine]

HOSTILE_ISSUES = [
    "..",
    "a..b",
    "@{",
    "x@{1}",
    ";rm -rf ~",
    "$(id)",
    "`id`",
    "INC 1",
    "INC-1\n",
    "INC\x07-1",
    "INC\x7f",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[1]",
    "a\\b",
    "INC-1.lock",
    "x" * 65,
    "-INC-1",
    ".INC-1",
    "",
    "INC/1",
    "INC-1.",
]


@pytest.mark.parametrize("issue", HOSTILE_ISSUES)
def test_hostile_issue_ids_are_refused_before_anything_happens(
    tmp_path: Path, engine: HotfixEngine, issue: str
) -> None:
    # The repository is not even a git work tree: the id is refused before git is touched.
    with pytest.raises(InvalidInput) as err:
        engine.start(issue, "Fix it", repo=tmp_path)
    assert err.value.exit_code == ExitCode.USAGE
    assert "issue id" in err.value.message
    assert engine.store.count() == 0


HOSTILE_DESCRIPTIONS = [
    'Fix "auth"; rm -rf / # `id` $(touch {marker}) && echo pwned | sh',
    "--amend\n-m evil\n# a line git would strip as a comment\n\n\nthree blank lines above",
    "Hotfix-Id: forged\nHotfix-Issue: forged",
    "Unicode ✓ — naïve café\ttab\r\ncarriage return",
    "'single' \"double\" \\backslash\\ ${HOME} %s %(trailers) {issue}",
]


@pytest.mark.parametrize("template", HOSTILE_DESCRIPTIONS)
def test_descriptions_land_verbatim_in_the_commit_message(
    world: GitWorld, engine: HotfixEngine, tmp_path: Path, template: str
) -> None:
    marker = tmp_path / "pwned"
    description = template.replace("{marker}", str(marker))
    hotfix = engine.start(
        "INC-1", description, repo=world.work, cherry_pick=[world.shas["fix_on_main"]]
    )
    assert engine.drive(hotfix.id).state == "pushed"
    sha = engine.get(hotfix.id).context["fix_sha"]
    raw = (
        subprocess.run(
            ["git", "cat-file", "commit", sha], cwd=world.work, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\n\n", 1)[1]
    )
    assert f"\n\n{description.strip(chr(10))}\n\nHotfix-Id: {hotfix.id}\n" in raw
    assert raw.startswith("HOTFIX(INC-1): ")
    trailers = git(world.work, "log", "-1", "--format=%(trailers:key=Hotfix-Id,valueonly)", sha)
    assert trailers == hotfix.id  # a forged trailer in the description is just text
    assert not marker.exists()


def test_a_forged_trailer_does_not_fool_the_probe(world: GitWorld, engine: HotfixEngine) -> None:
    description = f"Fix\n\nHotfix-Id: {'INC-2'}-forged"
    hotfix = engine.start(
        "INC-2", description, repo=world.work, cherry_pick=[world.shas["fix_on_main"]]
    )
    assert engine.drive(hotfix.id).state == "pushed"
    branch = engine.get(hotfix.id).context["branch"]
    log = git(
        world.work,
        "log",
        "--format=%(trailers:key=Hotfix-Id,valueonly)",
        f"{world.base_sha}..{branch}",
    )
    assert log.split() == [hotfix.id]


def test_gate_commands_must_be_argv_lists() -> None:
    with pytest.raises(ConfigError, match=r"gates.tests.command .* must be a list"):
        config_from_mapping({"gates": {"tests": {"command": "pytest; rm -rf /"}}}, "hotfix.toml")


def test_cherry_pick_references_that_look_like_options_are_refused(
    world: GitWorld, engine: HotfixEngine
) -> None:
    with pytest.raises(InvalidInput, match="not a commit reference"):
        engine.start("INC-1", "Fix", repo=world.work, cherry_pick=["--exec=touch /tmp/x"])


def test_a_cherry_pick_expression_is_never_run(
    world: GitWorld, engine: HotfixEngine, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(InvalidInput, match="is not a commit"):
        engine.start("INC-1", "Fix", repo=world.work, cherry_pick=[f"HEAD; touch {marker}"])
    assert engine.list(include_finished=True) == []
    assert not marker.exists()


def test_a_patch_escaping_the_work_tree_is_refused(
    world: GitWorld, engine: HotfixEngine, tmp_path: Path
) -> None:
    patch = tmp_path / "evil $(id) `id`.patch"
    patch.write_text(
        "diff --git a/../escaped.txt b/../escaped.txt\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/../escaped.txt\n@@ -0,0 +1 @@\n+gotcha\n"
    )
    with pytest.raises(InvalidInput, match="does not apply"):
        engine.start("INC-1", "Fix", repo=world.work, patch=patch)
    assert engine.list(include_finished=True) == []
    assert not (world.work.parent / "escaped.txt").exists()
    assert world.work_status() == ""


def test_paths_with_spaces_and_shell_characters(tmp_path: Path, engines: Engines) -> None:
    odd = build_git_world(tmp_path / "we ird $(id) `id` dir")
    engine = engines()
    hotfix = engine.start("INC-1", "Fix", repo=odd.work, cherry_pick=[odd.shas["fix_on_main"]])
    assert engine.drive(hotfix.id).state == "pushed"
    assert odd.remote_branches() == [engine.get(hotfix.id).context["branch"]]
    assert not (tmp_path / "uid=0(root)").exists()
