"""The pure analysis: conditions, judging one measurement, folding a window, the schedule."""

from __future__ import annotations

import math
import operator
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotfix_fsm.core.analysis import (
    Condition,
    ConditionError,
    Rule,
    Tally,
    Window,
    analyse,
    judge,
    metric_phase,
    parse_condition,
    tally,
)

OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@pytest.mark.parametrize(
    ("text", "op", "value"),
    [
        ("< 5", "<", 5.0),
        (">=99", ">=", 99.0),
        ("  <= 0.5 ", "<=", 0.5),
        ("== healthy", "==", "healthy"),
        ('== "ok"', "==", "ok"),
        ("= 200", "==", 200.0),
        ("!= -1e3", "!=", -1000.0),
    ],
)
def test_parse_condition(text: str, op: str, value: float | str) -> None:
    assert parse_condition(text) == Condition(op, value)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_condition_is_none(text: str) -> None:
    assert parse_condition(text) is None


@pytest.mark.parametrize("text", ["5", "<", "~ 5", "< healthy", ">= nan text", "=> 5"])
def test_bad_conditions_are_refused_with_the_text(text: str) -> None:
    with pytest.raises(ConditionError, match="condition"):
        parse_condition(text)


def test_condition_holds_numbers_text_and_bools() -> None:
    assert parse_condition("< 5").holds(4.9) is True  # type: ignore[union-attr]
    assert parse_condition("< 5").holds("4") is True  # type: ignore[union-attr]
    assert parse_condition("< 5").holds(5) is False  # type: ignore[union-attr]
    assert parse_condition("< 5").holds("fast") is None  # type: ignore[union-attr]
    assert parse_condition("< 5").holds(True) is None  # type: ignore[union-attr]
    assert parse_condition("< 5").holds(math.nan) is None  # type: ignore[union-attr]
    assert parse_condition("== healthy").holds("healthy") is True  # type: ignore[union-attr]
    assert parse_condition("!= healthy").holds("sick") is True  # type: ignore[union-attr]
    assert parse_condition("== true").holds(True) is True  # type: ignore[union-attr]
    assert parse_condition("== healthy").holds(None) is None  # type: ignore[union-attr]
    assert str(parse_condition(">= 99")) == ">= 99"
    assert str(parse_condition("< 0.5")) == "< 0.5"


@given(
    op=st.sampled_from(sorted(OPS)),
    threshold=st.floats(allow_nan=False, allow_infinity=False, width=32),
    value=st.floats(allow_nan=False, allow_infinity=False, width=32),
)
def test_numeric_conditions_agree_with_python(op: str, threshold: float, value: float) -> None:
    condition = parse_condition(f"{op} {threshold!r}")
    assert condition is not None
    assert condition.holds(value) is OPS[op](value, threshold)
    assert parse_condition(str(condition)) == condition


def rule(**kw: object) -> Rule:
    base = {
        "name": "m",
        "success": "",
        "failure": "",
        "failure_limit": 0,
        "consecutive_error_limit": 4,
        "missing": "error",
    }
    base.update(kw)
    return Rule.from_config(SimpleNamespace(**base))


@pytest.mark.parametrize(
    ("success", "failure", "value", "verdict"),
    [
        ("< 5", ">= 10", 1, "success"),
        ("< 5", ">= 10", 12, "failure"),
        ("< 5", ">= 10", 7, "inconclusive"),
        ("< 5", "", 7, "failure"),
        ("< 5", "", 1, "success"),
        ("", ">= 10", 12, "failure"),
        ("", ">= 10", 1, "success"),
        ("", "", 123, "success"),
        ("== healthy", "", "healthy", "success"),
        ("== healthy", "", "unhealthy", "failure"),
    ],
)
def test_judge_follows_the_table(success: str, failure: str, value: object, verdict: str) -> None:
    assert judge(rule(success=success, failure=failure), value) == verdict


