"""Observation-space validation without a truth (engine/evaluate/obs_space.py, engine/realdata.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from engine import cli, io
from engine.evaluate.obs_space import add_sums, departures, group_sums, latitude_band, statistics
from engine.observe.gridding import obs_steps, obs_steps_from_file, observation_levels
from engine.realdata import departure_blocks, observation_space_tables, withheld_scores
from tests.conftest import TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One year of tiny OSSE observations, a climatology, a persistence and a 2-member persistence analysis."""
    folder = tmp_path_factory.mktemp("obs_space")
    config = folder / "tiny.toml"
    io.write_config(TINY, config)
    obs = str(folder / "obs.nc")
    assert cli.main(["observe", "--config", str(config), "--period", "2010", "--out", obs]) == 0
    for name, extra in (("climatology", []), ("persistence", []), ("ensemble", ["--members", "2"])):
        method = "persistence" if name == "ensemble" else name
        out = str(folder / f"{name}.nc")
        assert (
            cli.main(["assimilate", "--config", str(config), "--method", method, "--obs", obs, *extra, "--out", out])
            == 0
        )
    return folder


def _all_departures(run_dir, name):
    blocks, first_year, grid = departure_blocks(run_dir / f"{name}.nc", run_dir / "obs.nc", TINY)
    return pd.concat(list(blocks)), grid


def test_climatology_departures_are_the_observed_anomalies(run_dir):
    deps, _ = _all_departures(run_dir, "climatology")
    assert len(deps) > 1000
    np.testing.assert_allclose(deps["oma"], deps["anomaly"], atol=1e-5)
    np.testing.assert_allclose(deps["omb"], deps["anomaly"], atol=1e-5)
    tables = observation_space_tables(run_dir / "climatology.nc", run_dir / "obs.nc", TINY)
    np.testing.assert_allclose(tables["depth"]["oma_rmse"], tables["depth"]["omb_rmse"], rtol=1e-6)
    assert tables["depth"]["innovation_ratio"].isna().all()  # one member: no background spread
    assert set(tables["platform"].index) == {"argo", "xbt", "ctd", "mooring", "sst"}
    assert tables["year"].index.tolist() == [2010]
    assert tables["depth"]["count"].sum() == len(deps)


def test_persistence_fits_lone_observations_and_its_background_is_the_previous_analysis(run_dir):
    deps, grid = _all_departures(run_dir, "persistence")
    cell = ["step", "k", "iy", "ix"]
    lone = deps.groupby(cell)["oma"].transform("size") == 1
    assert lone.sum() > 100
    # persistence puts a lone observation's value in its cell: O-A is 0 only if step and cell line up
    assert np.abs(deps.loc[lone, "oma"]).max() < 1e-4
    analysis = xr.open_dataset(run_dir / "persistence.nc")["thetao_anomaly"].fillna(0.0).values
    later = deps[deps["step"] > 0].sample(200, random_state=0)
    previous = analysis[later["step"] - 1, later["k"], later["iy"], later["ix"]]
    np.testing.assert_allclose(later["omb"], later["anomaly"] - previous, atol=1e-5)
    first = deps[deps["step"] == 0]
    np.testing.assert_allclose(first["omb"], first["anomaly"], atol=1e-6)  # the climatology starts the run
    tables = observation_space_tables(run_dir / "persistence.nc", run_dir / "obs.nc", TINY)
    assert (tables["depth"]["oma_rmse"] < tables["depth"]["omb_rmse"]).all()


def test_an_ensemble_gives_an_innovation_ratio(run_dir):
    tables = observation_space_tables(run_dir / "ensemble.nc", run_dir / "obs.nc", TINY)
    ratio = tables["depth"]["innovation_ratio"]
    assert np.isfinite(ratio).all() and (ratio > 0).all()


