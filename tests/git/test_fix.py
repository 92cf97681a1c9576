"""Branch and fix commit: manual edits, cherry-picks and patches, on real repositories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import ExitCode, InvalidInput, UsageError
from hotfix_fsm.reporting.postmortem import postmortem_markdown
from tests.helpers_git import GitWorld, git, make_config, make_engine

Engines = Callable[..., HotfixEngine]
DESCRIPTION = "Fix token expiry check\n\nTokens past their expiry were accepted."


@pytest.fixture
def unchecked(world: GitWorld, db: Path) -> Iterator[HotfixEngine]:
    """An engine whose start records the fix without checking it (as hotfixes recorded
    before `start` checked fixes were): the commit phase must still cope on its own."""
    engine = make_engine(
        db, make_config(), preflight=lambda _s, _c, _i: {"base_sha": world.base_sha}
    )
    yield engine
    engine.close()


def assert_nothing_changed(world: GitWorld, engine: HotfixEngine, head: str) -> None:
    """Nothing recorded, no branch, the work tree and HEAD as they were."""
    assert engine.list(include_finished=True) == []
    assert git(world.work, "for-each-ref", "--format=%(refname)", "refs/heads/hotfix/") == ""
    assert world.remote_branches() == []
    assert world.work_status() == ""
    assert git(world.work, "rev-parse", "HEAD") == head
    assert git(world.work, "symbolic-ref", "--short", "HEAD") == "main"


def fix_commits_on_remote(world: GitWorld, branch: str) -> list[str]:
    out = git(world.origin, "rev-list", f"{world.base_sha}..refs/heads/{branch}")
    return out.splitlines()


def test_branch_is_cut_from_the_recorded_remote_production_head(
    world: GitWorld, engine: HotfixEngine
) -> None:
    hotfix = engine.start("INC-1", DESCRIPTION, repo=world.work)
    assert hotfix.context["base_sha"] == world.base_sha
    # Production moves after the start: the branch still starts at the recorded base.
    world.push_as_someone_else("production", {"other.txt": "later\n"}, "later production")
    outcome = engine.drive(hotfix.id)
    assert outcome.state == "awaiting_fix"
    context = engine.get(hotfix.id).context
    branch = f"hotfix/INC-1-{context['timestamp']}"
    assert context["branch"] == branch
    assert context["base_sha"] == world.base_sha
    assert git(world.work, "symbolic-ref", "--short", "HEAD") == branch
    assert git(world.work, "rev-parse", "HEAD") == world.base_sha
    assert world.remote_branches() == []  # nothing is pushed before the gates pass


def test_custom_branch_pattern(world: GitWorld, engines: Engines) -> None:
    config = make_config()
    config.branch_pattern = "fixes/{issue}/{timestamp}"
    engine = engines(config)
    hotfix = engine.start("INC-7", DESCRIPTION, repo=world.work)
    engine.drive(hotfix.id)
    assert engine.get(hotfix.id).context["branch"] == (f"fixes/INC-7/{hotfix.context['timestamp']}")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("hotfix/{issue}..{timestamp}", "not a valid git ref"),
        ("hotfix/{issue}-{user}", "unknown placeholder"),
        ("hotfix/{issue}.lock", "'.lock'"),
    ],
)
def test_invalid_branch_pattern_fails_clearly(
    world: GitWorld, engines: Engines, pattern: str, expected: str
) -> None:
    config = make_config()
    config.branch_pattern = pattern
    engine = engines(config)
    # Refused before anything is recorded or changed (the dry run checks the same).
    with pytest.raises(UsageError) as refused:
        engine.start("INC-1", DESCRIPTION, repo=world.work)
    assert expected in str(refused.value)
    assert "branch_pattern" in str(refused.value)
    assert engine.list(include_finished=True) == []
    assert git(world.work, "branch", "--list", "hotfix/*") == ""


def test_manual_fix_pauses_until_the_work_tree_changes(
    world: GitWorld, engine: HotfixEngine
) -> None:
    hotfix = engine.start("INC-1", DESCRIPTION, repo=world.work)
    outcome = engine.drive(hotfix.id)
    assert outcome.state == "awaiting_fix"
    assert outcome.paused_gate == "fix"
    assert outcome.exit_code == ExitCode.PAUSED
    assert str(world.work.resolve()) in (outcome.paused_reason or "")
    assert f"hotfix resume {hotfix.id}" in (outcome.paused_reason or "")
    # Resuming with no change pauses again and says so.
    again = engine.drive(hotfix.id)
    assert again.paused_gate == "fix"
    assert "no change yet" in (again.paused_reason or "")
    # Approving the fix gate without a change does not let an empty fix through.
    engine.approve(hotfix.id, "fix", by="alice")
    approved = engine.drive(hotfix.id)
    assert "although the fix gate was approved" in (approved.paused_reason or "")
    assert world.remote_branches() == []
    # Now the engineer edits: a changed file, a new file and an ignored file.
    world.write("app.py", "def check(token):\n    return bool(token) and not token.expired\n")
    world.write("tests/test_expiry.py", "def test_expiry():\n    assert True\n")
    world.write("debug.log", "never committed\n")
    engine.approve(hotfix.id, "fix", by="alice")
    done = engine.drive(hotfix.id)
    assert done.state == "pushed"
    context = engine.get(hotfix.id).context
    assert context["fix_mode"] == "manual"
    assert context["fix_approval"]["by"] == "alice"
    files = git(world.work, "show", "--name-only", "--format=", context["fix_sha"]).splitlines()
    assert sorted(files) == ["app.py", "tests/test_expiry.py"]
    assert "app.py" in context["diffstat"]
    assert [c["sha"] for c in context["fix_commits"]] == [context["fix_sha"]]
    assert fix_commits_on_remote(world, context["branch"]) == [context["fix_sha"]]


def _commit_as(world: GitWorld, who: str, email: str, message: str) -> str:
    git(world.work, "commit", "--quiet", f"--author={who} <{email}>", "-am", message)
    return git(world.work, "rev-parse", "HEAD")


def test_commits_the_engineer_made_are_kept_as_they_are(
    world: GitWorld, engine: HotfixEngine
) -> None:
    hotfix = engine.start("INC-1", DESCRIPTION, repo=world.work)
    engine.drive(hotfix.id)
    world.write("app.py", "first attempt\n")
    first = _commit_as(world, "Ada Lovelace", "ada@example.org", "wip 1")
    world.write("app.py", "second attempt\n")
    second = _commit_as(world, "Ada Lovelace", "ada@example.org", "Check the expiry too")
    assert engine.drive(hotfix.id).state == "pushed"
    context = engine.get(hotfix.id).context
    # Not rewritten: the same shas, pushed as they are; the tool made no commit of its own.
    assert context["fix_sha"] == second
    assert fix_commits_on_remote(world, context["branch"]) == [second, first]
    assert git(world.origin, "log", "-1", "--format=%an <%ae>|%s", second) == (
        "Ada Lovelace <ada@example.org>|Check the expiry too"
    )
    assert "squashed" not in context
    kept = [(c["sha"], c["author"], c["subject"]) for c in context["kept_commits"]]
    assert kept == [
        (first, "Ada Lovelace <ada@example.org>", "wip 1"),
        (second, "Ada Lovelace <ada@example.org>", "Check the expiry too"),
    ]
    assert context["fix_commits"] == context["kept_commits"]
    notes = [e.payload for e in engine.journal(hotfix.id) if e.kind == "note"]
    assert any("kept as they are" in str(n.get("message")) for n in notes)


def test_a_commit_plus_uncommitted_changes_keeps_the_commit_and_adds_the_tools_own(
    world: GitWorld, engine: HotfixEngine
) -> None:
    hotfix = engine.start("INC-1", DESCRIPTION, repo=world.work)
    engine.drive(hotfix.id)
    world.write("app.py", "def check(token):\n    return bool(token)\n")
    mine = _commit_as(world, "Grace Hopper", "grace@example.org", "Refuse empty tokens")
    world.write("config.txt", "timeout=20\n")  # left uncommitted: the tool commits it
    assert engine.drive(hotfix.id).state == "pushed"
    context = engine.get(hotfix.id).context
    fix = context["fix_sha"]
    assert fix != mine
    assert git(world.work, "rev-parse", f"{fix}^") == mine  # on top, the person's commit intact
    assert fix_commits_on_remote(world, context["branch"]) == [fix, mine]
    assert git(world.work, "show", "--name-only", "--format=", fix) == "config.txt"
    trailers = git(world.work, "log", "-1", "--format=%(trailers:key=Hotfix-Id,valueonly)", fix)
    assert trailers.strip() == hotfix.id
    commits = context["fix_commits"]
    assert [c["sha"] for c in commits] == [mine, fix]
    assert commits[0]["author"] == "Grace Hopper <grace@example.org>"
    assert not commits[0].get("by_tool")
    assert commits[1]["by_tool"] is True
    assert commits[1]["author"] == git(world.work, "log", "-1", "--format=%an <%ae>", fix)
    assert [c["sha"] for c in context["kept_commits"]] == [mine]
    text = postmortem_markdown(engine.get(hotfix.id), engine.journal(hotfix.id))
    assert f"`{mine[:12]}` Refuse empty tokens — by Grace Hopper <grace@example.org>" in text
    assert f"`{fix[:12]}` HOTFIX(INC-1): Fix token expiry check — made by hotfix_fsm" in text


def test_cherry_pick_from_main(world: GitWorld, engine: HotfixEngine) -> None:
    hotfix = engine.start(
        "INC-1", DESCRIPTION, repo=world.work, cherry_pick=[world.shas["fix_on_main"][:12]]
    )
    assert engine.drive(hotfix.id).state == "pushed"
    context = engine.get(hotfix.id).context
    assert context["fix_mode"] == "cherry-pick"
    assert context["cherry_picked"] == [
        {"sha": world.shas["fix_on_main"], "subject": "Fix token expiry check"}
    ]
    fix = context["fix_sha"]
    assert git(world.work, "show", f"{fix}:app.py") == git(
        world.seed, "show", f"{world.shas['fix_on_main']}:app.py"
    )
    # Only the fix came along: main's feature commit did not.
    assert git(world.work, "show", "--name-only", "--format=", fix) == "app.py"
    assert world.work_status() == ""


def test_a_cherry_pick_that_conflicts_with_production_is_refused_at_start(
    world: GitWorld, engine: HotfixEngine
) -> None:
    head = git(world.work, "rev-parse", "HEAD")
    with pytest.raises(InvalidInput, match=r"conflicts in config\.txt") as refused:
        engine.start(
            "INC-1",
            DESCRIPTION,
            repo=world.work,
            cherry_pick=[world.shas["fix_on_main"], world.shas["config_on_main"]],
        )
    assert world.shas["config_on_main"][:12] in refused.value.message
    assert "start without --cherry-pick" in (refused.value.hint or "")
    assert refused.value.exit_code == ExitCode.USAGE
    assert_nothing_changed(world, engine, head)


def test_cherry_pick_conflict_pauses_cleanly_then_accepts_a_hand_resolution(
    world: GitWorld, unchecked: HotfixEngine
) -> None:
    engine = unchecked
    hotfix = engine.start(
        "INC-1",
        DESCRIPTION,
        repo=world.work,
        cherry_pick=[world.shas["fix_on_main"], world.shas["config_on_main"]],
    )
    outcome = engine.drive(hotfix.id)
    assert outcome.state == "awaiting_fix"
    assert outcome.paused_gate == "fix"
    assert "conflicts in config.txt" in (outcome.paused_reason or "")
    assert world.shas["config_on_main"][:12] in (outcome.paused_reason or "")
    # The half-applied pick was undone: a clean tree at the base, nothing in progress.
    assert world.work_status() == ""
    assert git(world.work, "rev-parse", "HEAD") == world.base_sha
    # The engineer resolves by hand and resumes.
    world.write("app.py", "def check(token):\n    return bool(token) and not token.expired\n")
    world.write("config.txt", "timeout=30\n")
    assert engine.drive(hotfix.id).state == "pushed"
    context = engine.get(hotfix.id).context
    assert context["resolved_by_hand"] is True
    assert git(world.work, "show", f"{context['fix_sha']}:config.txt") == "timeout=30"


def test_cherry_pick_of_an_unknown_commit_is_refused_at_start(
    world: GitWorld, engine: HotfixEngine
) -> None:
    head = git(world.work, "rev-parse", "HEAD")
    with pytest.raises(InvalidInput, match="is not a commit"):
        engine.start("INC-1", DESCRIPTION, repo=world.work, cherry_pick=["deadbeef" * 5])
    assert_nothing_changed(world, engine, head)


def test_cherry_pick_of_an_unknown_commit_recorded_unchecked_fails_clearly(
    world: GitWorld, unchecked: HotfixEngine
) -> None:
    hotfix = unchecked.start("INC-1", DESCRIPTION, repo=world.work, cherry_pick=["deadbeef" * 5])
    outcome = unchecked.drive(hotfix.id)
    assert outcome.state == "failed"
    assert "is not a commit" in (outcome.error or "")
    assert "What to do" in (outcome.error or "")


def test_cherry_pick_already_in_production_is_refused_at_start(
    world: GitWorld, engine: HotfixEngine
) -> None:
    head = git(world.work, "rev-parse", "HEAD")
    with pytest.raises(InvalidInput, match="already in the production head"):
        engine.start("INC-1", DESCRIPTION, repo=world.work, cherry_pick=[world.shas["initial"]])
    assert_nothing_changed(world, engine, head)


def test_cherry_pick_already_in_production_changes_nothing(
    world: GitWorld, unchecked: HotfixEngine
) -> None:
    hotfix = unchecked.start(
        "INC-1", DESCRIPTION, repo=world.work, cherry_pick=[world.shas["initial"]]
    )
    outcome = unchecked.drive(hotfix.id)
    assert outcome.state == "failed"
    assert "already in production" in (outcome.error or "")


def test_a_symbolic_cherry_pick_is_recorded_as_the_commit_it_named_at_start(
    world: GitWorld, engine: HotfixEngine
) -> None:
    """`--cherry-pick HEAD` means the commit checked out when the hotfix starts, not the
    hotfix branch's head once it is checked out."""
    git(world.work, "reset", "--quiet", "--hard", world.shas["fix_on_main"])
    hotfix = engine.start("INC-1", DESCRIPTION, repo=world.work, cherry_pick=["HEAD"])
    assert hotfix.options["cherry_pick"] == [world.shas["fix_on_main"]]
    assert engine.drive(hotfix.id).state == "pushed"
    picked = engine.get(hotfix.id).context["cherry_picked"]
    assert [p["sha"] for p in picked] == [world.shas["fix_on_main"]]


