"""`deepda bench` cases that must keep running (their numbers are not asserted)."""

from __future__ import annotations

import pytest


def test_bench_generator_case_runs_in_both_memory_layouts():
    from engine.bench.compute import _generator_case

    plain, fast = _generator_case("coarse", channels_last=False), _generator_case("coarse", channels_last=True)
    # the same network, so the same work; the layout only changes the speed
    assert plain["gflop"] == pytest.approx(fast["gflop"], rel=1e-3) and plain["gflop"] > 1.0


def test_train_ddp_counts_every_rank_and_chain_and_leaves_the_warm_up_window_out(tmp_path):
    from engine.bench.scale import ddp_bench_config, log_windows_per_second

    log = tmp_path / "run.log.csv"
    log.write_text("g_mse,step,seconds\n0.1,1,10.0\n0.1,2,12.0\n0.1,3,14.0\n0.1,4,16.0\n")
    assert log_windows_per_second(log, processes=1) == pytest.approx(0.5)  # 3 windows in 6 s, the first left out
    assert log_windows_per_second(log, processes=2, batch_size=2) == pytest.approx(2.0)
    spec = ddp_bench_config(windows=5, batch_size=2).train
    assert (spec.steps, spec.finetune_steps, spec.batch_size) == (5, 0, 2) and spec.validate_every > 5


def test_analysis_file_case_reads_back_what_it_wrote(tmp_path):
    from engine.bench.files import write_and_read

    result = write_and_read("coarse", 1, tmp_path)
    # a year of pentads in two 4-byte variables, compressed but not to nothing
    assert result["steps"] == 73 and 1.0 < result["compression"] < 20.0
    assert result["point_series_s"]["unit"] == "s" and result["file_gb"] > 0


def test_the_gpu_run_measures_a_step_and_a_year_on_any_device(tmp_path):
    """The GPU case's code path, run on CPU with the coarse grid: a year of analyses is
    written, and the step and the 40-year figure come with their targets."""
    import subprocess

    import torch

    from engine.bench.gpu import bench_gpu, gpu_run
    from engine.io import open_fields

    result = gpu_run("coarse", "cpu", tmp_path)
    year = result["reanalysis_one_year"]
    assert year["steps"] == 73 and year["assimilate_s"] > 0 and year["forty_years_min"]["target"] == 3.0
    assert result["generator_step_s"]["target"] == 0.05 and result["generator_step_s"]["value"] > 0
    with open_fields(tmp_path / "analysis.nc") as ds:
        assert ds.sizes["time"] == 73 and ds.attrs["model_data"] == "untrained, for timing"
    if not torch.cuda.is_available():
        assert "no CUDA device" in bench_gpu()["skipped"]
        run = subprocess.run(["bash", "scripts/gpu_run.sh"], capture_output=True, text=True)
        assert run.returncode != 0 and "no CUDA device" in run.stderr
