import numpy as np
import pytest

from engine.config import GridSpec, preset
from engine.grid import build_grid, step_day_of_year, step_times, time_to_step


def _nearest(grid, lat, lon):
    return int(np.argmin(abs(grid.lat - lat))), int(np.argmin(abs(grid.lon - lon)))


def levitus_on_the_equator_at_180e(grid, geography, depth):
    """(model climatology, Levitus) at 0N 180E: the model interpolated bilinearly between
    its cell centres (no coarse cell is centred there), Levitus from its four 1 degree cells."""
    clim = grid.mask().copy(data=grid.climatology)
    model = float(clim.sel(depth=depth).interp(lat=0.0, lon=180.0))
    source = geography["thetao_clim"].sel(lat=[-0.5, 0.5], lon=[179.5, 180.5]).mean(("lat", "lon"))
    return model, float(source.interp(source_depth=depth))


def test_coarse_climatology_matches_levitus_on_the_equator(coarse_grid, geography):
    for depth in (5.0, 115.0, 200.0, 500.0):
        model, levitus = levitus_on_the_equator_at_180e(coarse_grid, geography, depth)
        assert abs(model - levitus) < 1.0, (depth, model, levitus)
    assert 27.0 < levitus_on_the_equator_at_180e(coarse_grid, geography, 5.0)[0] < 29.5


@pytest.mark.parametrize("name", ["coarse", "medium", "paper"])
def test_surface_land_fraction_matches_the_source_mask(geography, name):
    grid = build_grid(preset(name).grid, geography)
    area = grid.area
    land = 1.0 - (area * grid.ocean[0]).sum() / area.sum()
    source = (area * grid.source_land_fraction).sum() / area.sum()
    assert abs(land - source) < 0.02
    assert 0.25 < land < 0.35  # Earth's land share


def test_mask_deepens_monotonically_and_deep_ocean_is_smaller(coarse_grid):
    ocean = coarse_grid.ocean
    assert not np.any(ocean[1:] & ~ocean[:-1]), "a cell is ocean below a land level"
    counts = ocean.sum(axis=(1, 2))
    assert counts[-1] < 0.9 * counts[0]


def test_weights_area_and_volume(coarse_grid):
    total = coarse_grid.area.sum()
    assert abs(total - 4 * np.pi * 6_371_000.0**2) / total < 1e-9
    assert np.all(coarse_grid.volume[~coarse_grid.ocean] == 0)
    bounds = coarse_grid.depth_bounds
    assert bounds[0, 0] == 0 and np.all(bounds[:, 0] < coarse_grid.depth) and np.all(coarse_grid.depth < bounds[:, 1])


def test_seasonal_cycle_is_hemispheric_and_decays_with_depth(coarse_grid):
    doy = np.array([46.0, 227.0])  # mid-February, mid-August
    season = coarse_grid.seasonal_anomaly(doy)
    jn, i = _nearest(coarse_grid, 40.0, 180.0)
    js, _ = _nearest(coarse_grid, -40.0, 180.0)
    assert season[1, 0, jn, i] - season[0, 0, jn, i] > 2.0  # northern summer warmer
    assert season[0, 0, js, i] - season[1, 0, js, i] > 1.0  # southern summer in February
    assert np.all(season[:, coarse_grid.depth > 1000.0] == 0)
    assert abs(season[1, 0, jn, i] - season[0, 0, jn, i]) > 3 * abs(season[1, 8, jn, i] - season[0, 8, jn, i])


def test_tiny_grids_and_half_degree_multiples_work(geography):
    tiny = build_grid(GridSpec("tiny", 22.5, (10.0, 100.0)), geography)
    assert tiny.shape == (2, 8, 16) and tiny.ocean[0].mean() > 0.4
    with pytest.raises(ValueError, match="grid.resolution = 0.25 is invalid.*multiple of 0.5"):
        GridSpec("odd", 0.25, (10.0,))  # refused before the grid is built


def test_step_calendar_round_trips_and_handles_leap_years():
    for year in (1983, 1984):
        times = step_times(year, 73, 73, "standard")
        assert np.all(time_to_step(times, year, 73) == np.arange(73))
        assert np.all(np.diff(times) > np.timedelta64(0))
    leap_day = np.array(["1984-02-29T12:00"], dtype="datetime64[ns]")
    feb28 = np.array(["1984-02-28T12:00"], dtype="datetime64[ns]")
    assert time_to_step(leap_day, 1984, 73) == time_to_step(feb28, 1984, 73)
    monthly = step_times(2000, 12, 12, "standard")
    assert np.all(time_to_step(monthly, 2000, 12) == np.arange(12))
    noleap = step_times(1, 74, 73, "noleap")
    assert noleap[-1].year == 2 and len(step_day_of_year(146, 73)) == 146
