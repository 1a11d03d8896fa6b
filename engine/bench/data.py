"""Bench cases of data in: reading folders of profile files, regridding control runs."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.bench.core import _cpu_seconds, _peak_rss_mb, _target, case
from engine.config import preset


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