def test_statistics_add_up_block_by_block_and_the_ratio_is_one_when_errors_are_right():
    rng = np.random.default_rng(0)
    n, sigma_b, sigma_o = 20_000, 0.4, 0.3
    levels = pd.DataFrame(
        {
            "step": rng.integers(0, 4, n),
            "k": rng.integers(0, 2, n),
            "iy": 0,
            "ix": 0,
            "anomaly": rng.normal(0, np.hypot(sigma_b, sigma_o), n),
            "error": sigma_o,
            "platform": rng.choice(["argo", "xbt"], n),
            "profile_id": np.arange(n),
            "lat": rng.uniform(-60, 60, n),
            "lon": 0.0,
        }
    )
    zeros = np.zeros((4, 2, 1, 1), "f4")
    deps = departures(levels, zeros, zeros, np.full((4, 2, 1, 1), sigma_b, "f4"))
    depth = np.array([5.0, 100.0])
    whole = statistics(group_sums(deps, "depth", depth, 73, 2000))
    halves = add_sums(
        group_sums(deps.iloc[: n // 2], "depth", depth, 73, 2000),
        group_sums(deps.iloc[n // 2 :], "depth", depth, 73, 2000),
    )
    pd.testing.assert_frame_equal(statistics(halves), whole)
    assert np.allclose(whole["innovation_ratio"], 1.0, atol=0.05)
    assert whole["count"].sum() == n
    np.testing.assert_allclose(whole["omb_rmse"], np.sqrt(deps.groupby("k")["omb"].apply(lambda x: (x**2).mean())))
    # a later block of steps: the same observations against step-offset fields
    assert len(departures(levels, zeros[:2], first_step=2)) == int((levels["step"] >= 2).sum())
    assert list(latitude_band(np.array([-30.0, 0.0, 45.0]))) == [
        "southern_extratropics",
        "tropics",
        "northern_extratropics",
    ]


def test_withheld_profiles_are_left_out_of_the_run_and_written_apart(run_dir, tmp_path):
    from engine.da.reanalysis import assimilate_to_file, withheld_path
    from engine.observe.withhold import Withholding

    obs = run_dir / "obs.nc"
    out = tmp_path / "held.nc"
    withhold = Withholding(fraction=0.3, platforms=("mooring",), seed=1)
    assimilate_to_file("persistence", obs, out, config=TINY, withhold=withhold)
    held, _ = io.open_observations(withheld_path(out))
    table, _ = io.open_observations(obs)
    share = held["profile_id"].nunique() / table["profile_id"].nunique()
    assert 0.3 < share < 0.5 and (held["platform"] == "mooring").sum() == (table["platform"] == "mooring").sum()
    assert xr.open_dataset(out).attrs["withheld_observations"].startswith("0.3 of the profiles (seed 1)")
    # the run never saw them: its observation steps are those of the table without them
    grid = io.load_grid(TINY.grid)
    with_held = obs_steps_from_file(obs, grid, 2010, 73, 0, 73, withheld=withhold.withheld)
    kept = table[~withhold.withheld(table)]
    for a, b in zip(with_held, obs_steps(kept, grid, 2010, 73, 0, 73), strict=True):
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_allclose(a.anomaly, b.anomaly, atol=1e-6)
    assert kept["profile_id"].nunique() + held["profile_id"].nunique() == table["profile_id"].nunique()
    # scored at the withheld observations, by depth band, beside the climatology
    scores = withheld_scores({"persistence": out}, withheld_path(out), TINY)
    assert list(scores.index) == ["persistence", "climatology", "observations"]
    assert list(scores.columns) == ["0-200 m", "200-700 m", "700-2000 m"]
    levels = observation_levels(held, grid, 2010, 73, 0, 73)
    upper = levels[grid.depth[levels["k"]] <= 200.0]
    assert scores.loc["observations", "0-200 m"] == len(upper)
    assert scores.loc["climatology", "0-200 m"] == pytest.approx(np.sqrt((upper["anomaly"] ** 2).mean()), rel=1e-6)
    assert np.isfinite(scores.loc["persistence"]).all()


def test_assimilate_withhold_flag_writes_the_withheld_file_and_refuses_bad_values(run_dir, tmp_path, capsys):
    base = ["assimilate", "--config", str(run_dir / "tiny.toml"), "--method", "climatology"]
    base += ["--obs", str(run_dir / "obs.nc")]
    out = tmp_path / "a.nc"
    assert cli.main([*base, "--withhold", "0.2,argo", "--out", str(out)]) == 0
    capsys.readouterr()  # the run's progress lines
    held, _ = io.open_observations(tmp_path / "a.withheld.nc")
    assert "argo" in set(held["platform"]) and len(set(held["platform"])) > 1
    for bad, message in (("1.5", "below 1"), ("0.1,gliders", "unknown platform")):
        assert cli.main([*base, "--withhold", bad, "--out", str(tmp_path / "b.nc")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not (tmp_path / "b.nc").exists() and not (tmp_path / "b.withheld.nc").exists()


def test_evaluate_scores_real_observations_in_observation_space_and_on_withheld_ones(run_dir, tmp_path, capsys):
    # observations that are not an OSSE's (here the OSSE file as a plain CSV): no truth to regenerate
    table, _ = io.open_observations(run_dir / "obs.nc")
    csv = tmp_path / "obs.csv"
    io.write_profiles_csv(table, csv)
    config = str(run_dir / "tiny.toml")
    analysis = tmp_path / "a.nc"
    run = ["assimilate", "--config", config, "--method", "persistence", "--obs", str(csv), "--withhold", "0.3"]
    assert cli.main([*run, "--out", str(analysis)]) == 0
    out = tmp_path / "scores"
    evaluate = ["evaluate", "--config", config, "--analysis", f"persistence={analysis}", "--obs", str(csv)]
    assert cli.main([*evaluate, "--withheld", str(tmp_path / "a.withheld.nc"), "--out", str(out)]) == 0
    capsys.readouterr()
    written = sorted(p.name for p in out.iterdir())
    assert "metrics.nc" not in written  # no truth was made up
    assert {"obs_space_depth.csv", "obs_space_platform.csv", "withheld_scores.csv"} <= set(written)
    depth = pd.read_csv(out / "obs_space_depth.csv", index_col=0)
    assert (depth["oma_rmse"] < depth["omb_rmse"]).all() and depth["count"].gt(0).all()
    scores = pd.read_csv(out / "withheld_scores.csv", index_col=0)
    assert list(scores.index) == ["persistence", "climatology", "observations"]
    # an OSSE file still gets its truth scores too
    osse = [
        "evaluate",
        "--config",
        config,
        "--analysis",
        str(run_dir / "climatology.nc"),
        "--obs",
        str(run_dir / "obs.nc"),
    ]
    assert cli.main([*osse, "--out", str(tmp_path / "osse")]) == 0
    assert {"metrics.nc", "obs_space_depth.csv"} <= {p.name for p in (tmp_path / "osse").iterdir()}


def test_desroziers_recovers_the_true_observation_error_where_the_stated_one_is_wrong():
    rng = np.random.default_rng(5)
    n, sigma_b, sigma_o, stated = 40_000, 1.0, 0.7, 0.3
    truth = rng.normal(0, sigma_b, n)
    obs = truth + rng.normal(0, sigma_o, n)
    gain = sigma_b**2 / (sigma_b**2 + sigma_o**2)  # the optimal analysis from a zero background
    levels = pd.DataFrame(
        {"step": 0, "k": 0, "iy": 0, "ix": np.arange(n), "anomaly": obs, "error": stated, "platform": "argo",
         "profile_id": np.arange(n), "lat": 0.0, "lon": 0.0}
    )  # fmt: skip
    analysis = (gain * obs).reshape(1, 1, 1, n)
    deps = departures(levels, analysis, np.zeros_like(analysis))
    table = statistics(group_sums(deps, "depth", np.array([5.0]), 73, 2000))
    assert table["desroziers_error"].iloc[0] == pytest.approx(sigma_o, rel=0.03)
    assert table["stated_error"].iloc[0] == pytest.approx(stated)


def test_floats_are_withheld_whole_by_their_wmo_number():
    from engine.observe.withhold import Withholding, float_keys

    wmo = np.repeat(np.arange(1_900_000, 1_900_040), 25)  # 40 floats of 25 cycles each
    cycle = np.tile(np.arange(25), 40)
    table = pd.DataFrame(
        {
            "profile_id": np.concatenate([wmo * 1_000_000 + cycle * 100, np.arange(200)]),
            "platform": pd.Categorical(["argo"] * len(wmo) + ["xbt"] * 200),
        }
    )
    held = Withholding(float_fraction=0.25, seed=3).withheld(table)
    per_float = held[: len(wmo)].reshape(40, 25)
    assert (per_float == per_float[:, :1]).all()  # a float is withheld whole or not at all
    assert 5 <= per_float[:, 0].sum() <= 16 and not held[len(wmo) :].any()  # about a quarter; XBTs untouched
    other_seed = Withholding(float_fraction=0.25, seed=4).withheld(table)[: len(wmo)].reshape(40, 25)[:, 0]
    assert (other_seed != per_float[:, 0]).any()
    assert "0.25 of the Argo floats (seed 3)" in Withholding(float_fraction=0.25, seed=3).describe()
    # chosen from the file's floats: exactly the share, rounded, whole floats, named
    chosen = Withholding(float_fraction=0.25, seed=3).choose_floats(float_keys(table))
    assert len(chosen.floats) == 10
    per_float = chosen.withheld(table)[: len(wmo)].reshape(40, 25)
    assert (per_float == per_float[:, :1]).all() and per_float[:, 0].sum() == 10
    assert str(chosen.floats[0]) in chosen.describe()


def test_a_share_of_a_few_floats_withholds_at_least_one():
    from engine.observe.withhold import Withholding

    for n in (1, 3, 16):  # 0.8**16: one seed in 35 would otherwise withhold none of 16 floats
        for seed in range(40):
            chosen = Withholding(float_fraction=0.2, seed=seed).choose_floats(np.arange(1_900_000, 1_900_000 + n))
            assert len(chosen.floats) == max(1, round(0.2 * n))


def test_the_fitted_heave_is_the_one_behind_the_departures():
    from engine.realdata import fitted_heave

    g2 = np.array([1e-4, 4e-3, 1e-2, 2e-5])  # |dT/dz|^2 of four levels
    known = np.array([0.01, 0.02, 0.0025, 0.01])
    levels = pd.DataFrame({"count": [300, 200, 100, 50], "d": known + 18.0**2 * g2, "known": known, "g2": g2})
    assert fitted_heave(levels) == pytest.approx(18.0, rel=1e-6)
    assert fitted_heave(levels.assign(d=known * 0.5)) == 0.0  # departures smaller than the known errors: no heave


def test_calibrate_obs_writes_a_config_with_the_fitted_heave(run_dir, tmp_path, capsys):
    out = tmp_path / "errors.toml"
    argv = ["calibrate", "--config", str(run_dir / "tiny.toml"), "--obs", str(run_dir / "obs.nc")]
    assert cli.main([*argv, "--out", str(out)]) == 2  # no analysis to take departures from
    assert "--analysis" in capsys.readouterr().err and not out.exists()
    assert cli.main([*argv, "--analysis", str(run_dir / "persistence.nc"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    fitted = io.read_config(out)
    assert f"heave_m = {fitted.obs_error.heave_m:.1f} m" in printed and "desroziers_error" in printed
    assert fitted.grid == TINY.grid and fitted.obs_error.floor == TINY.obs_error.floor  # only the heave moves


def test_the_default_period_is_the_years_whose_rows_pass_qc(tmp_path):
    # a file read with --period keeps the rows outside it, flagged: they are no observed year
    from engine.config import Config
    from engine.da.reanalysis import years_with_observations

    source = tmp_path / "rows.csv"
    rows = [f"{y}-03-01,30,200,{d},20,0.05" for y in (2003, 2005) for d in (5, 10)]
    source.write_text("time,lat,lon,depth,temperature,obs_error\n" + "\n".join(rows) + "\n")
    out = tmp_path / "obs.nc"
    assert cli.main(["observe", "--read", str(source), "--period", "2005", "--out", str(out)]) == 0
    assert set(io.open_observations(out)[0]["time"].dt.year) == {2003, 2005}
    assert years_with_observations(out, io.load_grid(Config().grid)) == [2005]
