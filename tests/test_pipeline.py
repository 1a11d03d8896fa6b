"""End to end on the tiny grid: observe -> train -> assimilate (resume, ensembles) -> evaluate."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from engine import cli, io
from engine.da.base import Cancelled
from engine.da.reanalysis import assimilate_to_file
from engine.io import observations as io_observations
from engine.observe.gridding import obs_steps, obs_steps_from_file
from tests.conftest import TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny config, one year of OSSE observations and a briefly trained model."""
    folder = tmp_path_factory.mktemp("pipeline")
    config = folder / "tiny.toml"
    io.write_config(TINY, config)
    assert cli.main(["observe", "--config", str(config), "--period", "2010", "--out", str(folder / "obs.nc")]) == 0
    assert cli.main(["train", "--config", str(config), "--out", str(folder / "model.pt"), "--steps", "2"]) == 0
    return folder


def test_observe_writes_a_dsg_profile_file_with_every_platform(run_dir):
    table, summary = io.open_observations(run_dir / "obs.nc")
    assert set(table["platform"].unique()) == {"argo", "xbt", "ctd", "mooring", "sst"}
    assert table["time"].dt.year.eq(2010).all()
    # near-freezing polar truth plus instrument noise can fall below -2.5 degC: flagged, kept, counted
    assert (table["qc"] == 0).mean() > 0.998 and set(table["qc"].unique()) <= {0, 2}
    assert summary["rows"].sum() == len(table)
    ds = xr.open_dataset(run_dir / "obs.nc")
    assert ds.attrs["featureType"] == "profile" and "deepda observe" in ds.attrs["history"]


def test_observe_denial_and_counts(run_dir, capsys, tmp_path):
    config = str(run_dir / "tiny.toml")
    out = tmp_path / "denied.nc"
    assert cli.main(["observe", "--config", config, "--period", "2010", "--deny", "argo,xbt", "--out", str(out)]) == 0
    table, _ = io.open_observations(out)
    assert not table["platform"].isin(["argo", "xbt"]).any() and len(table) > 0
    assert cli.main(["observe", "--counts", "--period", "1999-2001"]) == 0
    printed = capsys.readouterr().out
    assert "1999" in printed and "argo" in printed
    assert cli.main(["observe", "--deny", "gliders", "--out", str(tmp_path / "x.nc")]) == 2
    assert "unknown platform" in capsys.readouterr().err and not (tmp_path / "x.nc").exists()


def test_deepda_ensemble_analysis_is_cf_and_spread_is_positive(run_dir):
    out = run_dir / "ens.nc"
    args = ["assimilate", "--config", str(run_dir / "tiny.toml"), "--model", str(run_dir / "model.pt")]
    assert cli.main([*args, "--obs", str(run_dir / "obs.nc"), "--members", "3", "--out", str(out)]) == 0
    ds = xr.open_dataset(out)
    assert ds.sizes["time"] == 73 and ds.attrs["method"] == "deepda" and ds.attrs["members"] == 3
    assert ds.attrs["ensemble_mean"].startswith("control analysis")
    assert ds["thetao"].attrs["standard_name"] == "sea_water_potential_temperature"
    assert ds["depth"].attrs["positive"] == "down"
    ocean = ds["mask"].values.astype(bool)
    assert np.isnan(ds["thetao"].values[:, ~ocean]).all() and np.isfinite(ds["thetao"].values[:, ocean]).all()
    spread = ds["thetao_spread"].values[:, ocean]
    assert (spread > 0).mean() > 0.9
    clim_minus = ds["thetao"] - ds["thetao_anomaly"]  # absolute = climatology + anomaly
    assert float(np.nanstd(clim_minus.isel(time=0) - clim_minus.isel(time=1))) < 1.0


def test_interrupted_assimilation_resumes_to_the_same_file(run_dir, tmp_path):
    common = {"config": TINY, "members": 2}
    obs, model = run_dir / "obs.nc", run_dir / "model.pt"
    straight = assimilate_to_file(model, obs, tmp_path / "straight.nc", **common)
    out = tmp_path / "resumed.nc"
    with pytest.raises(Cancelled):
        assimilate_to_file(model, obs, out, should_stop=lambda: True, **common)
    assert not out.exists() and xr.open_dataset(out.with_name("resumed.nc.part")).attrs["steps_done"] == 1
    assimilate_to_file(model, obs, out, resume=True, **common)
    a, b = xr.open_dataset(straight), xr.open_dataset(out)
    np.testing.assert_allclose(a["thetao_anomaly"].values, b["thetao_anomaly"].values, atol=1e-5)
    np.testing.assert_allclose(a["thetao_spread"].values, b["thetao_spread"].values, atol=1e-5)


