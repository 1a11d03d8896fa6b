"""``deepda osse --truth``: a model's historical run in CMIP6 layout as the OSSE's truth."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from engine import cli, io
from engine.osse import historical_world
from tests.conftest import TINY

MONTHLY = replace(TINY, world=replace(TINY.world, steps_per_year=12))
PERIOD = (2005, 2006)


@pytest.fixture(scope="module")
def historical_1deg(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hist")
    config = folder / "monthly.toml"
    io.write_config(MONTHLY, config)
    argv = ["world", "--config", str(config), "--run", "historical", "--period", "2004-2007"]
    assert cli.main([*argv, "--layout", "cmip", "--grid", "1deg", "--out", str(folder / "run")]) == 0
    return folder / "run"


@pytest.fixture(scope="module")
def osse_on_model_truth(historical_1deg, tiny_config_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("osse") / "o"
    cache = out.parent / "cache"
    argv = ["osse", "--config", str(tiny_config_file), "--truth", f"HIST={historical_1deg}"]
    argv += ["--period", f"{PERIOD[0]}-{PERIOD[1]}", "--methods", "oi,climatology", "--out", str(out)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPDA_CACHE", str(cache))
        assert cli.main(argv) == 0
    return out


def test_the_truth_is_the_models_run_regridded_on_the_analyses_steps(osse_on_model_truth, tiny_grid):
    """The truth file holds the model's run (the synthetic world written at 1 degree and
    regridded back), on the analyses' monthly steps, and the observations sample it."""
    with (
        io.open_fields(osse_on_model_truth / "world.nc") as truth,
        io.open_fields(osse_on_model_truth / "analysis_oi.nc") as oi,
    ):
        assert truth.attrs["model"] == "HIST" and truth.attrs["steps_per_year"] == 12
        np.testing.assert_array_equal(truth["time"].values, oi["time"].values)
        assert oi.attrs["steps_per_year"] == 12  # the dashboard reads the step length, not guesses it
        assert truth.sizes["time"] == 12 * (PERIOD[1] - PERIOD[0] + 1)
        model = truth["thetao"].values
    world = historical_world(MONTHLY, tiny_grid, (2004, 2007))  # the run written, from its first year
    native = world.temperature(12, 12 + model.shape[0])
    ocean = np.isfinite(model) & np.isfinite(native)
    assert ocean.mean() > 0.2
    # regridding 1 degree back to 22.5 degrees: a fraction of the field's variability
    rms = float(np.sqrt(np.mean((model - native)[ocean] ** 2)))
    spread = float(np.std((native - native.mean(axis=0))[ocean]))
    assert rms < 0.35 * spread, (rms, spread)


def test_the_summary_names_the_model_truth_and_oi_beats_the_climatology(osse_on_model_truth):
    text = (osse_on_model_truth / "summary.md").read_text()
    assert "truth: the historical run of HIST" in text
    table = pd.read_csv(osse_on_model_truth / "summary.csv")
    assert set(table["truth"]) == {"HIST"}
    with xr.open_dataset(osse_on_model_truth / "metrics.nc") as ds:
        assert "HIST" in ds.attrs["truth_world"]
        rmse = {m: float(ds[f"rmse_depth_{m}"].mean()) for m in ("oi", "climatology")}
    assert rmse["oi"] < rmse["climatology"], rmse


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--methods", "oi,kf"], "leave kf out"),
        (["--period", "1990-1995"], "choose years within 2004-2007"),
        (["--truth-config", "assets/world_b.toml"], "not allowed with argument"),
    ],
)
def test_bad_model_truth_runs_exit_2_with_one_line(historical_1deg, tiny_config_file, tmp_path, capsys, extra, message):
    out = tmp_path / "o"
    argv = ["osse", "--config", str(tiny_config_file), "--truth", str(historical_1deg), *extra, "--out", str(out)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPDA_CACHE", str(tmp_path / "cache"))
        assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    assert not out.exists()


def test_the_kalman_filter_is_refused_a_model_truth():
    from engine.twins import ModelTruth, twin_records

    with pytest.raises(ValueError, match="Kalman"):
        twin_records(ModelTruth("X", "x"), {"kf": "kf"})


def test_an_osse_runs_at_its_checkpoints_step_length_or_says_why_not():
    from engine.cli.osse import model_step_length
    from engine.config import Config
    from engine.errors import InputError

    shipped = {"deepda": "assets/deepda_coarse.pt", "oi": "oi"}
    monthly = replace(Config(), world=replace(Config().world, steps_per_year=12))
    assert model_step_length(Config(), shipped, fixed=False).world.steps_per_year == 73
    assert model_step_length(monthly, {"oi": "oi"}, fixed=True) is monthly  # baselines run at any step length
    with pytest.raises(InputError, match="trained on 73 steps a year and the config asks for 12"):
        model_step_length(monthly, shipped, fixed=False)
    with pytest.raises(InputError, match="the truth's run has 12"):
        model_step_length(monthly, shipped, fixed=True)
