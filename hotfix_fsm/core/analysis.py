"""The analysis after a deploy, in the manner of progressive-delivery controllers. Pure.

A *condition* is a comparison written in configuration: ``"< 5"``, ``">= 99"``,
``"== healthy"``. Each measurement of a metric is *judged* against its success and failure
conditions into one verdict:

========================  =====================================================
success and failure set   failure holds → failure; success holds → success;
                          neither → inconclusive
only success set          holds → success, else failure
only failure set          holds → failure, else success
neither set               success (the metric is only recorded)
no value / NaN            the metric's ``missing`` policy: error | failure | ignore
could not measure         error
========================  =====================================================

The *analysis* folds the verdicts of a window of rounds, per metric:

* ``failed`` as soon as failed measurements exceed ``failure_limit``;
* ``error`` as soon as consecutive measurement errors exceed ``consecutive_error_limit``
  (a success or failure resets the run of errors; an ignored value does not);
* at the end of the window, ``inconclusive`` when any measurement was inconclusive or no
  measurement counted at all, else ``successful``.

The overall verdict is the worst metric phase: failed > error > inconclusive > successful,
and ``running`` while the window is open and nothing has decided it early.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["success", "failure", "inconclusive", "error", "ignored"]
Phase = Literal["running", "successful", "failed", "error", "inconclusive"]

VERDICTS: tuple[str, ...] = ("success", "failure", "inconclusive", "error", "ignored")
MISSING_POLICIES: tuple[str, ...] = ("error", "failure", "ignore")
# Worst first: the overall verdict is the first phase any metric is in.
SEVERITY: tuple[Phase, ...] = ("failed", "error", "inconclusive", "running", "successful")

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CONDITION = re.compile(r"^\s*(<=|>=|==|!=|<|>|=)\s*(.+?)\s*$")


class ConditionError(ValueError):
    """A condition string that cannot be parsed."""


@dataclass(frozen=True)
class Condition:
    """``<op> <value>``; ``value`` is a float for numeric conditions, else a string."""

    op: str
    value: float | str

    @property
    def numeric(self) -> bool:
        return isinstance(self.value, float)

    def holds(self, measured: Any) -> bool | None:
        """Whether the measured value satisfies the condition; None if not comparable."""
        if self.numeric:
            number = as_number(measured)
            if number is None:
                return None
            return bool(_OPS[self.op](number, self.value))
        if self.op not in ("==", "!="):
            return None
        if measured is None or (isinstance(measured, float) and math.isnan(measured)):
            return None
        return bool(_OPS[self.op](as_text(measured), self.value))

    def __str__(self) -> str:
        value = self.value
        if isinstance(value, float):
            text = repr(int(value)) if value.is_integer() else repr(value)
        else:
            text = value
        return f"{self.op} {text}"


def parse_condition(text: str) -> Condition | None:
    """Parse ``"< 5"``, ``">= 99.5"``, ``"== healthy"``, ``'== "ok"'``; empty → None.

    A lone ``=`` means ``==``. The value is numeric when it parses as a finite float;
    otherwise it is a string (quotes stripped) and only ``==``/``!=`` are allowed.
    """
    if not text or not text.strip():
        return None
    match = _CONDITION.match(text)
    if match is None:
        raise ConditionError(
            f"condition {text!r} is not '<op> <value>' with op one of < <= > >= == !="
        )
    op, raw = match.group(1), match.group(2)
    op = "==" if op == "=" else op
    number = _finite_float(raw)
    if number is not None:
        return Condition(op, number)
    if raw[0] in "<>=!":
        raise ConditionError(f"condition {text!r} has two operators")
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    if op not in ("==", "!="):
        raise ConditionError(f"condition {text!r} compares a text value with {op}; use == or !=")
    return Condition(op, raw)


def _finite_float(raw: str) -> float | None:
    try:
        number = float(raw)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def as_number(value: Any) -> float | None:
    """A finite float from a number or numeric text; None for NaN, missing or non-numeric."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Rule:
    """How one metric is judged and tallied (built from ``MetricConfig``)."""

    name: str
    success: Condition | None = None
    failure: Condition | None = None
    failure_limit: int = 0
    consecutive_error_limit: int = 4
    missing: str = "error"

    @classmethod
    def from_config(cls, metric: Any) -> Rule:
        """From a ``config.MetricConfig`` (or anything with the same attributes)."""
        if metric.missing not in MISSING_POLICIES:
            raise ConditionError(
                f"metric {metric.name}: missing = {metric.missing!r} is not one of "
                f"{', '.join(MISSING_POLICIES)}"
            )
        try:
            success = parse_condition(metric.success)
            failure = parse_condition(metric.failure)
        except ConditionError as exc:
            raise ConditionError(f"metric {metric.name}: {exc}") from None
        return cls(
            name=metric.name,
            success=success,
            failure=failure,
            failure_limit=int(metric.failure_limit),
            consecutive_error_limit=int(metric.consecutive_error_limit),
            missing=metric.missing,
        )


