"""The harness's interleaving gives every subject every place in the order equally often.

A subject that always runs first (or always right after another's fsync) would carry a bias
into its figure; with two subjects the old rotation did exactly that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from benchmarks.common import interleave


def _recording(names: list[str], calls: list[str]) -> dict[str, Callable[[], float]]:
    def subject(name: str) -> Callable[[], float]:
        def run() -> float:
            calls.append(name)
            return float(len(calls))

        return run

    return {name: subject(name) for name in names}


@pytest.mark.parametrize("names", [["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d"]])
def test_each_subject_takes_each_place_equally_often(names: list[str]) -> None:
    calls: list[str] = []
    rounds = 4 * len(names)
    samples = interleave(_recording(names, calls), rounds, warmup=0)
    places: Counter[tuple[int, str]] = Counter()
    for i in range(rounds):
        for place, name in enumerate(calls[i * len(names) : (i + 1) * len(names)]):
            places[(place, name)] += 1
    assert set(places.values()) == {4}, places
    assert {name: len(values) for name, values in samples.items()} == dict.fromkeys(names, rounds)


def test_warmup_rounds_run_and_are_dropped() -> None:
    calls: list[str] = []
    samples = interleave(_recording(["a", "b"], calls), 3, warmup=2)
    assert len(calls) == 10
    assert samples["a"] == sorted(samples["a"])
    assert min(samples["a"] + samples["b"]) == 5.0  # the first kept sample is the fifth call
