"""Metrics and regions checked against hand computations on tiny arrays."""

from __future__ import annotations

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from engine.evaluate import diagnostics as diag
from engine.evaluate import metrics as m
from engine.evaluate import summary
from engine.evaluate.regions import BASINS, box_fraction, grid_region_mask, region_mask, region_masks
from engine.grid import SEAWATER_RHO_CP, step_times

LAT = np.array([-30.0, 0.0, 30.0])
LON = np.array([45.0, 135.0, 225.0, 315.0])
DEPTH = np.array([10.0, 100.0])
AREA_BY_LAT = np.array([1.0, 3.0, 2.0])  # unequal on purpose
THICKNESS = np.array([20.0, 180.0])  # level edges 0, 20, 200 m


def _ocean() -> np.ndarray:
    """(depth, lat, lon): land column at (30N, 315E); sea floor above 100 m at (30S, 45E)."""
    ocean = np.ones((2, 3, 4), dtype=bool)
    ocean[:, 2, 3] = False
    ocean[1, 0, 0] = False
    return ocean


def _weights() -> xr.Dataset:
    area = np.repeat(AREA_BY_LAT[:, None], 4, axis=1)
    coords = {"depth": DEPTH, "lat": LAT, "lon": LON}
    return xr.Dataset(
        {
            "area": (("lat", "lon"), area),
            "volume": (("depth", "lat", "lon"), THICKNESS[:, None, None] * area[None] * _ocean()),
            "thickness": ("depth", THICKNESS),
        },
        coords=coords,
    )


def _field(values, times=2) -> xr.DataArray:
    """(time, depth, lat, lon) field, NaN on land."""
    data = np.broadcast_to(np.asarray(values, dtype="f8"), (times, 2, 3, 4)).copy()
    data[:, ~_ocean()] = np.nan
    time = pd.date_range("2000-01-01", periods=times, freq="MS")
    return xr.DataArray(
        data, dims=("time", "depth", "lat", "lon"), coords={"time": time, "depth": DEPTH, "lat": LAT, "lon": LON}
    )


@pytest.fixture
def truth() -> xr.DataArray:
    rng = np.random.default_rng(0)
    return _field(rng.normal(size=(2, 2, 3, 4)))


# --- deterministic scores -----------------------------------------------------------------


def test_rmse_of_a_constant_offset_is_the_offset_and_bias_has_its_sign(truth):
    w = _weights()
    assert float(m.rmse(truth + 0.5, truth, w)) == pytest.approx(0.5)
    np.testing.assert_allclose(m.rmse_by_depth(truth + 0.5, truth, w), [0.5, 0.5])
    assert float(m.bias(truth + 0.3, truth, w)) == pytest.approx(0.3)
    assert float(m.bias(truth - 0.3, truth, w)) == pytest.approx(-0.3)


def test_rmse_weights_by_area_and_skips_land():
    err = np.array([1.0, 2.0, 3.0])[None, None, :, None]  # error grows northwards
    zero = _field(0.0, times=1)
    estimate = zero + err
    # surface level: 4, 4 and 3 ocean cells with areas 1, 3, 2
    expected = np.sqrt((4 * 1 * 1 + 4 * 3 * 4 + 3 * 2 * 9) / (4 * 1 + 4 * 3 + 3 * 2))
    by_depth = m.rmse_by_depth(estimate, zero, _weights())
    assert float(by_depth.sel(depth=10.0)) == pytest.approx(expected)
    # a plain area DataArray gives the same; so do zeros on land plus a mask
    assert float(m.rmse_by_depth(estimate, zero, _weights()["area"])[0]) == pytest.approx(expected)
    mask = xr.DataArray(
        _ocean().astype("i1"), dims=("depth", "lat", "lon"), coords={"depth": DEPTH, "lat": LAT, "lon": LON}
    )
    filled = m.rmse_by_depth(estimate.fillna(0.0), zero.fillna(0.0), _weights()["area"], mask=mask)
    assert float(filled[0]) == pytest.approx(expected)
    # a surface field (no depth dim) is weighted by the ocean area
    surface = m.rmse(estimate.isel(depth=0, drop=True).fillna(9.0), zero.isel(depth=0, drop=True), _weights())
    assert float(surface) == pytest.approx(expected)