def judge(rule: Rule, value: Any, *, error: str | None = None) -> Verdict:
    """The verdict of one measurement of ``rule``'s metric (see the module table)."""
    if error is not None:
        return "error"
    if is_missing(value):
        return _missing(rule)
    failed = rule.failure.holds(value) if rule.failure else None
    passed = rule.success.holds(value) if rule.success else None
    if (rule.failure and failed is None) or (rule.success and passed is None):
        return _missing(rule)  # present but not comparable (text where a number is needed)
    if rule.failure and rule.success:
        if failed:
            return "failure"
        return "success" if passed else "inconclusive"
    if rule.success:
        return "success" if passed else "failure"
    if rule.failure:
        return "failure" if failed else "success"
    return "success"


def _missing(rule: Rule) -> Verdict:
    if rule.missing == "failure":
        return "failure"
    if rule.missing == "ignore":
        return "ignored"
    return "error"


@dataclass(frozen=True)
class Tally:
    """Counts of one metric's verdicts over a window."""

    measurements: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    error: int = 0
    ignored: int = 0
    consecutive_errors: int = 0
    max_consecutive_errors: int = 0

    def add(self, verdict: str) -> Tally:
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}")
        counts = {
            "success": "successful",
            "failure": "failed",
            "inconclusive": "inconclusive",
            "error": "error",
            "ignored": "ignored",
        }
        values = dict(self.__dict__)
        values["measurements"] += 1
        values[counts[verdict]] += 1
        if verdict == "error":
            values["consecutive_errors"] += 1
        elif verdict != "ignored":
            values["consecutive_errors"] = 0
        values["max_consecutive_errors"] = max(
            values["max_consecutive_errors"], values["consecutive_errors"]
        )
        return Tally(**values)

    @property
    def counted(self) -> int:
        """Measurements that produced a judgement (not errors, not ignored)."""
        return self.successful + self.failed + self.inconclusive

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def tally(verdicts: Iterable[str]) -> Tally:
    result = Tally()
    for verdict in verdicts:
        result = result.add(verdict)
    return result


def metric_phase(rule: Rule, counts: Tally, *, finished: bool) -> Phase:
    """Where one metric stands: failed/error decide early; the rest at the window's end."""
    if counts.failed > rule.failure_limit:
        return "failed"
    if counts.max_consecutive_errors > rule.consecutive_error_limit:
        return "error"
    if not finished:
        return "running"
    if counts.inconclusive > 0 or counts.counted == 0:
        return "inconclusive"
    return "successful"


