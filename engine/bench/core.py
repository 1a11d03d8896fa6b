"""The bench's registry and runner: each case runs in a fresh spawned process so that its
peak memory (max RSS) is its own, and returns a dict of measurements; targets from the
issues sit beside the measurements with a ``meets_target`` flag."""

from __future__ import annotations

import multiprocessing as mp
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

CASES: dict[str, Callable[[], dict[str, Any]]] = {}


def case(name: str) -> Callable[[Callable[[], dict[str, Any]]], Callable[[], dict[str, Any]]]:
    """Register a benchmark case under ``name``."""

    def register(func: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        CASES[name] = func
        return func

    return register


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _target(value: float, limit: float, unit: str) -> dict[str, Any]:
    return {"value": round(value, 4), "target": limit, "unit": unit, "meets_target": value <= limit}


def _run_case(name: str, queue: mp.Queue) -> None:
    try:
        queue.put((name, CASES[name]()))
    except Exception as err:  # a failing case is reported, the others still run
        queue.put((name, {"error": f"{type(err).__name__}: {err}"}))


def run_cases(names: list[str], progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the named cases (all when empty), each in a fresh process; return the report."""
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(f"unknown bench case(s): {', '.join(unknown)}; choose from {', '.join(CASES)}")
    ctx = mp.get_context("spawn")
    results: dict[str, Any] = {}
    for name in names or list(CASES):
        if progress:
            progress(name)
        queue: mp.Queue = ctx.Queue()
        proc = ctx.Process(target=_run_case, args=(name, queue))
        proc.start()
        got_name, result = queue.get()
        proc.join()
        results[got_name] = result
    return {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": mp.cpu_count()},
        "cases": results,
    }


def _median_seconds(func: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(sorted(times)[len(times) // 2])


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
