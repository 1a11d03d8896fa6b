"""Bench case of the analysis file at scale: decades of a grid written by the assimilation's
writer, then read back as a point time series and as a map."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench.core import _peak_rss_mb, _target, case
from engine.config import preset


def _smooth_fields(shape: tuple[int, ...], count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` smooth anomaly patterns (a few degrees across, decaying with depth)."""
    from scipy.ndimage import gaussian_filter

    fields = rng.standard_normal((count, *shape)).astype("f4")
    fields = gaussian_filter(fields, sigma=(0, 1, 3, 3), mode="wrap")
    decay = np.exp(-np.arange(shape[0]) / max(shape[0] / 3, 1))[:, None, None]
    return (fields / fields.std() * decay).astype("f4")


def write_and_read(preset_name: str, years: int, folder: Path) -> dict[str, Any]:
    """Write ``years`` of one-member analyses on ``preset_name`` with the reanalysis's writer
    (fields that vary smoothly with a little noise, as analyses do), then read a point's
    whole series and one map through ``engine.io.open_fields``."""
    from engine.da.base import ensemble_fields
    from engine.grid import step_day_of_year, step_times
    from engine.io import load_grid, open_fields
    from engine.io.analysis import AnalysisWriter

    config = preset(preset_name)
    grid = load_grid(config.grid)
    spy = config.world.steps_per_year
    n_steps = years * spy
    rng = np.random.default_rng(0)
    patterns = _smooth_fields(grid.shape, 4, rng) * grid.ocean
    noise = (0.02 * rng.standard_normal((3, *grid.shape))).astype("f4")
    doy = step_day_of_year(n_steps, spy)
    path = folder / "analysis.nc"
    writer = AnalysisWriter(path, grid, step_times(1981, n_steps, spy, "standard"), 1, {"method": "bench"})
    start = time.perf_counter()
    for step in range(n_steps):
        phase = 2 * np.pi * step / (4 * spy)
        state = np.cos(phase) * patterns[0] + np.sin(phase) * patterns[1] + patterns[2] * (step / n_steps)
        state = (state + noise[step % 3])[None]
        writer.write(step, ensemble_fields(state, grid, float(doy[step]), False), state)
    writer.finish()
    write_s = time.perf_counter() - start
    size_gb = path.stat().st_size / 1e9
    level = int(np.argmin(np.abs(grid.depth - 100.0)))
    j, i = np.argwhere(grid.ocean[level])[len(np.argwhere(grid.ocean[level])) // 2]
    start = time.perf_counter()
    with open_fields(path) as ds:
        series = ds["thetao"][:, level, j, i].values
    series_s = time.perf_counter() - start
    start = time.perf_counter()
    with open_fields(path) as ds:
        field = ds["thetao"][n_steps // 2, level].values
    map_s = time.perf_counter() - start
    if not (np.isfinite(series).all() and np.isfinite(field[grid.ocean[level]]).all()):
        raise RuntimeError("the file read back has missing values at ocean cells")
    uncompressed_gb = 2 * n_steps * grid.shape[0] * grid.shape[1] * grid.shape[2] * 4 / 1e9
    return {
        "grid": preset_name,
        "years": years,
        "steps": n_steps,
        "file_gb": round(size_gb, 2),
        "compression": round(uncompressed_gb / size_gb, 2),
        "write_s": round(write_s, 1),
        "write_mb_per_s": round(uncompressed_gb * 1e3 / write_s, 1),
        "point_series_s": _target(series_s, 1.0, "s"),
        "map_s": _target(map_s, 1.0, "s"),
    }


@case("analysis_file")
def bench_analysis_file() -> dict[str, Any]:
    """A 40-year paper-grid analysis file (``$DEEPDA_BENCH_FILE_YEARS``, ``..._PRESET`` to
    change): written, then read as a point series and as a map, with the peak memory."""
    preset_name = os.environ.get("DEEPDA_BENCH_FILE_PRESET", "paper")
    years = int(os.environ.get("DEEPDA_BENCH_FILE_YEARS", "40"))
    with tempfile.TemporaryDirectory(dir=os.environ.get("DEEPDA_BENCH_DIR")) as tmp:
        result = write_and_read(preset_name, years, Path(tmp))
    return {
        "description": f"{years} years of {preset_name} analyses written (thetao, thetao_anomaly), "
        "then a point's series and a map read",
        **result,
        "peak_rss_mb": _target(_peak_rss_mb(), 4096.0, "MB"),
    }