def make_patch(world: GitWorld, tmp_path: Path, sha: str) -> Path:
    patch = tmp_path / "fix.patch"
    patch.write_text(git(world.seed, "format-patch", "--stdout", "-1", sha) + "\n")
    return patch


def test_patch_file_is_applied(world: GitWorld, engine: HotfixEngine, tmp_path: Path) -> None:
    patch = make_patch(world, tmp_path, world.shas["fix_on_main"])
    hotfix = engine.start("INC-1", DESCRIPTION, repo=world.work, patch=patch)
    assert engine.drive(hotfix.id).state == "pushed"
    context = engine.get(hotfix.id).context
    assert context["fix_mode"] == "patch"
    assert "app.py" in context["diffstat"]


def test_patch_that_does_not_apply_is_refused_at_start(
    world: GitWorld, engine: HotfixEngine, tmp_path: Path
) -> None:
    head = git(world.work, "rev-parse", "HEAD")
    patch = make_patch(world, tmp_path, world.shas["config_on_main"])
    with pytest.raises(InvalidInput, match="does not apply to the production head"):
        engine.start("INC-1", DESCRIPTION, repo=world.work, patch=patch)
    assert_nothing_changed(world, engine, head)


def test_a_patch_made_against_main_applies_to_production_although_main_differs(
    world: GitWorld, engine: HotfixEngine, tmp_path: Path
) -> None:
    """The check is against the production head, not the work tree checked out: main has
    the fix already, so the patch would not apply there."""
    patch = make_patch(world, tmp_path, world.shas["fix_on_main"])
    with pytest.raises(AssertionError, match="patch does not apply"):
        git(world.work, "apply", "--check", str(patch))
    hotfix = engine.start("INC-1", DESCRIPTION, repo=world.work, patch=patch)
    assert hotfix.options["fix_mode"] == "patch"
    assert world.work_status() == ""


