"""``deepda bench``: speed and memory of the pipeline's stages, as JSON.

Each case runs in a fresh spawned process so that its peak memory (max RSS) is its own,
and returns a dict of measurements; targets from the issues sit beside the measurements
with a ``meets_target`` flag, so a regression is visible in the JSON without timed tests.
"""

from __future__ import annotations

import multiprocessing as mp
import platform
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.config import preset

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


@case("world")
def bench_world() -> dict[str, Any]:
    """100 coarse control years generated and written to CF netCDF."""
    from engine.grid import build_grid
    from engine.io import load_geography, write_world
    from engine.world import ModelWorld

    config = preset("coarse")
    years = 100
    start = time.perf_counter()
    grid = build_grid(config.grid, load_geography())
    world = ModelWorld(grid, config.world, run="control", n_steps=years * config.world.steps_per_year)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "world.nc"
        write_world(world, path)
        size_mb = path.stat().st_size / 1e6
    seconds = time.perf_counter() - start
    return {
        "description": f"{years} coarse control years -> netCDF",
        "steps": world.n_steps,
        "file_mb": round(size_mb, 1),
        "wall_s": _target(seconds, 60.0, "s"),
        "peak_rss_mb": _target(_peak_rss_mb(), 2048.0, "MB"),
    }


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
