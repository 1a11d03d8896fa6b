"""Gridding profile tables into super-observations, checked against hand computations."""

from __future__ import annotations

import cftime
import numpy as np
import pandas as pd
import pytest

from engine.config import NetworkSpec
from engine.grid import step_day_of_year
from engine.observe.gridding import grid_profiles, grid_step, table_steps
from engine.observe.network import ObservingNetwork, observe
from engine.observe.profiles import as_table

DOY = step_day_of_year(73, 73)  # centre day of each pentad


def _deep_cells(grid, n=2):
    """(j, i) of the first ``n`` cells that are ocean at every level."""
    j, i = np.nonzero(grid.ocean.all(axis=0))
    return list(zip(j[:n], i[:n], strict=True))


def _profile(pid, lat, lon, time, depths, temps, error=0.2, qc=0):
    n = len(depths)
    return pd.DataFrame(
        {"time": [np.datetime64(time)] * n, "lat": lat, "lon": lon, "depth": depths, "temperature": temps,
         "platform": "argo", "obs_error": error, "profile_id": pid, "qc": qc}
    )  # fmt: skip


def _expected(grid, step, k, j, i):
    """Climatology + seasonal cycle at a cell centre in pentad ``step``."""
    return float(grid.climatology[k, j, i] + grid.seasonal_anomaly([DOY[step]])[0, k, j, i])


@pytest.fixture
def hand_table(tiny_grid):
    (j, i), (j2, i2) = _deep_cells(tiny_grid)
    lat, lon, lat2, lon2 = tiny_grid.lat[j], tiny_grid.lon[i], tiny_grid.lat[j2], tiny_grid.lon[i2]
    profiles = [
        # A: exactly at the 10 m and 100 m levels, pentad 0, error 0.1
        _profile(1, lat, lon, "2001-01-02", [10.0, 100.0], [20.0, 15.0], error=0.1),
        # B: same cell and pentad, measured at 0 m and 320 m; 320 m lies in the 500 m level's
        #    layer (300-1000 m) so it counts for it; nothing reaches the 1500 m level
        _profile(2, lat, lon, "2001-01-04", [0.0, 320.0], [21.0, 9.0], error=0.2),
        # C: flagged bad everywhere: ignored
        _profile(3, lat2, lon2, "2001-01-03", [10.0, 100.0], [99.0, 99.0], qc=2),
        # D: second cell, pentad 1, deepest at 100 m: nothing at 500 m (its layer starts at 300 m)
        _profile(4, lat2, lon2, "2001-01-07", [100.0, 10.0], [12.0, 18.0]),  # given deep to shallow
    ]
    return as_table(pd.concat(profiles, ignore_index=True)), (j, i), (j2, i2)


def test_hand_made_profiles_give_hand_computed_super_observations(tiny_grid, hand_table):
    table, (j, i), (j2, i2) = hand_table
    ds = grid_profiles(table, tiny_grid, 2001, 73, 0, 3)
    assert set(ds.data_vars) == {"obs_anomaly", "obs_mask", "obs_count", "obs_error"}
    assert all(v.dtype == np.float32 and v.dims == ("time", "depth", "lat", "lon") for v in ds.data_vars.values())
    anomaly, mask, count, error = (ds[v].values for v in ("obs_anomaly", "obs_mask", "obs_count", "obs_error"))
    b10, b100 = 21.0 + (9.0 - 21.0) * 10 / 320, 21.0 + (9.0 - 21.0) * 100 / 320  # B interpolated
    for k, a, b in ((0, 20.0, b10), (1, 15.0, b100)):
        e = _expected(tiny_grid, 0, k, j, i)
        want = (100 * (a - e) + 25 * (b - e)) / 125  # inverse-variance weights 1/0.1^2, 1/0.2^2
        assert anomaly[0, k, j, i] == pytest.approx(want, abs=1e-4)
        assert count[0, k, j, i] == 2 and mask[0, k, j, i] == 1
        assert error[0, k, j, i] == pytest.approx(1 / np.sqrt(125), rel=1e-5)
    assert anomaly[0, 2, j, i] == pytest.approx(9.0 - _expected(tiny_grid, 0, 2, j, i), abs=1e-4)
    assert count[0, 2, j, i] == 1 and error[0, 2, j, i] == pytest.approx(0.2)
    assert mask[0, 3, j, i] == 0  # no extrapolation below the deepest measurement
    # D in pentad 1 only; C (bad) contributes nothing
    assert mask[0, :, j2, i2].sum() == 0 and mask[2].sum() == 0
    assert anomaly[1, 0, j2, i2] == pytest.approx(18.0 - _expected(tiny_grid, 1, 0, j2, i2), abs=1e-4)
    assert list(mask[1, :, j2, i2]) == [1, 1, 0, 0]
    assert mask.sum() == 3 + 2 and count.sum() == 2 + 2 + 1 + 2
    assert (anomaly[mask == 0] == 0).all() and (error[mask == 0] == 0).all()