def test_patch_that_does_not_apply_pauses(
    world: GitWorld, unchecked: HotfixEngine, tmp_path: Path
) -> None:
    engine = unchecked
    patch = make_patch(world, tmp_path, world.shas["config_on_main"])
    hotfix = engine.start("INC-1", DESCRIPTION, repo=world.work, patch=patch)
    outcome = engine.drive(hotfix.id)
    assert outcome.paused_gate == "fix"
    assert "does not apply" in (outcome.paused_reason or "")
    assert world.work_status() == ""


def test_commit_message_and_trailers(world: GitWorld, engine: HotfixEngine) -> None:
    hotfix = engine.start(
        "INC-1", DESCRIPTION, repo=world.work, cherry_pick=[world.shas["fix_on_main"]]
    )
    engine.drive(hotfix.id)
    sha = engine.get(hotfix.id).context["fix_sha"]
    message = git(world.work, "log", "-1", "--format=%B", sha)
    assert message == (
        f"HOTFIX(INC-1): Fix token expiry check\n\n{DESCRIPTION}\n\n"
        f"Hotfix-Id: {hotfix.id}\nHotfix-Issue: INC-1"
    )
    trailers = git(world.work, "log", "-1", "--format=%(trailers:only,unfold)", sha)
    assert trailers.splitlines() == [f"Hotfix-Id: {hotfix.id}", "Hotfix-Issue: INC-1"]


