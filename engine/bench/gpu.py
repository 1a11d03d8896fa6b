"""Bench case of a GPU, ready for the moment one is at hand (``scripts/gpu_run.sh``): the
paper-grid generator step under bfloat16 autocast, and a one-year paper-grid reanalysis
end to end (truth, OSSE observations, DeepDA cycling, the analysis file). On a machine
without CUDA the case says so and measures nothing."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.bench.core import _peak_rss_mb, _target, case
from engine.config import Config, preset


def untrained_checkpoint(config: Config, path: Path) -> Path:
    """A checkpoint of ``config``'s generator with random weights (timings need no skill):
    the per-level scale of the world's anomalies, an empty reduced-space basis."""
    import numpy as np

    from engine.io import load_grid
    from engine.train.checkpoint import build_generator, save_checkpoint
    from engine.train.normalize import Normalizer

    grid = load_grid(config.grid)
    generator = build_generator(config.model, grid.shape)
    scale = Normalizer(np.full(grid.shape[0], 0.5, "f4"))
    save_checkpoint(path, generator, config, scale, grid, {"data": "untrained, for timing"})
    return path


def step_seconds(config: Config, device: str, repeats: int = 20) -> float:
    """Median seconds of one generator step on ``device`` (bfloat16 autocast on CUDA)."""
    import torch

    from engine.bench.core import _median_seconds
    from engine.train.checkpoint import build_generator
    from engine.train.distributed import autocast

    target = torch.device(device)
    gen = build_generator(config.model, config.grid.shape).to(target).eval()
    shape = (1, 1, *config.grid.shape)
    x = torch.randn(shape, device=target)
    mask = (torch.rand(shape, device=target) < 0.1).float()
    ocean = torch.ones(shape, device=target)

    def run() -> None:
        with torch.inference_mode(), autocast(target):
            gen(x, x * mask, mask, ocean, mask)
        if target.type == "cuda":
            torch.cuda.synchronize()

    run()  # warm-up: kernels chosen, memory pooled
    return _median_seconds(run, repeats)


def one_year_reanalysis(config: Config, device: str, folder: Path, year: int = 2010) -> dict[str, Any]:
    """Truth, OSSE observations and a DeepDA reanalysis of one year on ``config``'s grid;
    seconds of each stage and the 40-year time the assimilation's rate gives."""
    from engine.da.reanalysis import assimilate_to_file
    from engine.osse import make_truth_and_obs

    start = time.perf_counter()
    paths = make_truth_and_obs(config, folder, (year, year))
    truth_and_obs_s = time.perf_counter() - start
    model = untrained_checkpoint(config, folder / "untrained.pt")
    start = time.perf_counter()
    out = assimilate_to_file(
        model, paths["obs"], folder / "analysis.nc", period=(year, year), config=config, device=device
    )
    assimilate_s = time.perf_counter() - start
    steps = config.world.steps_per_year
    return {
        "steps": steps,
        "truth_and_observations_s": round(truth_and_obs_s, 1),
        "assimilate_s": round(assimilate_s, 1),
        "assimilate_s_per_step": round(assimilate_s / steps, 4),
        "forty_years_min": _target(40 * assimilate_s / 60, 3.0, "min"),
        "file_mb": round(out.stat().st_size / 1e6, 1),
    }


def gpu_run(preset_name: str, device: str, folder: Path) -> dict[str, Any]:
    """The GPU case's measurements on ``device`` (``cpu`` runs them too, for the tests)."""
    import torch

    config = preset(preset_name)
    result: dict[str, Any] = {"preset": preset_name, "device": device}
    if device.startswith("cuda"):
        result["card"] = torch.cuda.get_device_name(torch.device(device))
    result["generator_step_s"] = _target(step_seconds(config, device), 0.05, "s")
    result["reanalysis_one_year"] = one_year_reanalysis(config, device, folder)
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    if device.startswith("cuda"):
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(torch.device(device)) / 2**20, 1)
    return result


@case("gpu")
def bench_gpu() -> dict[str, Any]:
    """The paper grid on a GPU (``$DEEPDA_BENCH_GPU_PRESET`` for another): a generator step
    in bfloat16 (target 0.05 s on an H100-class card) and a one-year reanalysis."""
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device on this machine; run scripts/gpu_run.sh where there is one"}
    with tempfile.TemporaryDirectory(dir=os.environ.get("DEEPDA_BENCH_DIR")) as tmp:
        return gpu_run(os.environ.get("DEEPDA_BENCH_GPU_PRESET", "paper"), "cuda", Path(tmp))