def test_assimilate_errors_are_one_line(run_dir, tmp_path, capsys):
    base = ["assimilate", "--config", str(run_dir / "tiny.toml"), "--out", str(tmp_path / "a.nc")]
    cases = [
        (["--method", "persistence", "--obs", str(tmp_path / "missing.nc")], "does not exist"),
        (["--model", str(tmp_path / "none.pt"), "--obs", str(run_dir / "obs.nc")], "does not exist"),
        (["--method", "persistence", "--obs", str(run_dir / "obs.nc"), "--members", "0"], "from 1 to 1000"),
        (["--method", "persistence", "--obs", str(run_dir / "obs.nc"), "--resume"], "nothing to resume"),
    ]
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"not netCDF")
    # with --period the file is first read inside the cycle, after the output was opened
    cases.append((["--method", "persistence", "--obs", str(garbage), "--period", "2010"], "not a readable netCDF"))
    for args, message in cases:
        assert cli.main([*base, *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "a.nc").exists() and not (tmp_path / "a.nc.part").exists()


def test_a_checkpoint_runs_on_its_own_grid_whatever_the_preset(run_dir, tiny_grid):
    from engine.config import preset
    from engine.da.registry import make_method

    setup = make_method(run_dir / "model.pt", preset("coarse"))  # the coarse preset, a tiny model
    assert setup.grid.shape == tiny_grid.shape and setup.config.grid.name == "tiny"
    assert setup.config.world.steps_per_year == preset("coarse").world.steps_per_year


def test_a_step_length_the_checkpoint_was_not_trained_on_is_refused(run_dir):
    from dataclasses import replace

    from engine.config import preset
    from engine.da.registry import make_method

    monthly = preset("coarse")
    monthly = replace(monthly, world=replace(monthly.world, steps_per_year=12))
    with pytest.raises(io.InputError, match="trained on 73 steps a year and the config asks for 12"):
        make_method(run_dir / "model.pt", monthly)
    assert make_method("oi", monthly).config.world.steps_per_year == 12  # a baseline runs at any step length


def test_evaluate_scores_methods_and_writes_tables_and_figures(run_dir, tmp_path):
    config = str(run_dir / "tiny.toml")
    for method in ("persistence", "climatology"):
        args = ["assimilate", "--config", config, "--method", method, "--obs", str(run_dir / "obs.nc")]
        assert cli.main([*args, "--out", str(run_dir / f"analysis_{method}.nc")]) == 0
    out = tmp_path / "scores"
    analyses = [str(run_dir / f"analysis_{m}.nc") for m in ("persistence", "climatology")]
    args = [
        "evaluate",
        "--config",
        config,
        "--analysis",
        *analyses,
        "--obs",
        str(run_dir / "obs.nc"),
        "--out",
        str(out),
    ]
    assert cli.main(args) == 0
    metrics = xr.open_dataset(out / "metrics.nc")
    assert {"rmse_depth_persistence", "rmse_depth_climatology", "rmse_depth_observations"} <= set(metrics)
    assert {"rmse_at_obs_depth_persistence", "rmse_at_obs_depth_climatology"} <= set(metrics)
    # climatology's analysis is zero: its RMSE is the truth's own standard deviation
    truth_rms = float(metrics["rmse_depth_climatology"].isel(depth=0))
    assert 0.1 < truth_rms < 2.0
    assert float(metrics["rmse_depth_persistence"].isel(depth=0)) != pytest.approx(truth_rms)
    table = pd.read_csv(out / "summary.csv")
    assert set(table["method"]) == {"persistence", "climatology"} and set(table["era"]) == {"2000-2020"}
    assert (out / "rmse_by_depth.png").stat().st_size > 10_000
    assert "RMSE by depth" in (out / "summary.md").read_text()


def test_observed_cell_rmse_scores_each_estimate_where_observed(run_dir, tiny_grid):
    """The like-for-like comparison with the observation error: an estimate equal to the
    truth scores 0, the climatology (zero anomaly) the truth's RMS over the observed cells."""
    from engine.osse import historical_world, observation_error, observed_cell_rmse

    grid = tiny_grid
    world = historical_world(TINY, grid, (2010, 2010))
    dims = ("time", "depth", "lat", "lon")
    truth = xr.DataArray(world.anomaly(0, 73), dims=dims, coords={"time": world.times(), **grid.coords()})
    scores = observed_cell_rmse(run_dir / "obs.nc", grid, truth, 73, {"truth": truth, "zero": 0 * truth})
    masks = np.stack([o.mask for o in obs_steps_from_file(run_dir / "obs.nc", grid, 2010, 73, 0, 73)])
    weights = grid.area[None, None] * grid.ocean[None] * masks
    by_hand = np.sqrt((weights * truth.values**2).sum(axis=(0, 2, 3)) / weights.sum(axis=(0, 2, 3)))
    np.testing.assert_allclose(scores["zero"].values, by_hand, rtol=1e-5)
    assert np.all(scores["truth"].values == 0) and np.all(scores["observations"].values > 0)
    np.testing.assert_allclose(observation_error(run_dir / "obs.nc", grid, truth, 73), scores["observations"])
    assert scores["zero"].attrs["units"] == "degC"


def test_evaluate_in_blocks_pools_to_the_whole_period_scores(run_dir, tmp_path, tiny_grid):
    """Scored 20 steps at a time (the last block short), every pooled score equals the
    pure metric on the whole period, and the files equal those of a single block; the
    members saved, the ensemble's CRPS is among them."""
    from engine.evaluate import metrics
    from engine.osse import evaluate_files, historical_world

    ens = tmp_path / "ens.nc"
    args = ["assimilate", "--config", str(run_dir / "tiny.toml"), "--model", str(run_dir / "model.pt")]
    args += ["--obs", str(run_dir / "obs.nc"), "--members", "3", "--save-members"]
    assert cli.main([*args, "--out", str(ens)]) == 0
    written = {}
    for steps in (20, 73):
        out = tmp_path / f"blocks_{steps}"
        out.mkdir()
        evaluate_files(TINY, {"deepda": ens}, out, obs_path=run_dir / "obs.nc", block_steps=steps)
        written[steps] = (xr.open_dataset(out / "metrics.nc").load(), pd.read_csv(out / "summary.csv"))
    blocks, whole = written[20][0], written[73][0]
    assert set(blocks.data_vars) == set(whole.data_vars)
    for name in whole.data_vars:
        np.testing.assert_allclose(blocks[name], whole[name], rtol=1e-5, atol=1e-7, err_msg=name)
    pd.testing.assert_frame_equal(written[20][1], written[73][1], rtol=1e-5)

    grid = tiny_grid
    world = historical_world(TINY, grid, (2010, 2010))
    dims = ("time", "depth", "lat", "lon")
    truth = xr.DataArray(world.anomaly(0, 73), dims=dims, coords={"time": world.times(), **grid.coords()})
    truth = truth.where(grid.mask() > 0)
    analysis = xr.open_dataset(ens).load()
    est, weights, mask = analysis["thetao_anomaly"], grid.weights(), grid.mask()
    direct = {
        "rmse_depth_deepda": metrics.rmse_by_depth(est, truth, weights, mask),
        "rmse_background_depth_deepda": metrics.rmse_by_depth(
            est.shift(time=1).isel(time=slice(1, None)), truth.isel(time=slice(1, None)), weights, mask
        ),
        "error_map_100m_deepda": metrics.error_map(
            est.sel(depth=100, method="nearest"), truth.sel(depth=100, method="nearest")
        ),
        "spread_skill_deepda": metrics.spread_skill_ratio(
            analysis["thetao_spread"], truth, weights, mask=mask, mean=est
        ),
        "rmse_time_deepda": metrics.rmse_over_time(est, truth, weights, (0, 700), mask),
        "crps_depth_deepda": metrics.crps_ensemble(
            analysis["thetao_anomaly_member"], truth, weights, ("time", "lat", "lon"), mask
        ),
    }
    for name, expected in direct.items():
        np.testing.assert_allclose(blocks[name], expected.drop_vars("depth", errors="ignore"), rtol=1e-5, err_msg=name)
    assert 0 < float(blocks["spread_skill_deepda"]) < 5 and blocks["rmse_depth_deepda"].attrs["units"] == "degC"
    # the CRPS is the members' mean absolute error less half their mean distance apart
    members = analysis["thetao_anomaly_member"]
    mae = metrics.weighted_mean(abs(members - truth).mean("member"), weights, ("time", "lat", "lon"), mask)
    crps = blocks["crps_depth_deepda"]
    assert bool(((crps > 0) & (crps < mae.drop_vars("depth", errors="ignore"))).all())
    assert "crps_0_700" in (tmp_path / "blocks_20" / "summary.md").read_text()


def test_osse_runs_every_method_end_to_end_on_the_tiny_grid(run_dir, tmp_path, capsys):
    out = tmp_path / "osse"
    args = ["osse", "--config", str(run_dir / "tiny.toml"), "--period", "2010", "--model", str(run_dir / "model.pt")]
    assert cli.main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for method in ("deepda", "oi", "kf", "persistence", "climatology"):
        assert (out / f"analysis_{method}.nc").exists() and method in printed
    metrics = xr.open_dataset(out / "metrics.nc")
    rmse = {m: float(metrics[f"rmse_depth_{m}"].mean()) for m in ("kf", "oi", "climatology")}
    assert rmse["kf"] < rmse["oi"] < rmse["climatology"]  # the ceiling, the classical method, the floor
    assert "| method |" in (out / "summary.md").read_text()
    # a second run reuses every finished file
    before = {p.name: p.stat().st_mtime for p in out.glob("analysis_*.nc")}
    assert cli.main([*args, "--out", str(out)]) == 0
    assert before == {p.name: p.stat().st_mtime for p in out.glob("analysis_*.nc")}


def _assert_same_steps(expected, got):
    assert [s.step for s in got] == [s.step for s in expected]
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a.anomaly, b.anomaly)
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(a.error, b.error)
        assert a.day_of_year == b.day_of_year


