"""OSSE observing networks: positions, platform histories, sampling and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import NetworkSpec
from engine.grid import corner_weights, nearest_cell, step_day_of_year, step_times, time_to_step
from engine.observe.gridding import table_steps
from engine.observe.network import ObservingNetwork, cell_value, climatology_at, observe, yearly_counts
from engine.observe.platforms import MOORING_ARRAYS, Moorings
from engine.observe.profiles import COLUMNS

DOY = step_day_of_year(73, 73)  # centre day of each pentad

NO_ERRORS = tuple((p, 0.0) for p in ("argo", "ctd", "mooring", "xbt", "sst"))
MAX_DEPTH = {"argo": 2000.0, "xbt": 760.0, "ctd": np.inf, "mooring": 500.0}


class FakeWorld:
    """Stand-in for engine.world.synthetic.ModelWorld: a smooth anomaly on top of climatology + season."""

    def __init__(self, grid, start_year=2010, n_steps=4, steps_per_year=73, calendar="standard"):
        self.grid, self.start_year, self.n_steps = grid, start_year, n_steps
        self.steps_per_year, self.calendar, self.run = steps_per_year, calendar, "historical"

    def times(self, start, stop):
        return step_times(self.start_year, stop - start, self.steps_per_year, self.calendar, start)

    def anomaly(self, start, stop):
        steps = np.arange(start, stop)[:, None, None, None]
        lat = np.deg2rad(self.grid.lat)[None, None, :, None]
        decay = np.exp(-self.grid.depth / 300.0)[None, :, None, None]
        return (np.sin(0.5 * steps + 3 * lat) * decay * self.grid.ocean).astype("f4")

    def temperature(self, start, stop):
        doy = step_day_of_year(stop - start, self.steps_per_year, start)
        out = self.grid.climatology + self.grid.seasonal_anomaly(doy) + self.anomaly(start, stop)
        return np.where(self.grid.ocean, out, np.nan).astype("f4")


@pytest.fixture(scope="module")
def coarse_net(coarse_grid):
    return ObservingNetwork(coarse_grid, NetworkSpec())


def _level(grid, depth):
    return np.abs(grid.depth[None, :] - np.asarray(depth)[:, None]).argmin(axis=1)


@pytest.mark.parametrize("year", [1985, 1999, 2012])
def test_positions_are_in_the_ocean_above_the_sea_floor(coarse_grid, coarse_net, year):
    pos = coarse_net.positions(year, 40, 73)
    assert len(pos) > 0 and list(pos.columns) == ["time", "lat", "lon", "depth", "platform", "obs_error", "profile_id"]
    iy, ix = nearest_cell(coarse_grid, pos["lat"].to_numpy(), pos["lon"].to_numpy())
    assert coarse_grid.ocean[_level(coarse_grid, pos["depth"]), iy, ix].all()
    assert pos["lon"].between(0, 360).all() and pos["lat"].between(-90, 90).all()
    for platform, zmax in MAX_DEPTH.items():
        assert (pos.loc[pos["platform"] == platform, "depth"] <= zmax).all()
    sst = pos[pos["platform"] == "sst"]
    assert (sst["depth"] == coarse_grid.depth[0]).all() and sst["profile_id"].is_unique
    # every profile runs from the top level down without gaps, and starts at the surface
    first = pos.groupby("profile_id")["depth"].min()
    assert (first == coarse_grid.depth[0]).all()
    assert set(time_to_step(pos["time"], year, 73)) == {40}


def test_positions_work_on_the_tiny_grid(tiny_grid):
    net = ObservingNetwork(tiny_grid, NetworkSpec())
    pos = net.positions(2010, 3, 73)
    iy, ix = nearest_cell(tiny_grid, pos["lat"].to_numpy(), pos["lon"].to_numpy())
    assert tiny_grid.ocean[_level(tiny_grid, pos["depth"]), iy, ix].all()
    assert set(pos["platform"].unique()) >= {"argo", "sst"}


def test_platform_eras(coarse_grid, coarse_net):
    counts = yearly_counts(coarse_net, [1982, 1996, 1998, 2003, 2010], 73)
    assert counts.loc[1982, "argo"] == 0 and counts.loc[1996, "argo"] == 0 and counts.loc[2003, "argo"] > 0
    assert counts.loc[1982, "mooring"] == 0 and counts.loc[1996, "mooring"] > 0
    assert (counts["sst"] > 0).all() and (counts["xbt"] > 0).all() and (counts["ctd"] > 0).all()

    def mooring_lons(year):
        lon = np.concatenate([coarse_net.casts(year, s, 73)["mooring"].lon for s in range(0, 73, 6)])
        return lon

    atlantic = lambda lon: (lon > 290) | (lon < 20)  # noqa: E731  PIRATA
    indian = lambda lon: (lon > 45) & (lon < 110)  # noqa: E731  RAMA
    assert not atlantic(mooring_lons(1996)).any() and atlantic(mooring_lons(1998)).any()
    assert not indian(mooring_lons(2003)).any() and indian(mooring_lons(2010)).any()


def test_mooring_arrays_have_their_real_sizes(coarse_grid):
    sites = Moorings(coarse_grid)
    sizes = {name: int((sites.array == i).sum()) for i, name in enumerate(MOORING_ARRAYS)}
    assert 60 <= sizes["tao"] <= 75 and 15 <= sizes["pirata"] <= 22 and 25 <= sizes["rama"] <= 35


def test_yearly_counts_follow_the_real_network(coarse_net):
    counts = yearly_counts(coarse_net, [1990, 2000, 2010], 73)
    print("\n" + counts.to_string())
    assert 100_000 <= counts.loc[2010, "argo"] <= 160_000  # ~3000+ floats, a profile every 10 days
    assert 0 < counts.loc[2000, "argo"] < 10_000
    assert 45_000 <= counts.loc[1990, "xbt"] <= 65_000 and 15_000 <= counts.loc[2010, "xbt"] <= 30_000
    assert 1_000 <= counts.loc[2010, "ctd"] <= 10_000
    assert counts.loc[1990, "xbt"] > 10 * counts.loc[1990, "ctd"]  # XBTs: the main subsurface source then


def test_denial_removes_platforms(coarse_grid):
    net = ObservingNetwork(coarse_grid, NetworkSpec(deny=("argo", "xbt")))
    pos = net.positions(2010, 5, 73)
    assert not pos["platform"].isin(["argo", "xbt"]).any()
    assert pos["platform"].isin(["sst", "ctd"]).any()
    assert list(yearly_counts(net, [2010], 73).columns) == ["ctd", "mooring", "sst"]


def test_positions_are_deterministic_and_order_free(coarse_grid, coarse_net):
    again = ObservingNetwork(coarse_grid, NetworkSpec())
    again.positions(2007, 12, 73)  # asking another step first changes nothing
    pd.testing.assert_frame_equal(coarse_net.positions(2007, 11, 73), again.positions(2007, 11, 73))
    assert not coarse_net.positions(2007, 11, 73)["lat"].equals(coarse_net.positions(2007, 13, 73)["lat"])
    other_seed = ObservingNetwork(coarse_grid, NetworkSpec(seed=99)).positions(2007, 11, 73)
    assert not other_seed["lat"].equals(again.positions(2007, 11, 73)["lat"])


def test_argo_floats_drift_slowly(coarse_net):
    fleet = coarse_net._builder("argo")
    alive = fleet.n_cycles > 50
    dlat = np.abs(np.diff(fleet.lat[alive, :50], axis=1))
    assert np.median(dlat) < 0.5 and dlat.max() < 2.0  # ~30 km per 10-day cycle, never jumping


def test_sample_is_the_truth_at_grid_points_without_error(tiny_grid):
    net = ObservingNetwork(tiny_grid, NetworkSpec(errors=NO_ERRORS))
    k, j, i = np.nonzero(tiny_grid.ocean)
    pos = pd.DataFrame(
        {"lat": tiny_grid.lat[j], "lon": tiny_grid.lon[i], "depth": tiny_grid.depth[k].astype("f4"), "obs_error": 0.0}
    )
    pos["platform"] = pd.Categorical(["argo"] * len(pos), dtype=COLUMNS["platform"])
    world = FakeWorld(tiny_grid)
    truth = world.temperature(1, 2)[0]
    values = net.sample(world.anomaly(1, 2)[0], pos, np.random.default_rng(0), DOY[1])
    np.testing.assert_allclose(values, truth[k, j, i], rtol=0, atol=1e-5)


def test_sample_is_climatology_at_the_point_plus_the_cell_anomaly(coarse_grid):
    net = ObservingNetwork(coarse_grid, NetworkSpec(errors=NO_ERRORS))
    anomaly = np.where(coarse_grid.ocean, 0.0, np.nan) + np.arange(72)[None, None, :] % 2  # 0/1 alternating in lon
    pos = pd.DataFrame({"lat": [-42.5, -42.5], "lon": [0.5, 359.5], "depth": [5.0, 10.0], "obs_error": 0.0})
    pos["platform"] = pd.Categorical(["argo"] * 2, dtype=COLUMNS["platform"])
    values = net.sample(anomaly.astype("f4"), pos, np.random.default_rng(0), DOY[0])
    clim = climatology_at(
        coarse_grid, pos["lat"].to_numpy(), pos["lon"].to_numpy(), pos["depth"].to_numpy(), DOY[[0, 0]]
    )
    np.testing.assert_allclose(values - clim, [0.0, 1.0], atol=1e-5)  # each point takes its own cell's anomaly


def test_corner_weights_are_bilinear_and_periodic_in_longitude(coarse_grid):
    field = np.where(coarse_grid.ocean, 0.0, np.nan) + np.arange(72)[None, None, :] % 2  # 0/1 alternating in lon
    # halfway between lon 357.5 (x=71 -> 1) and 2.5 (x=0 -> 0) in the open band at 42.5S
    cells, weights = corner_weights(coarse_grid, np.array([-42.5]), np.array([0.0]), np.array([5.0]))
    value = (weights * field.reshape(-1)[cells]).sum(axis=0)
    assert value[0] == pytest.approx(0.5)
    assert weights.sum() == pytest.approx(1.0)


def test_observation_errors_have_the_specified_spread(coarse_grid, coarse_net):
    world = FakeWorld(coarse_grid)
    pos = coarse_net.positions(2010, 0, 73)
    values = coarse_net.sample(world.anomaly(0, 1)[0], pos, np.random.default_rng(5), DOY[0])
    where = (pos["lat"].to_numpy(), pos["lon"].to_numpy(), pos["depth"].to_numpy())
    exact = climatology_at(coarse_grid, *where, np.full(len(pos), DOY[0]))
    exact += cell_value(world.anomaly(0, 1)[0], coarse_grid, *where)
    for platform in ("argo", "sst"):
        sel = (pos["platform"] == platform).to_numpy()
        diff = values[sel] - exact[sel]
        assert abs(diff.std() / NetworkSpec().error(platform) - 1) < 0.06, platform
        assert abs(diff.mean()) < 0.02


def test_flat_errors_shrink_on_finer_grids_and_modelled_ones_do_not(coarse_grid, tiny_grid):
    flat = NetworkSpec(errors=(("argo", 0.2), ("ctd", 0.2), ("mooring", 0.2), ("xbt", 0.3), ("sst", 0.3)))
    assert ObservingNetwork(coarse_grid, flat).error("xbt") == pytest.approx(0.3)
    assert ObservingNetwork(tiny_grid, flat).error("xbt") == pytest.approx(0.3)  # no inflation when coarser
    from engine.config import ObsErrorSpec, preset
    from engine.grid import build_grid
    from engine.io import load_geography

    medium = build_grid(preset("medium").grid, load_geography())
    assert ObservingNetwork(medium, flat).error("argo") == pytest.approx(0.2 * np.sqrt(0.5))
    # with a representativeness model the platform error is the instrument's, on any grid
    modelled = ObservingNetwork(medium, NetworkSpec(), obs_error=ObsErrorSpec())
    assert modelled.error("argo") == pytest.approx(NetworkSpec().error("argo"))


def test_xbt_bias_is_warm_in_the_thermocline(coarse_grid):
    world = FakeWorld(coarse_grid)
    truth = world.anomaly(0, 1)[0]
    plain = ObservingNetwork(coarse_grid, NetworkSpec(errors=NO_ERRORS))
    biased = ObservingNetwork(coarse_grid, NetworkSpec(errors=NO_ERRORS, xbt_bias=True))
    pos = plain.positions(1990, 0, 73)
    rng = np.random.default_rng(0)
    diff = biased.sample(truth, pos, rng, DOY[0]) - plain.sample(truth, pos, rng, DOY[0])
    xbt = (pos["platform"] == "xbt").to_numpy()
    thermocline = xbt & pos["depth"].between(100, 300).to_numpy()
    assert diff[thermocline].mean() > 0.1 and np.all(diff[~xbt] == 0)


def test_observe_samples_the_world_in_chunks(coarse_grid):
    world = FakeWorld(coarse_grid, n_steps=3)
    net = ObservingNetwork(coarse_grid, NetworkSpec(errors=NO_ERRORS))
    done = []
    table = observe(world, net, 1, 3, progress=done.append)
    assert sum(done) == 2 and list(table.columns) == list(COLUMNS)
    assert (table.dtypes.astype(str) == pd.Series({k: str(v) for k, v in COLUMNS.items()})).all()
    assert (table["qc"] == 0).all() and table["temperature"].notna().all()
    steps = time_to_step(table["time"], 2010, 73)
    assert set(steps) == {1, 2}
    # the same step observed on its own gives the same rows (positions and errors are per step)
    pd.testing.assert_frame_equal(table[steps == 2].reset_index(drop=True), observe(world, net, 2, 3))
    # error-free observations of step 2 equal the world sampled there
    pos = net.positions(2010, 2, 73)
    expected = net.sample(world.anomaly(2, 3)[0], pos, np.random.default_rng(0), DOY[2])
    np.testing.assert_allclose(table.loc[steps == 2, "temperature"].to_numpy(), expected, atol=1e-5)


def test_observe_a_control_world_in_model_years(coarse_grid):
    world = FakeWorld(coarse_grid, start_year=1, n_steps=2, calendar="noleap")
    net = ObservingNetwork(coarse_grid, NetworkSpec())
    table = observe(world, net, 0, 2, network_start_year=2010)
    assert type(table["time"].iloc[0]).__name__ == "DatetimeNoLeap"
    assert table["time"].iloc[0].year == 1
    assert set(table_steps(table["time"].to_numpy(), 1, 73)) == {0, 1}
    assert (table["platform"] == "argo").any()  # the 2010 network observed model year 1


def test_monthly_steps_map_back_to_their_month(coarse_net):
    for step in (0, 1, 11):
        pos = coarse_net.positions(2008, step, 12)  # a leap year
        assert set(time_to_step(pos["time"], 2008, 12)) == {step}
    assert coarse_net.count(2010, 0, 12)["argo"] > 2.5 * coarse_net.count(2010, 0, 73)["argo"]


def test_the_real_model_world_observed_with_jittered_depths(tiny_grid):
    from engine.config import WorldSpec
    from engine.observe.gridding import grid_profiles
    from engine.world.synthetic import ModelWorld

    world = ModelWorld(tiny_grid, WorldSpec(), run="control", n_steps=3)
    net = ObservingNetwork(tiny_grid, NetworkSpec(), depth_jitter=0.5)
    table = observe(world, net, 0, 3, network_start_year=2015)
    assert table["temperature"].notna().all() and table["temperature"].between(-3, 35).all()
    off_level = ~np.isin(table["depth"].to_numpy(), tiny_grid.depth.astype("f4"))
    assert off_level.mean() > 0.9
    ds = grid_profiles(table, tiny_grid, world.start_year, 73, 0, 3)
    mask = ds["obs_mask"].values > 0
    assert (mask.sum(axis=(0, 2, 3)) > 0).all()  # every level observed despite the jitter
    assert np.abs(ds["obs_anomaly"].values[mask]).max() < 5.0