def test_weighted_sums_of_blocks_add_up_to_the_whole_period_mean(truth):
    """Split in time, the two sums of each block give the whole-period weighted mean,
    NaN points (a missing value, land) counted in neither sum."""
    w = _weights()
    data = truth.copy()
    data[0, 0, 1, 2] = np.nan
    total, weight = m.weighted_sums(data, w, ("time", "lat", "lon"))
    np.testing.assert_allclose(total / weight, m.weighted_mean(data, w, ("time", "lat", "lon")))
    parts = [m.weighted_sums(data.isel(time=[t]), w, ("time", "lat", "lon")) for t in range(2)]
    pooled = sum(p[0] for p in parts) / sum(p[1] for p in parts)
    np.testing.assert_allclose(pooled, m.weighted_mean(data, w, ("time", "lat", "lon")))
    # without weights: a plain count of the valid points
    total, count = m.weighted_sums(data, None, "time")
    assert float(count[0, 1, 2]) == 1.0 and float(total[0, 1, 2]) == pytest.approx(float(data[1, 0, 1, 2]))


def test_anomaly_correlation_of_scaled_and_negated_copies(truth):
    w = _weights()
    np.testing.assert_allclose(m.anomaly_correlation(2.0 * truth + 1.0, truth, w, ("lat", "lon")), 1.0)
    np.testing.assert_allclose(m.anomaly_correlation(-truth, truth, w), -1.0)


def test_anomaly_correlation_matches_a_hand_weighted_pearson():
    a = xr.DataArray([1.0, 2.0, 3.0, np.nan], dims="lat")
    b = xr.DataArray([1.0, 3.0, 2.0, 5.0], dims="lat")
    w = xr.DataArray([1.0, 2.0, 1.0, 1.0], dims="lat")
    # valid points 0..2, weighted means 2 and 2.25
    cov = (1 * (-1) * (-1.25) + 2 * 0 * 0.75 + 1 * 1 * (-0.25)) / 4
    var_a = (1 * 1 + 0 + 1 * 1) / 4
    var_b = (1 * 1.25**2 + 2 * 0.75**2 + 1 * 0.25**2) / 4
    assert float(m.anomaly_correlation(a, b, w)) == pytest.approx(cov / np.sqrt(var_a * var_b))
    assert float(m.correlation(a, b, "lat")) == pytest.approx(0.5)  # unweighted: classic 0.5


def test_rmse_over_time_is_volume_weighted_over_the_layer():
    zero = _field(0.0, times=1)
    estimate = zero + np.array([1.0, 2.0])[None, :, None, None]
    v_top, v_deep = 20.0 * (4 + 12 + 6), 180.0 * (3 + 12 + 6)  # ocean area x thickness
    full = m.rmse_over_time(estimate, zero, _weights(), depth_range=(0.0, 700.0))
    assert float(full[0]) == pytest.approx(np.sqrt((v_top * 1 + v_deep * 4) / (v_top + v_deep)))
    partial = m.rmse_over_time(estimate, zero, _weights(), depth_range=(0.0, 110.0))  # 90 of 180 m
    assert float(partial[0]) == pytest.approx(np.sqrt((v_top + 0.5 * v_deep * 4) / (v_top + 0.5 * v_deep)))


def test_error_map_of_rmse_bias_and_its_errors(truth):
    estimate = truth + xr.DataArray([1.0, 3.0], dims="time", coords={"time": truth.time})
    rmse_map = m.error_map(estimate, truth)
    assert rmse_map.dims == ("depth", "lat", "lon")
    assert float(rmse_map[0, 0, 0]) == pytest.approx(np.sqrt(5.0))
    assert bool(rmse_map[0, 2, 3].isnull())  # land
    assert float(m.error_map(estimate, truth, kind="bias")[1, 1, 1]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="unknown error kind"):
        m.error_map(estimate, truth, kind="max")


# --- ensembles ----------------------------------------------------------------------------


def test_spread_skill_ratio_known_case(truth):
    w = _weights()
    members = xr.concat([truth - 1.0, truth + 1.0], dim="member")  # variance (ddof=1) 2, mean = truth
    ratio = m.spread_skill_ratio(members, truth + 2.0, w)
    assert float(ratio) == pytest.approx(np.sqrt(2.0) / 2.0)
    spread = xr.full_like(truth, np.sqrt(2.0))
    assert float(m.spread_skill_ratio(spread, truth + 2.0, w, mean=truth)) == pytest.approx(np.sqrt(2.0) / 2.0)
    with pytest.raises(ValueError, match="ensemble mean"):
        m.spread_skill_ratio(spread, truth, w)