@pytest.mark.parametrize(
    ("missing", "verdict"), [("error", "error"), ("failure", "failure"), ("ignore", "ignored")]
)
@pytest.mark.parametrize("value", [None, math.nan, "not a number"])
def test_missing_nan_and_uncomparable_follow_the_policy(
    missing: str, verdict: str, value: object
) -> None:
    assert judge(rule(success="< 5", missing=missing), value) == verdict


def test_a_measurement_error_is_an_error_whatever_the_policy() -> None:
    assert judge(rule(success="< 5", missing="ignore"), 1, error="timeout") == "error"


def test_rule_from_config_refuses_bad_conditions_and_policies() -> None:
    with pytest.raises(ConditionError, match="metric m"):
        rule(success="<< 5")
    with pytest.raises(ConditionError, match="missing"):
        rule(missing="shrug")


def test_tally_counts_and_consecutive_errors() -> None:
    counts = tally(["error", "error", "ignored", "error", "success", "error"])
    assert counts.error == 4
    assert counts.ignored == 1
    assert counts.max_consecutive_errors == 3  # ignored does not break a run of errors
    assert counts.consecutive_errors == 1
    assert counts.counted == 1
    with pytest.raises(ValueError, match="unknown verdict"):
        Tally().add("maybe")


def test_metric_phase_limits() -> None:
    r = rule(success="< 5", failure_limit=1, consecutive_error_limit=2)
    assert metric_phase(r, tally(["failure"]), finished=False) == "running"
    assert metric_phase(r, tally(["failure", "failure"]), finished=False) == "failed"
    assert metric_phase(r, tally(["error"] * 2), finished=False) == "running"
    assert metric_phase(r, tally(["error"] * 3), finished=False) == "error"
    assert metric_phase(r, tally(["error", "error", "success", "error"]), finished=True) == (
        "successful"
    )
    assert metric_phase(r, tally(["inconclusive", "success"]), finished=True) == "inconclusive"
    assert metric_phase(r, tally(["ignored"]), finished=True) == "inconclusive"
    assert metric_phase(r, tally([]), finished=True) == "inconclusive"


def test_analyse_takes_the_worst_metric_and_explains_it() -> None:
    rules = [rule(name="a", success="< 5"), rule(name="b", success="< 5", failure_limit=1)]
    rounds = [{"a": "success", "b": "failure"}, {"a": "success", "b": "success"}]
    result = analyse(rules, rounds, finished=True)
    assert result.verdict == "successful"
    assert result.rounds == 2
    rounds.append({"a": "success", "b": "failure"})
    result = analyse(rules, rounds, finished=False)
    assert result.verdict == "failed"
    assert result.decided
    assert result.culprits() == ["b"]
    assert "b: 2 failed measurements (limit 1), failure condition >= 5" not in result.reason(
        {r.name: r for r in rules}
    )
    assert "b: 2 failed measurements (limit 1)" in result.reason({r.name: r for r in rules})
    summary = result.summary()
    assert summary["metrics"]["b"]["failed"] == 2
    assert summary["metrics"]["a"]["phase"] == "running"


def test_analyse_inconclusive_and_error_reasons() -> None:
    rules = [
        rule(name="a", success="< 5", failure=">= 10"),
        rule(name="b", missing="ignore", success="< 1"),
    ]
    result = analyse(rules, [{"a": "inconclusive", "b": "ignored"}], finished=True)
    assert result.verdict == "inconclusive"
    assert result.reason() == "a: 1 inconclusive measurements; b: no usable measurement"
    errors = analyse([rule(name="c", consecutive_error_limit=0)], [{"c": "error"}], finished=False)
    assert errors.verdict == "error"
    assert "c: 1 measurement errors in a row" in errors.reason()


def test_a_metric_absent_from_a_round_is_not_counted() -> None:
    result = analyse([rule(name="a"), rule(name="b")], [{"a": "success"}], finished=True)
    assert result.tallies["b"].measurements == 0
    assert result.verdict == "inconclusive"