def test_observation_file_is_read_a_chunk_at_a_time_with_the_same_steps(run_dir, tmp_path, monkeypatch, tiny_grid):
    grid = tiny_grid
    obs = run_dir / "obs.nc"
    table, _ = io.open_observations(obs, grid=grid)
    n_profiles = table["profile_id"].nunique()
    expected = list(obs_steps(table, grid, 2010, 73, 5, 40, chunk=10))
    assert sum(float(s.mask.sum()) for s in expected) > 0

    reads = []
    real_read = io_observations.read_profiles
    monkeypatch.setattr(io_observations, "read_profiles", lambda path, *a: reads.append(a) or real_read(path, *a))
    _assert_same_steps(expected, list(obs_steps_from_file(obs, grid, 2010, 73, 5, 40, chunk=10)))
    assert len(reads) == 4  # one read per chunk of 10 steps, each a slice of the profiles
    assert all(len(range(n_profiles)[r[0]]) < n_profiles / 3 for r in reads)

    # Files without a time-ordered profile index are read once and split: same steps.
    reads.clear()
    io.write_profiles_csv(table, tmp_path / "obs.csv")
    _assert_same_steps(expected, list(obs_steps_from_file(tmp_path / "obs.csv", grid, 2010, 73, 5, 40, chunk=10)))
    backwards = table.sort_values("profile_id", ascending=False, kind="stable")  # ids follow time
    io.write_profiles(backwards, tmp_path / "backwards.nc")
    _assert_same_steps(expected, list(obs_steps_from_file(tmp_path / "backwards.nc", grid, 2010, 73, 5, 40, chunk=10)))
    assert reads == [()]  # the unordered DSG file: one whole read


