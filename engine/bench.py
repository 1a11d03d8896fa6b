"""``deepda bench``: speed and memory of the pipeline's stages, as JSON.

Each case runs in a fresh spawned process so that its peak memory (max RSS) is its own,
and returns a dict of measurements; targets from the issues sit beside the measurements
with a ``meets_target`` flag, so a regression is visible in the JSON without timed tests.
"""

from __future__ import annotations

import multiprocessing as mp
import platform
import resource
import shutil
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


def _matmul_gflops(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds = _median_seconds(lambda: a @ b, 5)
    return 2 * 2048**3 / seconds / 1e9


def _generator_case(name: str, channels_last: bool) -> dict[str, Any]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from engine.train.checkpoint import build_generator

    config = preset(name)
    gen = build_generator(config.model, config.grid.shape).eval()
    shape = (1, 1, *config.grid.shape)
    x = torch.randn(shape)
    mask = (torch.rand(shape) < 0.1).float()
    ocean = torch.ones(shape)
    if channels_last:  # the convolutions' weights only: the reduced-space layer's 4-D EOFs have no such layout
        for layer in gen.modules():
            if isinstance(layer, torch.nn.Conv3d | torch.nn.ConvTranspose3d):
                layer.to(memory_format=torch.channels_last_3d)
        x, mask, ocean = (t.contiguous(memory_format=torch.channels_last_3d) for t in (x, mask, ocean))
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            gen(x, x * mask, mask, ocean, mask)
        flops = counter.get_total_flops()
        repeats = 5 if name == "coarse" else 2
        seconds = _median_seconds(lambda: gen(x, x * mask, mask, ocean, mask), repeats)
    return {
        "seconds": round(seconds, 4),
        "gflop": round(flops / 1e9, 3),
        "gflops_per_s": round(flops / seconds / 1e9, 2),
    }


@case("generator")
def bench_generator() -> dict[str, Any]:
    """Generator inference per step on each preset: time, FLOPs, achieved GFLOP/s vs matmul."""
    import torch

    threads = torch.get_num_threads()
    ceiling = _matmul_gflops(threads)
    result: dict[str, Any] = {"threads": threads, "matmul_gflops_per_s": round(ceiling, 1)}
    for name in ("coarse", "medium", "paper"):
        plain = _generator_case(name, channels_last=False)
        fast = _generator_case(name, channels_last=True)
        best = min(plain, fast, key=lambda r: r["seconds"])
        result[name] = {
            "default_layout": plain,
            "channels_last_3d": fast,
            "fraction_of_matmul_ceiling": round(best["gflops_per_s"] / ceiling, 3),
        }
    return result


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


def read_argo_folder(folder: Path) -> dict[str, Any]:
    """``deepda observe --read FOLDER`` as the CLI runs it (QC, duplicates, background check,
    a DSG file written), timed from the first file to the written file."""
    from engine.io import load_grid, observation_paths, read_profile_headers, write_observation_files
    from engine.observe.background_check import climatology_check

    config = preset("coarse")
    grid = load_grid(config.grid)
    check = climatology_check(grid, config)
    paths = observation_paths([folder])
    out = folder.parent / f"{folder.name}.nc"
    start, cpu = time.perf_counter(), _cpu_seconds()
    rows, total = write_observation_files(paths, out, grid=grid, check=check)
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    profiles = len(read_profile_headers(out))
    duplicates = int(total.loc[total["code"] == 8, "rows"].sum())
    return {
        "files": len(paths),
        "profiles": profiles,
        "measurements": rows,
        "duplicate_measurements": duplicates,
        "seconds": round(seconds, 2),
        "profiles_per_s": round(profiles / seconds, 1),
        "cpu_seconds": round(cpu, 2),  # steadier than the wall time on shared cores
        "profiles_per_cpu_s": round(profiles / cpu, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _read_in_child(folder: Path, queue: mp.Queue) -> None:
    queue.put(read_argo_folder(folder))


@case("reading")
def bench_reading() -> dict[str, Any]:
    """Reading a folder of Argo files (``observe --read``): profiles per second and peak
    memory, for N and 4N files, each read in its own process. Synthetic GDAC-layout files,
    or copies (new WMO numbers, moved times) of the real files in ``$DEEPDA_BENCH_ARGO``."""
    import os

    from engine.io.argo_write import copy_argo_as_new_float, write_synthetic_argo_folder

    source = os.environ.get("DEEPDA_BENCH_ARGO")
    real = sorted(Path(source).glob("*.nc")) if source else []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, scale in (("n_files", 1), ("4n_files", 4)):
            folder = Path(tmp) / label
            folder.mkdir()
            if real:
                for k in range(2 * scale):
                    for i, file in enumerate(real):
                        copy_argo_as_new_float(file, folder / f"c{k}_{file.name}", 7_000_000 + 1000 * i + k, float(k))
            else:
                write_synthetic_argo_folder(folder, 50 * scale)
            queue: mp.Queue = mp.get_context("spawn").Queue()
            child = mp.get_context("spawn").Process(target=_read_in_child, args=(folder, queue))
            child.start()
            results[label] = queue.get()
            child.join()
    small, large = results["n_files"], results["4n_files"]
    return {
        "description": "observe --read of a folder of Argo files (QC, duplicates, background check, DSG written)",
        "source": f"copies of {len(real)} files in {source}" if real else "synthetic Argo GDAC-layout files",
        **results,
        "profiles_per_s": large["profiles_per_s"],
        "peak_rss_mb": large["peak_rss_mb"],
        "peak_rss_4n_over_n": _target(large["peak_rss_mb"] / small["peak_rss_mb"], 1.1, "ratio"),
    }


def _regrid_once(folder: str, cache: str, queue: mp.Queue) -> None:
    """Regrid and report (seconds, max RSS while regridding, RSS before it); RSS sampled every
    20 ms, since the process's own peak may be the grid's construction before it."""
    import threading

    import psutil

    from engine.io import load_grid
    from engine.io.control import regrid_control_run

    grid = load_grid(preset("coarse").grid)
    me, samples, done = psutil.Process(), [], threading.Event()
    before = me.memory_info().rss / 2**20

    def sample() -> None:
        while not done.wait(0.02):
            samples.append(me.memory_info().rss / 2**20)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    regrid_control_run(folder, grid, cache=cache)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    queue.put((seconds, max(samples, default=before), before))


@case("regrid")
def bench_regrid() -> dict[str, Any]:
    """A 1 degree CMIP-layout control run (monthly, 31 levels, K, cm) regridded to the coarse
    preset and cached: control-run years a minute, and the peak memory for two run lengths,
    each regridded in its own process (it must not grow with the length)."""
    from dataclasses import replace

    from engine.io import load_geography, load_grid
    from engine.io.cmip_write import write_cmip_world
    from engine.world.cmip_layout import make_layout
    from engine.world.synthetic import ModelWorld

    config = preset("coarse")
    grid = load_grid(config.grid)
    layout = make_layout("1deg", grid, load_geography()["land"].values)
    spec, ctx, runs = replace(config.world, steps_per_year=12), mp.get_context("spawn"), {}
    with tempfile.TemporaryDirectory() as tmp:
        for years in (4, 16):
            folder = Path(tmp) / f"run{years}"
            write_cmip_world(ModelWorld(grid, spec, run="control", n_steps=years * 12), layout, folder)
            queue: mp.Queue = ctx.Queue()
            proc = ctx.Process(target=_regrid_once, args=(str(folder), str(Path(tmp) / f"cache{years}"), queue))
            proc.start()
            seconds, peak, before = queue.get()
            proc.join()
            size = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
            runs[years] = {
                "seconds": round(seconds, 2), "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
                "input_mb": round(size),
            }  # fmt: skip
            shutil.rmtree(folder)
    short, long = runs[4], runs[16]
    return {
        "description": "1 degree monthly CMIP-layout control run (360 x 180 x 31) -> coarse, cached netCDF",
        "runs": {f"{y}_years": r for y, r in runs.items()},
        "years_per_minute": round(16 * 60.0 / long["seconds"], 1),
        "peak_growth_mb": _target(long["peak_rss_mb"] - short["peak_rss_mb"], 50.0, "MB"),
    }
