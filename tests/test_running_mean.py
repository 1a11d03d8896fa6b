"""Cycling around a running mean of the analyses: it keeps a persistent offset that the
climatology-relaxing background loses, invents none, records itself and resumes exactly."""

from dataclasses import replace

import numpy as np
import pytest
import xarray as xr

from engine import cli, io
from engine.da.base import Cancelled, cycle
from engine.da.reanalysis import assimilate_to_file
from engine.da.running_mean import RunningMean
from engine.observe.gridding import ObsStep
from tests.conftest import TINY


class HalfDamped:
    """Background damped by half towards zero anomaly; observed cells take the observation."""

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        return np.where(obs.mask > 0, obs.anomaly, 0.5 * background).astype("f4")


def _steps(values: list[float], shape: tuple[int, int, int]) -> list[ObsStep]:
    """One step per value: every cell observed at that anomaly, or none where it is NaN."""
    steps = []
    for k, value in enumerate(values):
        observed = not np.isnan(value)
        mask = np.full(shape, float(observed), "f4")
        steps.append(ObsStep(np.full(shape, value if observed else 0.0, "f4"), mask, 0.2 * mask, k, 5.0 * k))
    return steps


def _last(method, steps, shape):
    analyses = [a for _, a in cycle(method, iter(steps), np.zeros((1, *shape), "f4"), seed=0)]
    return analyses[-1]


def test_an_offset_the_observations_keep_survives_their_gap_only_with_the_running_mean():
    shape = (2, 3, 4)
    offset_then_gap = _steps([1.0] * 40 + [np.nan] * 10, shape)
    plain = _last(HalfDamped(), offset_then_gap, shape)
    running = _last(RunningMean(HalfDamped(), 5.0, np.zeros(shape)), offset_then_gap, shape)
    assert float(plain.max()) < 0.01  # relaxed to the climatology
    assert float(running.min()) > 0.95  # relaxed to the period's mean state


def test_the_running_mean_invents_no_offset_from_anomalies_that_average_out():
    shape = (2, 3, 4)
    wrapped = RunningMean(HalfDamped(), 20.0, np.zeros(shape))
    _last(wrapped, _steps([1.0, -1.0] * 100, shape), shape)
    assert float(np.abs(wrapped.mean).max()) < 0.05


@pytest.fixture(scope="module")
def tiny_obs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("running_mean")
    config = folder / "tiny.toml"
    io.write_config(TINY, config)
    assert cli.main(["observe", "--config", str(config), "--period", "2010", "--out", str(folder / "obs.nc")]) == 0
    return folder


def test_an_interrupted_run_around_the_running_mean_resumes_to_the_same_file(tiny_obs, tmp_path):
    config = replace(TINY, assimilate=replace(TINY.assimilate, running_mean_steps=10.0))
    obs = tiny_obs / "obs.nc"
    straight = assimilate_to_file("oi", obs, tmp_path / "straight.nc", config=config)
    plain = assimilate_to_file("oi", obs, tmp_path / "plain.nc", config=TINY)
    out = tmp_path / "resumed.nc"
    with pytest.raises(Cancelled):
        assimilate_to_file("oi", obs, out, config=config, should_stop=lambda: True)
    with pytest.raises(io.InputError, match="started with another"):
        assimilate_to_file("oi", obs, out, config=TINY, resume=True)
    assimilate_to_file("oi", obs, out, config=config, resume=True)
    a, b, c = (xr.open_dataset(p) for p in (straight, out, plain))
    np.testing.assert_array_equal(a["thetao_anomaly"].values, b["thetao_anomaly"].values)
    assert a.attrs["running_mean_steps"] == "10" and "running mean" in a.attrs["background_reference"]
    assert c.attrs["running_mean_steps"] == "0"
    assert float(np.nanmax(np.abs(a["thetao_anomaly"].values - c["thetao_anomaly"].values))) > 1e-3


def test_a_running_mean_below_one_step_is_one_line(tiny_obs, tmp_path, capsys):
    out = tmp_path / "a.nc"
    args = ["assimilate", "--method", "oi", "--config", str(tiny_obs / "tiny.toml"), "--obs", str(tiny_obs / "obs.nc")]
    assert cli.main([*args, "--running-mean", "0.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--running-mean 0.5" in err and "at least 1 step" in err and err.count("\n") == 1
    assert not out.exists() and not out.with_name("a.nc.part").exists()
