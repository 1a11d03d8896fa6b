"""Bench cases of the pipeline's stages: world, gridding, training, assimilation, dashboard."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from engine.bench.core import _median_seconds, _peak_rss_mb, _target, case
from engine.config import preset


@case("world")
def bench_world() -> dict[str, Any]:
    """100 coarse control years generated and written to CF netCDF."""
    from engine.io import load_grid, write_world
    from engine.world.synthetic import ModelWorld

    config = preset("coarse")
    years = 100
    start = time.perf_counter()
    grid = load_grid(config.grid)
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


@case("gridding")
def bench_gridding() -> dict[str, Any]:
    """Gridding one Argo-era coarse pentad of OSSE observations into super-observations."""
    import numpy as np

    from engine.grid import step_day_of_year
    from engine.io import load_grid
    from engine.observe.gridding import grid_step
    from engine.observe.network import ObservingNetwork

    config = preset("coarse")
    grid = load_grid(config.grid)
    network = ObservingNetwork(grid, config.network, obs_error=config.obs_error)
    positions = network.positions(2012, 30, 73)
    doy = float(step_day_of_year(73, 73)[30])
    positions["temperature"] = network.sample(np.zeros(grid.shape, "f4"), positions, np.random.default_rng(0), doy)
    seconds = _median_seconds(lambda: grid_step(positions, grid, doy), 20)
    return {
        "description": "grid one 2012 coarse pentad (profiles -> super-observations)",
        "measurements": len(positions),
        "profiles": int(positions["profile_id"].nunique()),
        "seconds": _target(seconds, 0.05, "s"),
    }


@case("train_step")
def bench_train_step() -> dict[str, Any]:
    """One coarse training window (window steps, truncated backprop, critic update)."""
    import numpy as np

    from engine.io import load_grid
    from engine.train.samples import TrainingSamples
    from engine.train.trainer import Trainer

    config = preset("coarse")
    grid = load_grid(config.grid)
    samples = TrainingSamples.from_config(config, grid)
    trainer = Trainer(config, grid, samples, out="")  # never saved
    rng = np.random.default_rng(0)
    windows = [samples.training_window(rng, config.train.window).to(trainer.device) for _ in range(4)]
    make = _median_seconds(lambda: samples.training_window(rng, config.train.window), 3)

    def timed(backprop_steps: int) -> float:
        def one(window=windows[0]) -> None:
            trainer.cycle_window(window, 0.1, backprop_steps)

        return _median_seconds(one, 3)

    spec = config.train
    seconds, finetune_seconds = timed(spec.backprop_steps), timed(spec.finetune_backprop_steps)
    minutes = (spec.steps * (seconds + make) + spec.finetune_steps * (finetune_seconds + make)) / 60
    return {
        "description": f"coarse window of {spec.window} steps, backprop every {spec.backprop_steps} "
        f"(fine-tune: every {spec.finetune_backprop_steps})",
        "window_seconds": round(seconds, 3),
        "finetune_window_seconds": round(finetune_seconds, 3),
        "sample_seconds": round(make, 3),
        "windows_per_second": round(1.0 / (seconds + make), 3),
        "minutes_for_default_run": round(minutes, 1),
    }


def _osse_steps(year: int, n_steps: int) -> tuple[Any, Any, list[Any]]:
    """Coarse grid, config and the first ``n_steps`` OSSE observation steps of ``year``."""
    from engine.io import load_grid
    from engine.observe.gridding import obs_steps
    from engine.observe.network import ObservingNetwork, observe
    from engine.osse import historical_world

    config = preset("coarse")
    grid = load_grid(config.grid)
    world = historical_world(config, grid, (year, year))
    network = ObservingNetwork(grid, config.network, obs_error=config.obs_error)
    table = observe(world, network, stop=n_steps)
    steps = obs_steps(table, grid, year, config.world.steps_per_year, 0, n_steps, repr_error=network.repr_error)
    return grid, config, list(steps)


def _seconds_per_step(method: Any, steps: list[Any], members: int, warm_up: int = 2) -> float:
    import numpy as np

    from engine.da.base import cycle

    background = np.zeros((members, *steps[0].mask.shape), "f4")
    times, last = [], time.perf_counter()
    for _ in cycle(method, iter(steps), background, seed=0):
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return float(np.median(times[warm_up:]))


@case("assimilation_step")
def bench_assimilation_step() -> dict[str, Any]:
    """Seconds per analysis step of DeepDA, OI and the Kalman filter on the same coarse
    grid and the same 2012 OSSE observations, and their ratios to DeepDA."""
    from engine.da.registry import make_method
    from engine.io import shipped_model

    grid, config, steps = _osse_steps(2012, 10)
    model = shipped_model()
    seconds = {
        name: _seconds_per_step(make_method(method, config).method, steps, members=1)
        for name, method in (("deepda", model), ("oi", "oi"), ("kf", "kf"))
    }
    ensemble = _seconds_per_step(make_method(model, config).method, steps, members=10)
    return {
        "description": "one coarse analysis step, 2012 OSSE observations, median of 8 steps after 2 warm-up steps",
        "observed_cells": int(sum(float(s.mask.sum()) for s in steps) / len(steps)),
        "seconds_per_step": {k: round(v, 4) for k, v in seconds.items()},
        "deepda_10_members_seconds_per_step": round(ensemble, 4),
        "oi_over_deepda": round(seconds["oi"] / seconds["deepda"], 2),
        "kf_over_deepda": round(seconds["kf"] / seconds["deepda"], 2),
    }


@case("reanalysis")
def bench_reanalysis() -> dict[str, Any]:
    """A 40-year coarse DeepDA reanalysis with 10 members (1981-2020 OSSE observations):
    wall time and peak memory of ``assimilate_to_file`` end to end, netCDF written."""
    from engine.da.reanalysis import assimilate_to_file
    from engine.io import cache_dir, shipped_model
    from engine.osse import make_truth_and_obs

    config = preset("coarse")
    period = (config.world.historical_start_year, config.world.historical_end_year)
    paths = make_truth_and_obs(config, cache_dir(), period)  # the dashboard's cached default, made once
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "analysis.nc"
        start = time.perf_counter()
        assimilate_to_file(shipped_model(), paths["obs"], out, period=period, members=10)
        seconds = time.perf_counter() - start
        size_mb = out.stat().st_size / 1e6
    steps = (period[1] - period[0] + 1) * config.world.steps_per_year
    return {
        "description": f"{period[0]}-{period[1]} coarse DeepDA reanalysis, 10 members, mean + spread written",
        "steps": steps,
        "file_mb": round(size_mb, 1),
        "wall_s": round(seconds, 1),
        "seconds_per_step": round(seconds / steps, 4),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


@case("viewer")
def bench_viewer() -> dict[str, Any]:
    """Dashboard: server start to first rendered page, depth-slider change to new image.

    Runs ``python -m viewer.bench`` in a subprocess (the engine never imports the viewer).
    """
    import json
    import subprocess
    import sys

    command = [sys.executable, "-m", "viewer.bench", "--paper"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return {"cases": json.loads(done.stdout.strip().splitlines()[-1])}