@dataclass(frozen=True)
class Analysis:
    """The state of an analysis after some rounds."""

    verdict: Phase
    phases: dict[str, Phase] = field(default_factory=dict)
    tallies: dict[str, Tally] = field(default_factory=dict)
    rounds: int = 0

    @property
    def decided(self) -> bool:
        return self.verdict != "running"

    def culprits(self) -> list[str]:
        """The metrics in the phase that set the overall verdict."""
        return [name for name, phase in self.phases.items() if phase == self.verdict]

    def reason(self, rules: Mapping[str, Rule] | None = None) -> str:
        """One sentence: which metric decided and why."""
        if self.verdict == "successful":
            return f"every metric met its success condition over {self.rounds} rounds"
        if self.verdict == "running":
            return f"{self.rounds} rounds measured so far"
        parts = []
        for name in self.culprits():
            counts = self.tallies[name]
            rule = (rules or {}).get(name)
            if self.verdict == "failed":
                limit = f" (limit {rule.failure_limit})" if rule else ""
                cond = f", failure condition {rule.failure}" if rule and rule.failure else ""
                parts.append(f"{name}: {counts.failed} failed measurements{limit}{cond}")
            elif self.verdict == "error":
                limit = f" (limit {rule.consecutive_error_limit})" if rule else ""
                parts.append(
                    f"{name}: {counts.max_consecutive_errors} measurement errors in a row{limit}"
                )
            elif counts.counted == 0:
                parts.append(f"{name}: no usable measurement")
            else:
                parts.append(f"{name}: {counts.inconclusive} inconclusive measurements")
        return "; ".join(parts)

    def summary(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "rounds": self.rounds,
            "metrics": {
                name: {"phase": self.phases[name], **self.tallies[name].as_dict()}
                for name in self.phases
            },
        }


def analyse(
    rules: Sequence[Rule],
    rounds: Iterable[Mapping[str, str]],
    *,
    finished: bool,
) -> Analysis:
    """Fold rounds (metric name → verdict; a metric absent from a round was not measured)."""
    tallies = {rule.name: Tally() for rule in rules}
    count = 0
    for verdicts in rounds:
        count += 1
        for rule in rules:
            measured = verdicts.get(rule.name)
            if measured is not None:
                tallies[rule.name] = tallies[rule.name].add(measured)
    phases = {
        rule.name: metric_phase(rule, tallies[rule.name], finished=finished) for rule in rules
    }
    present = set(phases.values())
    verdict: Phase = next((p for p in SEVERITY if p in present), "successful")
    if not rules:
        verdict = "successful" if finished else "running"
    return Analysis(verdict=verdict, phases=phases, tallies=tallies, rounds=count)


@dataclass(frozen=True)
class Window:
    """When the rounds of a monitoring window fall, in wall-clock seconds.

    Round ``k`` is due at ``started_at + initial_delay + k * interval``. A window has
    ``count`` rounds when ``count > 0``, else one round per interval over ``duration``
    including both ends (a 300 s window every 10 s has 31 rounds, the last one at 300 s).
    After a crash the window goes on with the next round not yet measured: rounds that fell
    due while nobody measured are made up, one interval apart from the last measurement,
    so the verdict always rests on every planned round (a failing service cannot pass by
    having been unobserved).
    """

    started_at: float
    initial_delay: float = 0.0
    interval: float = 10.0
    duration: float = 300.0
    count: int = 0

    @property
    def slots(self) -> int:
        if self.count > 0:
            return self.count
        if self.interval <= 0:
            return 1
        return math.floor(self.duration / self.interval + 1e-9) + 1

    def due(self, k: int) -> float:
        return self.started_at + self.initial_delay + k * self.interval

    @property
    def ends_at(self) -> float:
        return self.due(self.slots - 1)

    def next_round(self, now: float, last: int | None) -> int | None:
        """The round to measure next (None: the window is over); ``last`` is the last
        round already measured (journaled), or None. No round is ever skipped."""
        k = 0 if last is None else last + 1
        return k if k < self.slots else None

    def due_after(self, k: int, last_at: float | None) -> float:
        """When round ``k`` is due: on schedule, or one interval after the last
        measurement when rounds are being made up after an outage."""
        scheduled = self.due(k)
        if last_at is None or scheduled >= last_at:
            return scheduled
        return last_at + self.interval
