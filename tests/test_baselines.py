"""Tests for the classical baselines (engine/da/oi.py, engine/da/kf.py, the registry; DESIGN section 10).

Everything runs on the tiny 16 x 8 x 4 grid with a seeded 8-mode world. Reference values
are computed independently here (haversine distances, dense textbook OI and Kalman
formulas), so a wrong covariance, gain or bookkeeping in the batched code fails.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.config import preset
from engine.da.kf import KalmanFilter
from engine.da.oi import OptimalInterpolation, tune_oi
from engine.da.registry import BASELINES, METHODS, make_method
from engine.da.simple import Climatology, Persistence
from engine.errors import InputError
from engine.evaluate.scoring import cycled_rmse
from engine.observe.gridding import ObsStep
from tests.conftest import SHORT_STEPS, TINY_SPEC

R_EARTH = 6371.0
N_STEPS = SHORT_STEPS
OBS_ERROR = 0.2


@pytest.fixture(scope="module")
def world(tiny_world):
    return tiny_world


@pytest.fixture(scope="module")
def truth(world):
    return world.anomaly(0, N_STEPS)


def _chord_km(lat1, lon1, lat2, lon2):
    """Chord length from the haversine angle (independent of the code's unit vectors)."""
    p1, p2, dl = np.deg2rad(lat1), np.deg2rad(lat2), np.deg2rad(lon2 - lon1)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    angle = 2 * np.arcsin(np.sqrt(h))
    return 2 * R_EARTH * np.sin(angle / 2)


def _cov(grid, sigma, cells1, cells2, l_eq, l_pole, small=0.0):
    """Background-error covariance between flat (lat, lon) cells of one level, from the documented formula."""
    nx = grid.shape[2]
    lat1, lon1 = grid.lat[cells1 // nx], grid.lon[cells1 % nx]
    lat2, lon2 = grid.lat[cells2 // nx], grid.lon[cells2 % nx]
    ll1 = l_pole + (l_eq - l_pole) * np.cos(np.deg2rad(lat1)) ** 2
    ll2 = l_pole + (l_eq - l_pole) * np.cos(np.deg2rad(lat2)) ** 2
    a, b = ll1[:, None], ll2[None, :]
    d = _chord_km(lat1[:, None], lon1[:, None], lat2[None, :], lon2[None, :])
    corr = (2 * a * b / (a**2 + b**2)) ** 1.5 * np.exp(-(d**2) / (a**2 + b**2))
    corr = (1 - small) * corr + small * (cells1[:, None] == cells2[None, :])
    return sigma[cells1][:, None] * sigma[cells2][None, :] * corr


def _random_obs(grid, field, rng, fraction, step=0, error=OBS_ERROR):
    """Whole-column 'profiles' at a random share of ocean columns, plus N(0, error) noise."""
    ocean = grid.ocean
    columns = rng.random(grid.shape[1:]) < fraction
    mask = (ocean & columns[None]).astype("f4")
    noise = rng.standard_normal(grid.shape).astype("f4") * error
    err = np.full(grid.shape, error, "f4") * mask
    return ObsStep(((field + noise) * mask).astype("f4"), mask, err, step, 2.5 + 5 * step)


def _steps(grid, truth, seed, fraction=0.3):
    rng = np.random.default_rng(seed)
    return [_random_obs(grid, truth[t], rng, fraction, step=t) for t in range(len(truth))]


def test_oi_single_observation_is_analytic(tiny_grid):
    grid = tiny_grid
    nx = grid.shape[2]
    std = np.array([0.6, 0.8, 0.3, 0.1])
    kw = dict(
        length_km=3000.0, polar_length_km=1200.0, memory_days=20.0, background_scale=0.8, small_scale_fraction=0.0
    )
    oi = OptimalInterpolation(grid, std, **kw)
    rng = np.random.default_rng(0)
    background = (rng.standard_normal((1,) + grid.shape) * grid.ocean).astype("f4")
    obs_cell = 3 * nx + 8  # 11.25S, 191.25E: ocean
    mask = np.zeros(grid.shape, "f4")
    mask[0].flat[obs_cell] = 1.0
    values = mask * 1.5
    err = mask * 0.3
    analysis = oi.assimilate(background, ObsStep(values, mask, err, 0, 2.5))
    damped = np.exp(-5.0 / 20.0) * background[0]
    sigma = 0.8 * std[0] * grid.ocean[0].reshape(-1)
    innovation = 1.5 - damped[0].flat[obs_cell]
    points = np.array([obs_cell, 3 * nx + 9, 4 * nx + 8, 2 * nx + 10, 6 * nx + 14])  # same cell, E, N, SE, far NE
    b_xo = _cov(grid, sigma, points, np.array([obs_cell]), 3000.0, 1200.0)[:, 0]
    expected = damped[0].reshape(-1)[points] + b_xo / (sigma[obs_cell] ** 2 + 0.09) * innovation
    np.testing.assert_allclose(analysis[0, 0].reshape(-1)[points], expected, rtol=1e-4, atol=1e-6)
    assert expected[1] - damped[0].flat[points[1]] > 0.1  # the neighbours really move
    np.testing.assert_allclose(analysis[0, 1:], damped[1:], atol=1e-6)  # levels are independent
    assert np.all(analysis[0][~grid.ocean] == 0)


@pytest.mark.parametrize("small", [0.0, 0.3])
def test_oi_local_solve_equals_dense_oi_when_all_obs_fit(tiny_grid, small):
    """With n_obs above the number of observations and no cutoff, the batched local solves are
    the textbook global OI x_b + B_xo (B_oo + R)^-1 (y - x_b)."""
    grid = tiny_grid
    rng = np.random.default_rng(1)
    std = rng.uniform(0.3, 1.0, grid.shape) * grid.ocean
    kw = dict(length_km=2500.0, polar_length_km=900.0, small_scale_fraction=small, background_scale=1.0)
    oi = OptimalInterpolation(grid, std, n_obs=60, cutoff=100.0, **kw)
    obs = _random_obs(grid, rng.standard_normal(grid.shape).astype("f4"), rng, 0.25)
    obs.error[obs.mask > 0] = rng.uniform(0.1, 0.5, int(obs.mask.sum()))
    background = np.zeros((1,) + grid.shape, "f4")
    analysis = oi.assimilate(background, obs)
    level = 1
    sigma = std[level].reshape(-1)
    cells = np.flatnonzero(obs.mask[level].reshape(-1))
    points = np.flatnonzero(grid.ocean[level].reshape(-1))
    assert 10 < len(cells) < 60
    b_oo = _cov(grid, sigma, cells, cells, kw["length_km"], kw["polar_length_km"], small)
    b_xo = _cov(grid, sigma, points, cells, kw["length_km"], kw["polar_length_km"], small)
    r = np.diag(obs.error[level].reshape(-1)[cells] ** 2)
    expected = b_xo @ np.linalg.solve(b_oo + r, obs.anomaly[level].reshape(-1)[cells])
    np.testing.assert_allclose(analysis[0, level].reshape(-1)[points], expected, rtol=2e-3, atol=2e-4)


def test_oi_analysis_beats_background(tiny_grid, world, truth):
    kw = dict(length_km=1500.0, polar_length_km=1000.0, background_scale=0.4)  # yesterday's error ~0.4 x std
    oi = OptimalInterpolation(tiny_grid, world.target_std, **kw)
    rng = np.random.default_rng(2)
    ocean = tiny_grid.ocean
    for t in (5, 20, 35):
        background = truth[t - 1][None]  # yesterday's truth: a good but imperfect background
        obs = _random_obs(tiny_grid, truth[t], rng, 0.3, step=t)
        analysis = oi.assimilate(background, obs)
        error_a = (analysis[0] - truth[t]) ** 2
        error_b = (oi.damping * background[0] - truth[t]) ** 2
        assert np.sqrt(error_a[ocean].mean()) < 0.92 * np.sqrt(error_b[ocean].mean())
        seen = obs.mask > 0  # most of the gain is where observed: the 5 degree eddies barely spread
        assert np.sqrt(error_a[seen].mean()) < 0.8 * np.sqrt(error_b[seen].mean())


def test_kf_perfect_observations_recover_truth(tiny_grid, world, truth):
    ocean, t = tiny_grid.ocean, 12
    mask = ocean.astype("f4")
    obs = ObsStep(truth[t] * mask, mask, np.zeros_like(mask), t, 62.5)
    background = np.zeros((1,) + tiny_grid.shape, "f4")
    modal = np.einsum("k,kzyx->zyx", world.amplitudes()[t], world.patterns)
    eddy_rms = np.sqrt(np.mean((truth[t] - modal)[ocean] ** 2))
    kf = KalmanFilter.from_world(world, estimate_eddies=False)
    modes_only = kf.assimilate(background, obs)[0]
    assert np.sqrt(np.mean((modes_only - modal)[ocean] ** 2)) < 0.15 * eddy_rms  # the modes are pinned down
    error, std = kf.mean[0] - world.amplitudes()[t], np.sqrt(np.diag(kf.cov))
    assert np.all(std < 0.15) and np.all(np.abs(error) < 4 * std)  # amplitudes right, within their stated error
    assert np.sqrt(np.mean((modes_only - truth[t])[ocean] ** 2)) == pytest.approx(eddy_rms, rel=0.05)
    with_eddies = KalmanFilter.from_world(world).assimilate(background, obs)[0]
    np.testing.assert_allclose(with_eddies[ocean], truth[t][ocean], atol=0.01)  # perfect obs: the eddies too
    assert np.all(with_eddies[~ocean] == 0)


def test_kf_update_matches_dense_kalman_formula(tiny_grid, world, truth):
    """Information form with per-column eddy covariance == P_f - P_f H^T (H P_f H^T + R)^-1 H P_f."""
    rng = np.random.default_rng(3)
    kf = KalmanFilter.from_world(world)
    background = np.zeros((1,) + tiny_grid.shape, "f4")
    kf.assimilate(background, _random_obs(tiny_grid, truth[0], rng, 0.3, step=0))
    mean_a, cov_a = kf.mean.copy(), kf.cov.copy()
    obs = _random_obs(tiny_grid, truth[1], rng, 0.3, step=1)
    kf.assimilate(background, obs)
    mean_f, cov_f = mean_a @ world.transition.T, world.transition @ cov_a @ world.transition.T + world.noise_cov
    idx = np.flatnonzero(obs.mask.reshape(-1))
    nz, ny, nx = tiny_grid.shape
    z, column = idx // (ny * nx), idx % (ny * nx)
    h = world.patterns.reshape(len(world.patterns), -1)[:, idx].T.astype("f8")
    e = world.eddy_std.reshape(-1)[idx].astype("f8")
    same_column = column[:, None] == column[None, :]
    r = np.outer(e, e) * world.eddy_vertical_corr[z][:, z] * same_column + np.diag(obs.error.reshape(-1)[idx] ** 2)
    gain = cov_f @ h.T @ np.linalg.inv(h @ cov_f @ h.T + r)
    np.testing.assert_allclose(kf.cov, cov_f - gain @ h @ cov_f, atol=1e-8)
    np.testing.assert_allclose(kf.mean[0], mean_f[0] + gain @ (obs.anomaly.reshape(-1)[idx] - h @ mean_f[0]), atol=1e-6)


def test_kf_covariance_stays_symmetric_positive_definite(tiny_grid, world, truth):
    kf = KalmanFilter.from_world(world)
    background = np.zeros((1,) + tiny_grid.shape, "f4")
    for obs in _steps(tiny_grid, truth, seed=4, fraction=0.5):
        prior = world.transition @ kf.cov @ world.transition.T + world.noise_cov
        kf.assimilate(background, obs)
        np.testing.assert_array_equal(kf.cov, kf.cov.T)
        assert np.linalg.eigvalsh(kf.cov).min() > 0
        if obs.step > 0:
            assert np.linalg.eigvalsh(prior - kf.cov).min() > -1e-10  # observing never adds uncertainty
    assert np.trace(kf.cov) < 0.2 * np.trace(kf.initial_cov)
    assert kf.error_std().shape == tiny_grid.shape


def test_cycled_rmse_ranks_kf_oi_persistence_climatology(tiny_grid, world, truth):
    steps = _steps(tiny_grid, truth, seed=5)
    weights = tiny_grid.ocean.astype("f8")
    oi = OptimalInterpolation(tiny_grid, world.target_std, length_km=2500.0, polar_length_km=1000.0)
    scores = {
        method.name: cycled_rmse(method, truth, steps, weights, spinup=5)
        for method in (Climatology(), Persistence(), oi, KalmanFilter.from_world(world))
    }
    assert scores["kf"] < 0.9 * scores["oi"]
    assert scores["oi"] < 0.9 * scores["climatology"]
    assert scores["oi"] < scores["persistence"]


def test_members_share_one_filter(tiny_grid, world, truth):
    """Per-member (perturbed) observations: each member's analysis is what a filter seeing only
    that member's observations would give; the background is used for its shape only."""
    rng = np.random.default_rng(6)
    steps = [obs.perturbed(3, rng) for obs in _steps(tiny_grid, truth[:6], seed=6)]
    joint = KalmanFilter.from_world(world)
    background = np.full((3,) + tiny_grid.shape, 7.0, "f4")
    for obs in steps:
        members = joint.assimilate(background, obs)
    assert np.abs(members[1] - members[0]).max() > 1e-3
    single = KalmanFilter.from_world(world)
    for obs in steps:
        one = ObsStep(obs.anomaly[2], obs.mask, obs.error, obs.step, obs.day_of_year)
        alone = single.assimilate(background[:1] * 0, one)
    np.testing.assert_allclose(members[2], alone[0], atol=1e-5)


def test_kf_learns_a_forced_signal(tiny_grid, world, truth):
    """forced=True adds the warming amplitude as a random walk: a steady warming added to the
    observations is picked up."""
    offset = 0.5 * world.warming_pattern
    kf = KalmanFilter.from_world(world, forced=True)
    assert len(kf.cov) == len(world.patterns) + 2
    background = np.zeros((1,) + tiny_grid.shape, "f4")
    for obs in _steps(tiny_grid, truth + offset[None], seed=7, fraction=0.5):
        kf.assimilate(background, obs)
    assert kf.mean[0, -2] == pytest.approx(0.5, abs=0.1)
    assert abs(kf.mean[0, -1]) < 0.15


def test_tune_oi_finds_the_minimum():
    calls = []

    def score(params):
        calls.append(params)
        return (params["length_km"] - 1500.0) ** 2 / 1e6 + (params["memory_days"] - 30.0) ** 2 / 100.0

    result = tune_oi(score, {"length_km": [500.0, 1000.0, 1500.0, 2000.0], "memory_days": [10.0, 30.0, 90.0]})
    assert result["best"] == {"length_km": 1500.0, "memory_days": 30.0}
    assert result["score"] == 0.0
    assert len(calls) == 12 and len(result["table"]) == 12
    assert list(result["table"].columns) == ["length_km", "memory_days", "score"]
    assert result["table"]["score"].is_monotonic_increasing


def test_registry_builds_every_baseline_and_refuses_unknown_names(tiny_grid):
    config = preset("coarse")
    assert METHODS == ("deepda", "oi", "kf", "persistence", "climatology")
    config = replace(config, grid=TINY_SPEC)
    for name in BASELINES:
        setup = make_method(name, config)
        assert setup.method.name == name and setup.attrs["method"] == name
        assert setup.grid.shape == tiny_grid.shape
    assert make_method("kf", config).attrs["source"] == "model-world modes"
    with pytest.raises(InputError, match="does not exist"):
        make_method("3dvar", config)


def test_bad_arguments(tiny_grid):
    with pytest.raises(ValueError, match="small_scale_fraction"):
        OptimalInterpolation(tiny_grid, np.ones(4), small_scale_fraction=1.0)
    with pytest.raises(ValueError, match="gives no parameter set"):
        tune_oi(lambda p: 0.0, {"length_km": []})