def test_qc_flags_are_respected_row_by_row(tiny_grid, hand_table):
    table, (j, i), _ = hand_table
    table.loc[table["profile_id"] == 1, "qc"] = np.array([0, 6], dtype="i1")  # A's 100 m row flagged
    ds = grid_profiles(table, tiny_grid, 2001, 73, 0, 1)
    # level 100 m: only B remains (A's 10 m row is outside the 100 m level's 55-300 m layer)
    assert ds["obs_count"].values[0, 1, j, i] == 1


def test_grid_step_matches_grid_profiles(tiny_grid, hand_table):
    table, *_ = hand_table
    ds = grid_profiles(table, tiny_grid, 2001, 73, 0, 1)
    first_pentad = table[(table["time"] < np.datetime64("2001-01-06")) & (table["qc"] == 0)]
    one = grid_step(first_pentad.drop(columns="qc"), tiny_grid, DOY[0])  # positions + temperature, no qc
    for name, values in one.items():
        np.testing.assert_array_equal(values, ds[name].values[0])


def test_noleap_tables_grid_like_standard_ones(tiny_grid, hand_table):
    table, *_ = hand_table
    standard = grid_profiles(table, tiny_grid, 2001, 73, 0, 3)  # 2001 has no leap day
    model = table.copy()
    model["time"] = [cftime.DatetimeNoLeap(1, t.month, t.day, t.hour) for t in table["time"]]
    noleap = grid_profiles(model, tiny_grid, 1, 73, 0, 3)
    for name in standard.data_vars:
        np.testing.assert_array_equal(standard[name].values, noleap[name].values)
    assert isinstance(noleap["time"].values[0], cftime.DatetimeNoLeap)
    times = np.array([cftime.DatetimeNoLeap(3, 1, 1), cftime.DatetimeNoLeap(3, 12, 31, 23)])
    assert list(table_steps(times, 1, 73)) == [146, 218] and list(table_steps(times, 1, 12)) == [24, 35]


def test_steps_outside_the_window_are_ignored(tiny_grid, hand_table):
    table, _, (j2, i2) = hand_table
    ds = grid_profiles(table, tiny_grid, 2001, 73, first_step=1, n_steps=1)
    assert ds["obs_mask"].values.sum() == 2 and ds["obs_mask"].values[0, 0, j2, i2] == 1
    assert ds["time"].values[0] == np.datetime64("2001-01-08T12:00")


def test_observed_level_anomalies_come_back_exactly(coarse_grid):
    """A world whose anomaly is uniform per level, observed without error, grids back to it:
    sampling and climatology removal use the same interpolation at every position."""

    class LevelWorld:
        start_year, steps_per_year, calendar, n_steps = 2010, 73, "standard", 2
        shift = np.linspace(1.0, -0.5, coarse_grid.shape[0]).astype("f4")

        def anomaly(self, start, stop):
            out = np.broadcast_to(self.shift[:, None, None], coarse_grid.shape)[None].repeat(stop - start, axis=0)
            return np.where(coarse_grid.ocean, out, 0.0).astype("f4")

    errors = tuple((p, 0.0) for p in ("argo", "ctd", "mooring", "xbt", "sst"))
    net = ObservingNetwork(coarse_grid, NetworkSpec(errors=errors))
    ds = grid_profiles(observe(LevelWorld(), net, 0, 2), coarse_grid, 2010, 73, 0, 2)
    mask = ds["obs_mask"].values > 0
    assert mask.sum() > 10_000 and not (mask & ~coarse_grid.ocean).any()
    shift = np.broadcast_to(LevelWorld.shift[None, :, None, None], mask.shape)
    np.testing.assert_allclose(ds["obs_anomaly"].values[mask], shift[mask], atol=2e-4)


def test_an_argo_era_pentad_grids_quickly_enough_to_train_on(coarse_grid):
    net = ObservingNetwork(coarse_grid, NetworkSpec())
    pos = net.positions(2012, 30, 73)
    pos["temperature"] = net.sample(np.zeros(coarse_grid.shape, "f4"), pos, np.random.default_rng(1), DOY[30])
    fields = grid_step(pos, coarse_grid, DOY[30])
    assert 1_000 < (pos.drop_duplicates("profile_id")["platform"] == "argo").sum() < 2_500
    assert fields["obs_mask"].shape == coarse_grid.shape and fields["obs_count"].sum() <= len(pos)
    assert fields["obs_mask"][0].sum() > 0.3 * coarse_grid.ocean[0].sum()  # satellite SST + Argo cover the top