def test_crps_one_member_is_the_absolute_error(truth):
    w = _weights()
    estimate = truth + xr.DataArray(np.linspace(-1, 1, 4), dims="lon", coords={"lon": LON})
    crps = m.crps_ensemble(estimate.expand_dims(member=1), truth, w)
    mae = m.weighted_mean(abs(estimate - truth), w)
    assert float(crps) == pytest.approx(float(mae))


def test_crps_two_members_and_the_pair_sum():
    members = xr.DataArray([[0.0, 0.0], [2.0, 2.0]], dims=("member", "x"))
    truth = xr.DataArray([3.0, 1.0], dims="x")
    # y=3: mean|x-y| = 2, |x1-x2| = 2 -> fair 2 - 2/2 = 1, plain 2 - 2/4 = 1.5; y=1: 1 - 1 = 0
    np.testing.assert_allclose(m.crps_ensemble(members, truth, dims=()), [1.0, 0.0])
    np.testing.assert_allclose(m.crps_ensemble(members, truth, dims=(), fair=False), [1.5, 0.5])
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 7)), rng.normal(size=7)
    brute = abs(x - y).mean(0) - abs(x[:, None] - x[None, :]).sum((0, 1)) / (2 * 5 * 4)
    got = m.crps_ensemble(xr.DataArray(x, dims=("member", "x")), xr.DataArray(y, dims="x"), dims=())
    np.testing.assert_allclose(got, brute)
    assert float(m.crps_ensemble(xr.DataArray(x, dims=("member", "x")), xr.DataArray(y, dims="x"))) == pytest.approx(
        brute.mean()
    )


# --- climate diagnostics (engine.evaluate.diagnostics) --------------------------------------------


def test_ocean_heat_content_of_one_degree_is_rho_cp_volume():
    w = _weights()
    one = _field(1.0)
    volume = float(w["volume"].sum())
    np.testing.assert_allclose(diag.ocean_heat_content(one, w, depth_range=(0.0, 700.0)), SEAWATER_RHO_CP * volume)
    top = float(w["volume"].isel(depth=0).sum()) + 0.5 * float(w["volume"].isel(depth=1).sum())
    np.testing.assert_allclose(diag.ocean_heat_content(one, w, depth_range=(0.0, 110.0)), SEAWATER_RHO_CP * top)
    per_area = diag.ocean_heat_content_per_area(one, w).isel(time=0)
    assert float(per_area.sel(lat=0.0, lon=45.0)) == pytest.approx(SEAWATER_RHO_CP * 200.0)
    assert float(per_area.sel(lat=-30.0, lon=45.0)) == pytest.approx(SEAWATER_RHO_CP * 20.0)  # shallow column
    assert bool(per_area.sel(lat=30.0, lon=315.0).isnull())  # land
    assert per_area.attrs["units"] == "J m-2"


def test_ocean_heat_content_on_the_tiny_grid(tiny_grid):
    weights = tiny_grid.weights()
    one = xr.ones_like(tiny_grid.mask(), dtype="f8").expand_dims(time=1)
    ohc = diag.ocean_heat_content(one, weights, depth_range=(0.0, 1.0e5))
    assert float(ohc[0]) == pytest.approx(SEAWATER_RHO_CP * tiny_grid.volume.sum(), rel=1e-9)


def test_layer_mean_is_volume_weighted_and_regional():
    w = _weights()
    temp = _field(0.0, times=1) + np.array([10.0, 4.0])[None, :, None, None]
    v_top, v_deep = 20.0 * 22, 180.0 * 21
    mean = diag.layer_mean(temp, w, depth_range=(0.0, 700.0))
    assert float(mean[0]) == pytest.approx((10 * v_top + 4 * v_deep) / (v_top + v_deep))
    assert float(diag.layer_mean(temp, w, depth_range=(0.0, 20.0))[0]) == pytest.approx(10.0)
    tropics = region_mask("tropics", LAT, LON)
    assert float(diag.layer_mean(temp, w, (0.0, 700.0), mask=tropics)[0]) == pytest.approx((10 * 20 + 4 * 180) / 200)


def _series(times, per_year, seasonal=0.0) -> xr.DataArray:
    years = np.array([t.year + (t.month - 0.5) / 12.0 for t in pd.DatetimeIndex(times)])
    values = per_year * years + seasonal * np.cos(2 * np.pi * years)  # cos: no leak into the trend
    return xr.DataArray(values, dims="time", coords={"time": times}, attrs={"units": "degC"})