def test_started_from_a_subdirectory_the_whole_work_tree_is_used(
    world: GitWorld, engine: HotfixEngine
) -> None:
    subdir = world.work / "ignored" / "deep"
    subdir.mkdir(parents=True)
    hotfix = engine.start("INC-1", DESCRIPTION, repo=subdir)
    outcome = engine.drive(hotfix.id)
    assert str(world.work.resolve()) in (outcome.paused_reason or "")
    world.write("app.py", "fixed at the top of the work tree\n")
    assert engine.drive(hotfix.id).state == "pushed"
    sha = engine.get(hotfix.id).context["fix_sha"]
    assert git(world.work, "show", "--name-only", "--format=", sha) == "app.py"


@pytest.mark.parametrize("ignored", [False, True], ids=["untracked", "ignored"])
def test_the_tools_own_config_never_counts_as_the_fix(
    world: GitWorld, engine: HotfixEngine, ignored: bool
) -> None:
    """An untracked (or ignored) hotfix.toml is no change of the work tree: the manual fix
    still waits for one, and the fix commit never carries the file."""
    world.write("hotfix.toml", '[deploy]\napproval = "manual"\n')
    if ignored:
        with (world.work / ".git" / "info" / "exclude").open("a", encoding="utf-8") as f:
            f.write("hotfix.toml\n")
    hotfix = engine.start("INC-1", DESCRIPTION, repo=world.work)
    outcome = engine.drive(hotfix.id)
    assert outcome.paused_gate == "fix"
    assert "has no change yet" in (outcome.paused_reason or "")
    world.write("app.py", "fixed\n")
    world.write("hotfix-notes.toml", "another untracked file is part of the fix\n")
    assert engine.drive(hotfix.id).state == "pushed"
    sha = engine.get(hotfix.id).context["fix_sha"]
    files = git(world.work, "show", "--name-only", "--format=", sha).splitlines()
    assert sorted(files) == ["app.py", "hotfix-notes.toml"]
    assert world.work_status() == ("" if ignored else "?? hotfix.toml")


def test_an_approval_comment_is_journaled_checked_and_masked(
    world: GitWorld, engine: HotfixEngine
) -> None:
    hotfix = engine.start("INC-1", DESCRIPTION, repo=world.work)
    assert engine.drive(hotfix.id).paused_gate == "fix"
    with pytest.raises(InvalidInput, match="too long"):
        engine.approve(hotfix.id, "fix", by="alice", comment="x" * 5000)
    assert not [e for e in engine.journal(hotfix.id) if e.kind == "approval"]
    token = "ghp_" + "A1b2C3d4E5f6" * 3
    entry = engine.approve(hotfix.id, "fix", by="alice", comment=f"paired with bob {token}")
    assert entry.payload["comment"].startswith("paired with bob ")
    assert token not in entry.payload["comment"]
    blank = engine.approve(hotfix.id, "fix", by="alice", comment="   ")
    assert "comment" not in blank.payload