def test_the_ensembles_seed_is_the_assimilations_own_setting(run_dir, tmp_path):
    from dataclasses import replace

    obs = run_dir / "obs.nc"

    def spread(name, config):
        path = assimilate_to_file("persistence", obs, tmp_path / name, config=config, members=2, period=(2010, 2010))
        return xr.open_dataset(path)["thetao_spread"].isel(time=slice(0, 5)).values

    base = spread("a.nc", TINY)
    other_network = replace(TINY, network=replace(TINY.network, seed=TINY.network.seed + 1))
    other_assimilate = replace(TINY, assimilate=replace(TINY.assimilate, seed=TINY.assimilate.seed + 1))
    np.testing.assert_array_equal(spread("b.nc", other_network), base)
    assert not np.allclose(spread("c.nc", other_assimilate), base, equal_nan=True)


def test_held_out_rmse_scores_a_model_by_depth_for_each_network_era(run_dir, tiny_grid):
    from engine.da.held_out import held_out_rmse

    table = held_out_rmse(TINY, run_dir / "model.pt", eras=(1990, 2010), spinup=10)
    assert list(table.index) == list(tiny_grid.depth)
    assert [c for c in table.columns if c.endswith("2010")] == [
        "analysis 2010", "background 2010", "observations 2010", "analysis at observed cells 2010"
    ]  # fmt: skip
    assert np.isfinite(table["analysis 1990"]).all() and (table["background 2010"] > 0).all()
