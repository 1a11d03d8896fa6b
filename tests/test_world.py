"""Tests for the synthetic model world (engine/world.py, DESIGN section 5).

Statistical tolerances are stated next to each assertion; every run is seeded, so the
tests are deterministic, and each tolerance is tight enough that a wrong sign, scale or
missing term fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import linalg, signal

from engine.config import WorldSpec
from engine.io import read_oni
from engine.world.synthetic import ModelWorld


@pytest.fixture(scope="module")
def oni():
    return read_oni()


@pytest.fixture(scope="module")
def coarse_control(coarse_grid):
    """100 coarse control years, streamed through anomaly() in 365-step chunks."""
    world = ModelWorld(coarse_grid, WorldSpec(), n_steps=100 * 73)
    weights = coarse_grid.area * coarse_grid.ocean[0]
    weights = weights / weights.sum()
    total = np.zeros(coarse_grid.shape)
    squares = np.zeros(coarse_grid.shape)
    global_mean = []
    for start in range(0, world.n_steps, 365):
        chunk = world.anomaly(start, start + 365)
        total += chunk.sum(axis=0, dtype="f8")
        squares += np.square(chunk).sum(axis=0, dtype="f8")
        global_mean.append((chunk[:, 0] * weights).sum(axis=(1, 2)))
    mean = total / world.n_steps
    std = np.sqrt(np.maximum(squares / world.n_steps - mean**2, 0.0))
    return world, std, np.concatenate(global_mean)


def _slope_per_decade(series: np.ndarray, steps_per_year: int) -> float:
    years = np.arange(len(series)) / steps_per_year
    return float(np.polyfit(years, series, 1)[0] * 10.0)


def test_shapes_land_and_dataset(tiny_grid):
    world = ModelWorld(tiny_grid, WorldSpec(), n_steps=40)
    land = ~tiny_grid.ocean
    assert world.patterns.shape == (WorldSpec().n_modes,) + tiny_grid.shape
    assert world.patterns.dtype == np.float32
    assert np.all(world.patterns[:, land] == 0) and np.all(world.eddy_std[land] == 0)
    anomaly = world.anomaly(5, 25)
    assert anomaly.shape == (20,) + tiny_grid.shape and anomaly.dtype == np.float32
    assert np.all(anomaly[:, land] == 0) and np.all(anomaly[:, tiny_grid.ocean] != 0)
    temperature = world.temperature(5, 25)
    assert np.all(np.isnan(temperature[:, land])) and np.all(np.isfinite(temperature[:, tiny_grid.ocean]))
    assert -2.5 < np.nanmin(temperature) and np.nanmax(temperature) < 36.0
    assert np.all(world.forced(0, 40) == 0)  # control: no forcing

    ds = world.dataset(0, 10)
    assert ds["thetao"].dims == ("time", "depth", "lat", "lon")
    assert ds["thetao"].attrs["standard_name"] == "sea_water_potential_temperature"
    assert ds["thetao"].attrs["units"] == "degC"
    assert ds.attrs["run"] == "control" and ds.attrs["Conventions"].startswith("CF")
    assert ds["depth"].attrs["positive"] == "down" and ds["time"].attrs["axis"] == "T"
    times = world.times()
    assert len(times) == 40 and times[0].year == 1 and type(times[0]).__name__ == "DatetimeNoLeap"
    assert world.calendar == "noleap" and world.times(3, 4)[0] == times[3]


def test_slice_consistency(tiny_grid, coarse_grid):
    """A step has the same value alone or inside any longer slice (eddies seeded per step)."""
    world = ModelWorld(tiny_grid, WorldSpec(), n_steps=400)
    full = world.anomaly(0, 400)
    for start, stop in [(0, 1), (7, 9), (39, 40), (100, 101), (250, 330), (399, 400)]:
        np.testing.assert_allclose(world.anomaly(start, stop), full[start:stop], atol=1e-6, rtol=0)
    assert world.anomaly(5, 5).shape == (0,) + tiny_grid.shape

    coarse = ModelWorld(coarse_grid, WorldSpec(), n_steps=200)
    long = coarse.anomaly(90, 200)
    np.testing.assert_allclose(coarse.anomaly(150, 160), long[60:70], atol=1e-6, rtol=0)
    # nino34() is the top-level box mean of the very same anomaly
    w = coarse._nino_box
    np.testing.assert_allclose(coarse.nino34(90, 200), (long[:, 0] * w).sum(axis=(1, 2)), atol=1e-5)
    # seeded: a second instance reproduces, another seed differs
    again = ModelWorld(coarse_grid, WorldSpec(), n_steps=200).anomaly(150, 160)
    np.testing.assert_array_equal(again, coarse.anomaly(150, 160))
    other = ModelWorld(coarse_grid, WorldSpec(seed=5), n_steps=200).anomaly(150, 160)
    assert np.abs(other - again).max() > 0.1


def test_amplitudes_match_theory(tiny_grid):
    """Sample variance and lag-1 autocorrelation of the modes against the discrete Lyapunov solution."""
    world = ModelWorld(tiny_grid, WorldSpec(), n_steps=2000 * 73)
    a = world.amplitudes()
    assert a.shape == (world.n_steps, world.spec.n_modes) and a.dtype == np.float64
    assert world.amplitudes() is a  # cached
    sigma = linalg.solve_discrete_lyapunov(world.transition, world.noise_cov)
    np.testing.assert_allclose(sigma, np.eye(len(sigma)), atol=1e-8)  # unit stationary variance by design
    lag1 = world.transition @ sigma
    n = len(a)
    var = a.var(axis=0)
    a = a - a.mean(axis=0)
    r1 = (a[1:] * a[:-1]).mean(axis=0) / var
    phi = np.diag(lag1) / np.diag(sigma)
    # standard errors of an AR(1) variance and lag-1 autocorrelation; 4 of them + a small floor
    se_var = np.sqrt(2.0 * (1 + phi**2) / ((1 - phi**2) * n))
    se_r1 = np.sqrt((1 - phi**2) / n)
    assert np.all(np.abs(var / np.diag(sigma) - 1) < 4 * se_var + 0.02), var
    assert np.all(np.abs(r1 - phi) < 4 * se_r1 + 0.002), (r1, phi)
    # the ENSO pair: the recharge mode (1) leads the warming (0), with the theoretical lag-1 cross term
    cross = (a[1:, 0] * a[:-1, 1]).mean()
    assert cross > 0 and abs(cross - lag1[0, 1]) < 0.01
    xcorr = [np.corrcoef(a[lag:, 0], a[: n - lag, 1])[0, 1] for lag in range(0, 3 * 73, 5)]
    lead_years = 5 * int(np.argmax(xcorr)) / 73.0
    # rho**l sin(omega l) peaks at atan(omega tau) / omega: 0.84 years for period 4, damping 2.5
    omega, tau = 2 * np.pi / world.spec.enso_period_years, world.spec.enso_damping_years
    assert abs(lead_years - np.arctan(omega * tau) / omega) < 0.15
    # memories run from about a month to a decade
    assert world.memories_days.min() == pytest.approx(30.0) and world.memories_days.max() == pytest.approx(3650.0)


def test_field_std_matches_target(coarse_control):
    world, std, _ = coarse_control
    grid = world.grid
    ocean = grid.ocean
    theory = np.sqrt((world.patterns.astype("f8") ** 2).sum(axis=0) + world.eddy_std.astype("f8") ** 2)
    np.testing.assert_allclose(theory[ocean], world.target_std[ocean], rtol=1e-4)
    # 100 years of decadal modes: sampling error ~10 % per point; the bulk must agree
    ratio = std[ocean] / world.target_std[ocean]
    assert 0.9 < np.median(ratio) < 1.05
    assert np.mean(np.abs(ratio - 1) < 0.2) > 0.95

    depth, lat, lon = grid.depth, grid.lat, grid.lon
    surface = std[0][ocean[0]]
    assert 0.4 < np.median(surface) < 0.8 and np.percentile(surface, 90) < 0.9
    east_pacific = std[0][np.abs(lat) < 5][:, (lon > 200) & (lon < 280)]
    assert 1.1 < east_pacific.max() < 1.6
    thermocline = std[(depth >= 100) & (depth <= 200)][:, np.abs(lat) < 5]
    assert 1.4 < thermocline.max() < 2.1
    deep = std[(depth >= 1000) & (depth <= 2000)][ocean[(depth >= 1000) & (depth <= 2000)]]
    assert 0.08 < np.median(deep) < 0.2 and np.percentile(deep, 99) < 0.25
    # eddies: about a quarter of the near-surface variance, more in the boundary currents
    share = (world.eddy_std[0] ** 2 / np.where(ocean[0], world.target_std[0] ** 2, 1))[ocean[0]]
    assert 0.18 < np.median(share) < 0.3
    gulf_stream = (np.abs(lat - 37.5) < 3)[:, None] & (np.abs(lon - 297.5) < 3)[None, :]
    assert world.eddy_std[0][gulf_stream & ocean[0]].max() > 1.5 * np.median(world.eddy_std[0][ocean[0]])


def test_control_has_no_trend(coarse_control):
    world, _, global_mean = coarse_control
    # 100 years: internal decadal variability gives trends of ~0.007 degC/decade (1 sigma)
    assert abs(_slope_per_decade(global_mean, 73)) < 0.025
    assert global_mean.std() < 0.1  # random modes barely move the global mean (zero-mean fields)


def test_eddy_covariance_model(coarse_grid):
    """The eddy part follows the documented separable covariance (so a Kalman filter can use it)."""
    world = ModelWorld(coarse_grid, WorldSpec(eddy_length_km=2000.0), n_steps=600)
    eddy = world.anomaly(0, 600) - (world.amplitudes().astype("f4") @ world.patterns.reshape(40, -1)).reshape(
        (600,) + coarse_grid.shape
    )
    ocean = coarse_grid.ocean
    g = np.where(ocean, eddy / np.where(ocean, world.eddy_std, 1), 0.0)[:, :2]  # top two levels, unit variance
    both = ocean[0] & np.roll(ocean[0], -1, axis=1) & ocean[1]
    assert abs(g[:, 0][:, ocean[0]].var() - 1) < 0.05
    r_time = (g[1:, 0] * g[:-1, 0])[:, ocean[0]].mean()
    assert abs(r_time - world.eddy_phi) < 0.03
    r_lon = (g[:, 0] * np.roll(g[:, 0], -1, axis=2))[:, both].mean()
    assert abs(r_lon - world.eddy_correlation_1d[1]) < 0.03
    r_vert = (g[:, 0] * g[:, 1])[:, both].mean()
    assert abs(r_vert - world.eddy_vertical_corr[0, 1]) < 0.03


def test_enso_spectrum_and_nino34(coarse_grid):
    spec = WorldSpec()
    world = ModelWorld(coarse_grid, spec, n_steps=200 * 73)
    nino = world.nino34()
    assert 0.6 < nino.std() < 1.2 and abs(nino.std() - spec.enso_nino34_std) < 0.15
    freq, power = signal.welch(nino - nino.mean(), fs=73, nperseg=40 * 73)
    peak_period = 1.0 / freq[1:][np.argmax(power[1:])]
    assert 3.0 <= peak_period <= 6.0
    # a different period setting moves the peak (the test can fail)
    fast = ModelWorld(coarse_grid, WorldSpec(enso_period_years=2.0), n_steps=200 * 73).amplitudes()[:, 0]
    freq, power = signal.welch(fast, fs=73, nperseg=40 * 73)
    assert 1.0 / freq[1:][np.argmax(power[1:])] < 2.6


def _monthly(values: np.ndarray, times: np.ndarray) -> pd.Series:
    series = pd.Series(values, index=pd.DatetimeIndex(times))
    return series.groupby([series.index.year, series.index.month]).mean()


def test_historical_run(coarse_grid, oni):
    spec = WorldSpec()
    world = ModelWorld(coarse_grid, spec, run="historical", oni=oni)
    assert world.n_steps == 40 * 73 and world.calendar == "standard"
    times = world.times()
    assert pd.Timestamp(times[0]).year == 1981 and pd.Timestamp(times[-1]).year == 2020

    weights = coarse_grid.area * coarse_grid.ocean[0]
    weights = weights / weights.sum()
    forced_mean = (world.forced(0, world.n_steps)[:, 0] * weights).sum(axis=(1, 2))
    global_mean = np.concatenate(
        [
            (world.anomaly(s, min(s + 365, world.n_steps))[:, 0] * weights).sum(axis=(1, 2))
            for s in range(0, world.n_steps, 365)
        ]
    )
    rate = spec.surface_warming_per_decade
    assert abs(_slope_per_decade(global_mean, 73) - rate) < 0.2 * rate
    # the linear part of the forcing has exactly the configured area-mean rate
    years = world._decimal_years(0, world.n_steps)
    linear = rate * (years - 2001.0) / 10.0
    volcanic = forced_mean - linear
    assert np.abs(volcanic[years > 1998]).max() < 1e-3
    for eruption, peak_year in [("El Chichon", 1982.9), ("Pinatubo", 1992.05)]:
        window = (years > peak_year - 0.7) & (years < peak_year + 0.7)
        assert volcanic[window].min() == pytest.approx(-spec.volcanic_cooling, rel=0.05), eruption
        assert abs(years[window][np.argmin(volcanic[window])] - peak_year) < 0.2, eruption
    annual = pd.Series(global_mean).groupby(np.floor(years)).mean()
    assert annual[1992] < 0.5 * (annual[1989] + annual[1995]) - 0.05  # Pinatubo visible in the full field

    # the recharge mode leads the warming by about a year (quadrature of the observed index)
    a = world.amplitudes()
    assert np.corrcoef(a[73:, 0], a[:-73, 1])[0, 1] > 0.3 and np.corrcoef(a[:-73, 0], a[73:, 1])[0, 1] < -0.3

    model = _monthly(world.nino34(), times).rolling(3, center=True).mean()
    observed = oni.set_index([oni.time.dt.year, oni.time.dt.month])["oni"]
    joined = pd.concat([model, observed], axis=1, join="inner").dropna()
    assert len(joined) > 470
    assert np.corrcoef(joined.iloc[:, 0], joined.iloc[:, 1])[0, 1] > 0.9


def test_monthly_steps(tiny_grid, oni):
    spec = WorldSpec(steps_per_year=12)
    world = ModelWorld(tiny_grid, spec, n_steps=12 * 1000)
    assert world.eddy_phi == pytest.approx(np.exp(-(365.0 / 12.0) / 7.5))
    a = world.amplitudes() - world.amplitudes().mean(axis=0)
    r1 = (a[1:] * a[:-1]).mean(axis=0) / a.var(axis=0)
    phi = np.diag(world.transition)
    assert np.all(np.abs(r1[2:] - phi[2:]) < 4 * np.sqrt((1 - phi[2:] ** 2) / len(a)) + 0.003)
    assert world.memories_days[2:].min() == pytest.approx(30.0)  # memories are in days, not steps
    assert 0.6 < world.nino34().std() < 1.2
    np.testing.assert_allclose(world.anomaly(500, 505), world.anomaly(490, 520)[10:15], atol=1e-6, rtol=0)

    hist = ModelWorld(tiny_grid, spec, run="historical", oni=oni)
    assert hist.n_steps == 480
    model = _monthly(hist.nino34(), hist.times()).rolling(3, center=True).mean()
    observed = oni.set_index([oni.time.dt.year, oni.time.dt.month])["oni"]
    joined = pd.concat([model, observed], axis=1, join="inner").dropna()
    assert np.corrcoef(joined.iloc[:, 0], joined.iloc[:, 1])[0, 1] > 0.9


def test_bad_arguments(tiny_grid, oni):
    with pytest.raises(ValueError, match="n_steps"):
        ModelWorld(tiny_grid, WorldSpec())
    with pytest.raises(ValueError, match="oni"):
        ModelWorld(tiny_grid, WorldSpec(), run="historical")
    with pytest.raises(ValueError, match="run"):
        ModelWorld(tiny_grid, WorldSpec(), run="future", n_steps=10)
    world = ModelWorld(tiny_grid, WorldSpec(), n_steps=10)
    with pytest.raises(ValueError, match="outside"):
        world.anomaly(5, 11)
    with pytest.raises(ValueError, match="ENSO index covers"):
        ModelWorld(tiny_grid, WorldSpec(), run="historical", oni=oni, start_year=1900).amplitudes()