def test_no_rules_succeeds_at_the_end() -> None:
    assert analyse([], [], finished=False).verdict == "running"
    assert analyse([], [], finished=True).verdict == "successful"


verdicts = st.sampled_from(["success", "failure", "inconclusive", "error", "ignored"])


@given(
    seq=st.lists(verdicts, max_size=30),
    failure_limit=st.integers(0, 5),
    error_limit=st.integers(0, 5),
)
def test_the_verdict_is_decided_by_the_counts(
    seq: list[str], failure_limit: int, error_limit: int
) -> None:
    r = rule(success="< 5", failure_limit=failure_limit, consecutive_error_limit=error_limit)
    result = analyse([r], [{"m": v} for v in seq], finished=True)
    failures = seq.count("failure")
    longest = run = 0
    for v in seq:
        run = run + 1 if v == "error" else (run if v == "ignored" else 0)
        longest = max(longest, run)
    if failures > failure_limit:
        assert result.verdict == "failed"
    elif longest > error_limit:
        assert result.verdict == "error"
    elif "inconclusive" in seq or not {"success", "failure"} & set(seq):
        assert result.verdict == "inconclusive"
    else:
        assert result.verdict == "successful"


@given(prefix=st.lists(verdicts, max_size=20), suffix=st.lists(verdicts, max_size=20))
def test_an_early_decision_is_final(prefix: list[str], suffix: list[str]) -> None:
    """Once failed or error mid-window, more rounds never turn the verdict around."""
    r = rule(success="< 5", failure_limit=1, consecutive_error_limit=1)
    early = analyse([r], [{"m": v} for v in prefix], finished=False)
    later = analyse([r], [{"m": v} for v in prefix + suffix], finished=True)
    if early.decided:
        assert later.verdict in ("failed", "error")
        if early.verdict == "failed":
            assert later.verdict == "failed"


def test_window_slots_and_due_times() -> None:
    window = Window(started_at=100.0, initial_delay=5.0, interval=10.0, duration=300.0)
    assert window.slots == 31
    assert window.due(0) == 105.0
    assert window.ends_at == 405.0
    assert Window(started_at=0, interval=10, duration=0).slots == 1
    assert Window(started_at=0, interval=0, duration=50).slots == 1
    assert Window(started_at=0, interval=10, duration=300, count=4).slots == 4
    assert Window(started_at=0, interval=0.1, duration=0.3).slots == 4  # float-safe


def test_window_makes_up_rounds_missed_while_down() -> None:
    window = Window(started_at=0.0, interval=10.0, duration=100.0)
    assert window.next_round(-5.0, None) == 0  # early: wait for round 0
    assert window.next_round(3.0, 0) == 1
    assert window.next_round(12.0, 0) == 1  # round 1 is due and late by 2 s: take it
    assert window.next_round(47.0, 1) == 2  # rounds 2 and 3 were missed: made up, not skipped
    assert window.next_round(99.0, 9) == 10
    assert window.next_round(150.0, 10) is None  # every planned round measured: over
    assert window.next_round(150.0, 3) == 4  # late, but the window still needs its rounds
    # Made-up rounds keep the interval between measurements; on schedule nothing changes.
    assert window.due_after(2, 47.0) == 57.0
    assert window.due_after(2, 11.0) == 20.0
    assert window.due_after(0, None) == 0.0


@given(
    interval=st.floats(0.01, 100),
    duration=st.floats(0, 1000),
    count=st.integers(0, 50),
    now=st.floats(-100, 2000),
    last=st.one_of(st.none(), st.integers(0, 60)),
)
def test_next_round_never_repeats_or_leaves_the_window(
    interval: float, duration: float, count: int, now: float, last: int | None
) -> None:
    window = Window(started_at=0.0, interval=interval, duration=duration, count=count)
    k = window.next_round(now, last)
    if k is not None:
        assert 0 <= k < window.slots
        assert last is None or k > last
        assert window.due(k) <= max(now, window.due(0 if last is None else last + 1)) + 1e-6
