"""`deepda bench` cases that must keep running (their numbers are not asserted)."""

from __future__ import annotations

import pytest


def test_bench_generator_case_runs_in_both_memory_layouts():
    from engine.bench.compute import _generator_case

    plain, fast = _generator_case("coarse", channels_last=False), _generator_case("coarse", channels_last=True)
    # the same network, so the same work; the layout only changes the speed
    assert plain["gflop"] == pytest.approx(fast["gflop"], rel=1e-3) and plain["gflop"] > 1.0
