"""Representativeness errors, super-observation errors that never fall below them, the
OSSE's shared draws, and the background check of real observations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from engine.config import NetworkSpec, ObsErrorSpec
from engine.observe.background_check import background_check, day_of_year
from engine.observe.gridding import grid_profiles
from engine.observe.network import ObservingNetwork, climatology_at
from engine.observe.profiles import as_table
from engine.observe.qc import QC_BACKGROUND
from engine.observe.representativeness import representativeness_error, shared_error_fields

HEAVE_ONLY = ObsErrorSpec(heave_m=10.0, eddy_displacement_km=0.0, floor=0.0)
NO_ERRORS = tuple((p, 0.0) for p in ("argo", "ctd", "mooring", "xbt", "sst"))


def _equator_atlantic(grid):
    return int(np.argmin(abs(grid.lat))), int(np.argmin(abs(grid.lon - 335.0)))


def test_heave_error_is_the_heave_times_the_climatology_gradient(coarse_grid):
    r = representativeness_error(coarse_grid, HEAVE_ONLY)
    iy, ix = _equator_atlantic(coarse_grid)
    column, z = coarse_grid.climatology[:, iy, ix], coarse_grid.depth
    k = 5  # 85 m, in the thermocline
    gradient = 0.5 * (
        abs(column[k] - column[k - 1]) / (z[k] - z[k - 1]) + abs(column[k + 1] - column[k]) / (z[k + 1] - z[k])
    )
    assert r[k, iy, ix] == pytest.approx(10.0 * gradient, rel=1e-5)
    assert r[k, iy, ix] > 0.5 > 0.05 > r[-1, iy, ix]  # the tropical thermocline against the deep ocean
    assert (r[~coarse_grid.ocean] == 0).all()


def test_no_representativeness_gives_zeros_and_fronts_add_to_heave(coarse_grid):
    off = representativeness_error(coarse_grid, ObsErrorSpec(representativeness=False))
    assert not off.any()
    heave = representativeness_error(coarse_grid, HEAVE_ONLY)
    both = representativeness_error(coarse_grid, ObsErrorSpec())
    ocean = coarse_grid.ocean
    assert (both[ocean] >= heave[ocean] - 1e-6).all() and (both[ocean] > heave[ocean] + 0.05).mean() > 0.2


def test_finer_cells_average_less_of_the_mesoscale(coarse_grid, tiny_grid):
    fronts = ObsErrorSpec(heave_m=0.0, eddy_displacement_km=50.0, mesoscale_km=1000.0, floor=0.0)
    scaled = dataclasses.replace(fronts, mesoscale_km=1.0)  # cells far larger than the mesoscale: share 1
    coarse_share = representativeness_error(coarse_grid, fronts) / np.maximum(
        representativeness_error(coarse_grid, scaled), 1e-9
    )
    tiny_share = representativeness_error(tiny_grid, fronts) / np.maximum(
        representativeness_error(tiny_grid, scaled), 1e-9
    )
    assert np.nanmax(coarse_share) < np.nanmax(tiny_share) < 1.0  # 5 degree cells hold less of it than 22.5 degree ones


def _profiles(grid, lat, lon, n, error, temperature=None):
    """n one-level profiles at one place and time."""
    return as_table(
        pd.DataFrame(
            {
                "time": np.full(n, np.datetime64("2010-01-03T00:00")),
                "lat": np.full(n, lat),
                "lon": np.full(n, lon),
                "depth": np.full(n, 85.0, "f4"),
                "temperature": np.full(n, 20.0, "f4") if temperature is None else temperature,
                "platform": pd.Categorical(["argo"] * n),
                "obs_error": np.full(n, error, "f4"),
                "profile_id": np.arange(n),
            }
        )
    )


def test_a_crowded_cell_never_becomes_more_accurate_than_its_representativeness(coarse_grid):
    r = representativeness_error(coarse_grid, ObsErrorSpec())
    iy, ix = _equator_atlantic(coarse_grid)
    lat, lon, k = float(coarse_grid.lat[iy]), float(coarse_grid.lon[ix]), 5
    errors = []
    for n in (1, 4, 400):
        ds = grid_profiles(_profiles(coarse_grid, lat, lon, n, 0.2), coarse_grid, 2010, 73, 0, 1, repr_error=r)
        errors.append(float(ds["obs_error"].values[0, k, iy, ix]))
    assert errors == pytest.approx([np.sqrt(0.2**2 / n + r[k, iy, ix] ** 2) for n in (1, 4, 400)], rel=1e-5)
    assert errors[-1] >= r[k, iy, ix] and errors[0] > errors[1] > errors[2]
    plain = grid_profiles(_profiles(coarse_grid, lat, lon, 400, 0.2), coarse_grid, 2010, 73, 0, 1)
    assert float(plain["obs_error"].values[0, k, iy, ix]) == pytest.approx(0.01, rel=1e-4)  # without it: e / sqrt(n)


def test_shared_draws_have_the_cells_spread_and_a_vertical_correlation(coarse_grid):
    r = representativeness_error(coarse_grid, ObsErrorSpec())
    draws = shared_error_fields(r, coarse_grid.depth, 100.0, np.random.default_rng(0), 400)
    iy, ix = _equator_atlantic(coarse_grid)
    assert np.std(draws[:, 5, iy, ix]) == pytest.approx(r[5, iy, ix], rel=0.12)
    corr_near = np.corrcoef(draws[:, 5, iy, ix], draws[:, 6, iy, ix])[0, 1]  # 85 and 115 m
    corr_far = np.corrcoef(draws[:, 5, iy, ix], draws[:, 12, iy, ix])[0, 1]  # 85 and 700 m
    assert corr_near == pytest.approx(np.exp(-30 / 100), abs=0.12) and abs(corr_far) < 0.15
    assert not draws[:, ~coarse_grid.ocean].any()


def test_osse_profiles_in_one_cell_share_its_representativeness_error(coarse_grid):
    net = ObservingNetwork(coarse_grid, NetworkSpec(errors=NO_ERRORS), obs_error=ObsErrorSpec())
    iy, ix = _equator_atlantic(coarse_grid)
    lat, lon = float(coarse_grid.lat[iy]), float(coarse_grid.lon[ix])
    rng = np.random.default_rng(3)
    truth = np.zeros(coarse_grid.shape, "f4")
    departures = []
    for _ in range(200):
        pos = _profiles(coarse_grid, lat + np.array([-1.0, 1.0]), lon, 2, 0.0)
        pos["lat"] = [lat - 1.0, lat + 1.0]
        values = net.sample(truth, pos, rng, 3.0)
        expected = climatology_at(
            coarse_grid, pos["lat"].to_numpy(), pos["lon"].to_numpy(), pos["depth"].to_numpy("f8"), np.full(2, 3.0)
        )
        departures.append(values - expected)
    departures = np.array(departures)
    np.testing.assert_allclose(departures[:, 0], departures[:, 1], atol=1e-4)  # shared, not independent
    r = representativeness_error(coarse_grid, ObsErrorSpec())
    assert np.std(departures[:, 0]) == pytest.approx(r[5, iy, ix], rel=0.15)


def test_the_background_check_flags_only_wild_departures_and_keeps_them(coarse_grid):
    iy, ix = _equator_atlantic(coarse_grid)
    lat, lon = float(coarse_grid.lat[iy]), float(coarse_grid.lon[ix])
    table = _profiles(coarse_grid, lat, lon, 3, 0.2)
    clim = climatology_at(coarse_grid, np.full(3, lat), np.full(3, lon), np.full(3, 85.0), day_of_year(table["time"]))
    std = np.full(coarse_grid.shape, 0.5, "f4")
    repr_error = np.full(coarse_grid.shape, 0.3, "f4")
    spread = np.sqrt(0.5**2 + 0.3**2 + 0.2**2)
    table["temperature"] = (clim + np.array([0.0, 3.0 * spread, -6.0 * spread])).astype("f4")
    checked = background_check(table, coarse_grid, std, repr_error, k=5.0)
    assert len(checked) == 3 and checked["qc"].tolist() == [0, 0, QC_BACKGROUND]
    assert background_check(table, coarse_grid, std, repr_error, k=0.0)["qc"].tolist() == [0, 0, 0]
    assert background_check(table, coarse_grid, std, repr_error, k=2.0)["qc"].tolist() == [
        0,
        QC_BACKGROUND,
        QC_BACKGROUND,
    ]