def test_linear_trend_datetime64_per_decade():
    series = _series(pd.date_range("1981-01-01", "2010-12-01", freq="MS") + pd.Timedelta(days=14), 0.03, 0.5)
    trend = diag.linear_trend(series)
    assert float(trend) == pytest.approx(0.3, abs=2e-3)
    assert trend.attrs["units"] == "degC per decade"
    assert float(diag.linear_trend(series, per="year")) == pytest.approx(0.03, abs=2e-4)


def test_linear_trend_cftime_noleap_and_trend_map():
    times = step_times(1, 73 * 20, 73, "noleap")  # pentads of 20 model years
    assert isinstance(times[0], cftime.DatetimeNoLeap)
    elapsed = np.array([(t - times[0]).days for t in times]) / 365.0
    slopes = xr.DataArray([0.1, -0.2, 0.0], dims="lat")  # degC per year
    field = xr.DataArray(elapsed, dims="time", coords={"time": times}) * slopes
    field[:5, 1] = np.nan  # missing data are skipped
    trends = diag.trend_map(field)
    np.testing.assert_allclose(trends, [1.0, -2.0, 0.0], atol=1e-9)
    assert bool(diag.trend_map(field.where(field.lat < 0)).isnull().all())  # lat has no coords: all NaN


def test_nino34_picks_the_box():
    lat = np.array([-7.5, -2.5, 2.5, 7.5])
    lon = np.arange(2.5, 360, 5.0)
    inside = np.outer((abs(lat) < 5), (lon > 190) & (lon < 240))
    field = xr.DataArray(np.where(inside, 1.0, 100.0), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    series = field.expand_dims(time=3, depth=[5.0, 50.0]).transpose("time", "depth", "lat", "lon")
    np.testing.assert_allclose(diag.nino34(series), 1.0)
    # 10 degree cells centred on 190 and 240 straddle the box edges: they count half
    lon10 = np.arange(0.0, 360.0, 10.0)
    values = np.where((lon10 > 190) & (lon10 < 240), 1.0, 0.0) + np.where(np.isin(lon10, [190, 240]), 3.0, 0.0)
    values = np.where(np.isin(lon10, [180, 250]), 50.0, values)
    coarse = xr.DataArray(
        np.tile(values, (3, 1)), dims=("lat", "lon"), coords={"lat": [-10.0, 0.0, 10.0], "lon": lon10}
    )
    assert float(diag.nino34(coarse)) == pytest.approx((4 * 1 + 0.5 * 3 + 0.5 * 3) / 5)
    assert float(box_fraction([-10.0, 0.0, 10.0], lon10, (-5, 5), (190, 240)).sum()) == pytest.approx(5.0)


def test_seasonal_cycle_amplitude_and_correlation():
    time = pd.date_range("2001-01-15", periods=36, freq="MS")
    cycle = xr.DataArray(np.tile(np.arange(12.0), 3), dims="time", coords={"time": time})
    assert float(diag.seasonal_cycle_amplitude(cycle)) == pytest.approx(11.0)
    noleap = xr.DataArray(
        np.tile(np.arange(12.0), 2),
        dims="time",
        coords={"time": xr.date_range("0001-01-01", periods=24, freq="MS", calendar="noleap", use_cftime=True)},
    )
    assert float(diag.seasonal_cycle_amplitude(noleap)) == pytest.approx(11.0)
    assert float(m.correlation(cycle, -3 * cycle + 2)) == pytest.approx(-1.0)


# --- regions and summary ------------------------------------------------------------------


def test_basins_partition_the_ocean(coarse_grid):
    masks = region_masks(BASINS, coarse_grid.lat, coarse_grid.lon, ocean=coarse_grid.ocean[0])
    count = masks.sum("region")
    assert int(count.max()) == 1, "basins overlap"
    np.testing.assert_array_equal(count.values == 1, coarse_grid.ocean[0])  # union = global ocean
    glob = grid_region_mask(coarse_grid, "global")
    np.testing.assert_array_equal(glob.values, coarse_grid.ocean[0])
    ocean_area = (coarse_grid.area * coarse_grid.ocean[0]).sum()
    shares = {b: float((coarse_grid.area * masks.sel(region=b)).sum() / ocean_area) for b in BASINS}
    assert shares["pacific"] > shares["atlantic"] > shares["arctic"] and shares["indian"] > shares["arctic"]
    bands = region_masks(
        ("tropics", "northern_extratropics", "southern_extratropics"), coarse_grid.lat, coarse_grid.lon
    )
    assert bool((bands.sum("region") == 1).all())


@pytest.mark.parametrize(
    ("lat", "lon", "basin"),
    [
        (0.5, 330.5, "atlantic"),
        (0.5, 180.5, "pacific"),
        (-10.5, 80.5, "indian"),
        (-50.5, 10.5, "southern"),
        (80.5, 0.5, "arctic"),
        (25.5, 270.5, "atlantic"),
        (5.5, 275.5, "pacific"),
        (15.5, 285.5, "atlantic"),
        (20.5, 38.5, "indian"),
        (35.5, 18.5, "atlantic"),
        (43.5, 34.5, "atlantic"),
        (12.5, 113.5, "pacific"),
        (-5.5, 110.5, "pacific"),
        (-11.5, 126.5, "indian"),
        (15.5, 88.5, "indian"),
        (-15.5, 155.5, "pacific"),
        (-14.5, 139.5, "indian"),
        (59.5, 274.5, "atlantic"),
        (55.5, 200.5, "pacific"),
        (-30.5, 15.5, "atlantic"),
    ],
)
def test_basin_of_known_places(lat, lon, basin):
    found = [b for b in BASINS if bool(region_mask(b, [lat], [lon])[0, 0])]
    assert found == [basin]


def test_region_mask_bands_and_errors():
    assert bool(region_mask("nino34", [0.0], [200.0])[0, 0]) and not bool(region_mask("nino34", [0.0], [250.0])[0, 0])
    assert (
        region_mask("tropics", LAT, LON).sel(lat=0.0).all() and not region_mask("tropics", LAT, LON).sel(lat=30.0).any()
    )
    with pytest.raises(ValueError, match="unknown region"):
        region_mask("atlantis", LAT, LON)


def test_summarise_and_to_table(truth):
    w = _weights()
    time = pd.date_range("1999-12-01", periods=2, freq="MS")  # one step in each era
    truth = truth.assign_coords(time=time)
    analyses = {"deepda": truth + 0.1, "persistence": truth - 0.5}
    ds = summary.summarise(analyses, truth, w, eras=[1990, 2000, 2010], regions=("global", "tropics"))
    assert ds["rmse"].dims == ("method", "region", "era", "depth")
    assert list(ds.era.values) == ["1990-1999", "2000-2009"]
    np.testing.assert_allclose(ds["rmse"].sel({"method": "deepda"}), 0.1)  # .sel(method=...) is sel's own kwarg
    np.testing.assert_allclose(ds["bias"].sel({"method": "persistence"}), -0.5)
    noisy = {"noisy": truth + truth**2}
    one = summary.summarise(noisy, truth, w, eras={"late": (2000, 2000)}, regions=("tropics",))
    direct = m.rmse_by_depth(
        truth.isel(time=[1]) + truth.isel(time=[1]) ** 2, truth.isel(time=[1]), w, mask=region_mask("tropics", LAT, LON)
    )
    np.testing.assert_allclose(one["rmse"].squeeze(("method", "region", "era")), direct)
    table = summary.to_table(ds)
    assert list(table.columns) == ["metric", "method", "region", "era", "10 m", "100 m"]
    assert len(table) == 2 * 2 * 2 * 2
    assert table.iloc[0]["method"] == "deepda" and table.iloc[0]["10 m"] == pytest.approx(0.1)


def test_scores_carry_their_own_units_not_the_temperature_standard_name():
    rng = np.random.default_rng(3)
    attrs = {"standard_name": "sea_water_potential_temperature", "units": "degC", "long_name": "anomaly"}
    coords = {"time": np.arange(6), "lat": LAT, "lon": LON}
    truth = xr.DataArray(rng.normal(size=(6, 3, 4)), dims=("time", "lat", "lon"), coords=coords, attrs=attrs)
    estimate = (truth + 0.1).assign_attrs(attrs)
    spread = xr.full_like(truth, 0.2).assign_attrs(attrs)
    scores = {
        "rmse": (m.rmse(estimate, truth), "degC"),
        "bias": (m.bias(estimate, truth), "degC"),
        "error_map": (m.error_map(estimate, truth), "degC"),
        "correlation": (m.correlation(estimate.mean(("lat", "lon")), truth.mean(("lat", "lon"))), "1"),
        "spread_skill": (m.spread_skill_ratio(spread, truth, mean=estimate), "1"),
    }
    for name, (score, units) in scores.items():
        assert "standard_name" not in score.attrs, name
        assert score.attrs["units"] == units and score.attrs["long_name"], name
    assert float(scores["rmse"][0]) == pytest.approx(0.1)
    assert float(scores["spread_skill"][0]) == pytest.approx(2.0)
    assert "standard_name" in truth.attrs  # the inputs are left alone
