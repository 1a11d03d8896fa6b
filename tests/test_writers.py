"""The two gridded writers: the resumable analysis writer (engine.io.analysis) and the
model-world writer (engine.io.write_world), on the tiny grid."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
import xarray as xr

from engine.da.base import ensemble_fields
from engine.errors import InputError
from engine.grid import step_day_of_year, step_times
from engine.io import read_oni, write_world
from engine.io.analysis import AnalysisWriter, partial_path
from engine.io.fields import CHUNK_STEPS, field_chunks
from engine.world.synthetic import ModelWorld
from tests.conftest import TINY

N_STEPS, MEMBERS, SPY = 6, 3, 73
ATTRS = {"method": "test", "source": "tests"}


def _states(grid) -> np.ndarray:
    """(step, member, depth, lat, lon) seeded analysis members, zero on land."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((N_STEPS, MEMBERS, *grid.shape)) * grid.ocean).astype("f4")


def _write(writer: AnalysisWriter, grid, states: np.ndarray, steps: range, save_members: bool = True) -> None:
    doy = step_day_of_year(N_STEPS, SPY)
    for step in steps:
        writer.write(step, ensemble_fields(states[step], grid, float(doy[step]), save_members), states[step])


def _times() -> np.ndarray:
    return step_times(2012, N_STEPS, SPY, "standard")


def test_analysis_is_written_step_by_step_into_part_and_moved_into_place(tmp_path, tiny_grid):
    out, states = tmp_path / "analysis.nc", _states(tiny_grid)
    writer = AnalysisWriter(out, tiny_grid, _times(), MEMBERS, ATTRS, save_members=True)
    part = partial_path(out)
    assert part == tmp_path / "analysis.nc.part" and writer.steps_done == 0
    for step in range(N_STEPS):
        _write(writer, tiny_grid, states, range(step, step + 1))
        assert writer.steps_done == step + 1 and part.exists() and not out.exists()
        np.testing.assert_array_equal(writer.restart_state(), states[step])
    assert writer.finish() == out and out.exists() and not part.exists()

    ds = xr.open_dataset(out)
    assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["method"] == "test" and ds.attrs["source"] == "tests"
    assert ds.attrs["members"] == MEMBERS and ds.attrs["steps_done"] == N_STEPS
    names = {"thetao", "thetao_anomaly", "thetao_spread", "thetao_anomaly_member", "restart_anomaly", "mask"}
    assert names <= set(ds.data_vars)
    assert ds["thetao"].attrs["standard_name"] == "sea_water_potential_temperature"
    assert all(ds[name].attrs["units"] == "degC" for name in names - {"mask"})
    assert ds["depth"].attrs["positive"] == "down" and ds["lat"].attrs["units"] == "degrees_north"
    np.testing.assert_array_equal(ds["time"].values, _times())
    np.testing.assert_array_equal(ds["mask"].values, tiny_grid.ocean.astype("i1"))
    # the values are the fields as given, NaN on land (the 1e20 fill decoded)
    ocean = tiny_grid.ocean
    np.testing.assert_allclose(ds["thetao_anomaly"].values[:, ocean], states.mean(axis=1)[:, ocean], atol=1e-6)
    np.testing.assert_allclose(ds["thetao_spread"].values[:, ocean], states.std(axis=1, ddof=1)[:, ocean], atol=1e-6)
    members = ds["thetao_anomaly_member"].transpose("time", "member", ...).values
    np.testing.assert_array_equal(members[:, :, ocean], states[:, :, ocean])
    assert np.isnan(ds["thetao"].values[:, ~ocean]).all() and np.isfinite(ds["thetao"].values[:, ocean]).all()
    np.testing.assert_array_equal(ds["restart_anomaly"].values, states[-1])
    with netCDF4.Dataset(out) as nc:
        time = nc["time"]
        assert (time.units, time.calendar, time.standard_name) == ("days since 1950-01-01 00:00:00", "standard", "time")
        # a time block x one level x the whole tiny map: a point's series reads a chunk a block
        assert nc["thetao"].chunking() == [N_STEPS, 1, *tiny_grid.shape[1:]]


def test_field_chunks_are_a_time_block_a_level_and_a_tile():
    assert field_chunks(2920, (38, 180, 360)) == (CHUNK_STEPS, 1, 45, 90)  # 1 degree: 16 tiles of 45 x 90
    assert field_chunks(2920, (16, 72, 144)) == (CHUNK_STEPS, 1, 36, 72)  # 2.5 degree: 4 equal tiles
    assert field_chunks(5, (16, 36, 72)) == (5, 1, 36, 72)  # 5 degree: one tile; a short run, one block


def test_analysis_steps_are_held_for_their_time_block_and_written_on_closing(tmp_path, tiny_grid):
    n_steps = CHUNK_STEPS + 5
    rng = np.random.default_rng(1)
    states = (rng.standard_normal((n_steps, 1, *tiny_grid.shape)) * tiny_grid.ocean).astype("f4")
    times = step_times(2012, n_steps, SPY, "standard")
    out = tmp_path / "a.nc"
    writer = AnalysisWriter(out, tiny_grid, times, 1, ATTRS)
    doy = step_day_of_year(n_steps, SPY)
    for step in range(CHUNK_STEPS + 2):
        writer.write(step, ensemble_fields(states[step], tiny_grid, float(doy[step]), False), states[step])
    assert writer.steps_done == CHUNK_STEPS + 2
    np.testing.assert_array_equal(writer.restart_state(), states[CHUNK_STEPS + 1])
    with pytest.raises(ValueError, match="does not follow"):
        writer.write(CHUNK_STEPS + 3, ensemble_fields(states[0], tiny_grid, 2.5, False), states[0])
    writer.close()  # an interrupted run: the steps held are written and counted
    ds = xr.open_dataset(partial_path(out))
    assert ds.attrs["steps_done"] == CHUNK_STEPS + 2
    ocean = tiny_grid.ocean
    done = ds["thetao_anomaly"].values[: CHUNK_STEPS + 2]
    np.testing.assert_allclose(done[:, ocean], states[: CHUNK_STEPS + 2, 0][:, ocean], atol=1e-6)
    np.testing.assert_array_equal(ds["restart_anomaly"].values, states[CHUNK_STEPS + 1])
    assert np.isnan(ds["thetao_anomaly"].values[CHUNK_STEPS + 2 :]).all()  # nothing past them


def test_resumed_analysis_continues_at_the_next_step_and_equals_a_straight_write(tmp_path, tiny_grid):
    states = _states(tiny_grid)
    straight = AnalysisWriter(tmp_path / "straight.nc", tiny_grid, _times(), MEMBERS, ATTRS, save_members=True)
    _write(straight, tiny_grid, states, range(N_STEPS))
    straight.finish()

    out = tmp_path / "resumed.nc"
    first = AnalysisWriter(out, tiny_grid, _times(), MEMBERS, ATTRS, save_members=True)
    _write(first, tiny_grid, states, range(4))
    first.close()  # interrupted: the finished steps stay in .part
    assert xr.open_dataset(partial_path(out)).attrs["steps_done"] == 4 and not out.exists()
    again = AnalysisWriter(out, tiny_grid, _times(), MEMBERS, {}, resume=True)
    assert again.steps_done == 4
    np.testing.assert_array_equal(again.restart_state(), states[3])  # the state the next step starts from
    _write(again, tiny_grid, states, range(again.steps_done, N_STEPS))
    again.finish()

    a, b = xr.open_dataset(tmp_path / "straight.nc"), xr.open_dataset(out)
    assert set(a.data_vars) == set(b.data_vars) and a.attrs == b.attrs
    for name in a.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_analysis_writer_refuses_what_it_cannot_resume_and_restarts_a_fresh_run(tmp_path, tiny_grid):
    out = tmp_path / "a.nc"
    with pytest.raises(InputError, match="nothing to resume"):
        AnalysisWriter(out, tiny_grid, _times(), MEMBERS, ATTRS, resume=True)
    states = _states(tiny_grid)
    writer = AnalysisWriter(out, tiny_grid, _times(), MEMBERS, ATTRS)
    _write(writer, tiny_grid, states, range(2), save_members=False)
    writer.close()
    for members, times, save in ((2, _times(), False), (MEMBERS, _times()[:-1], False), (MEMBERS, _times(), True)):
        with pytest.raises(InputError, match="another method, period, grid, ensemble size or member saving"):
            AnalysisWriter(out, tiny_grid, times, members, ATTRS, resume=True, save_members=save)
    fresh = AnalysisWriter(out, tiny_grid, _times(), 1, ATTRS)  # not resuming: the old .part is replaced
    assert fresh.steps_done == 0
    fresh.write(0, ensemble_fields(states[0, :1], tiny_grid, 2.5, False), states[0, :1])
    fresh.close()
    ds = xr.open_dataset(partial_path(out))
    assert ds.attrs["members"] == 1 and "thetao_spread" not in ds and "thetao_anomaly_member" not in ds
    fresh = AnalysisWriter(out, tiny_grid, _times(), 1, ATTRS)
    fresh.discard()
    assert not partial_path(out).exists() and not out.exists()


def _check_world_file(path, world: ModelWorld, n_chunks: list[int]) -> xr.Dataset:
    ds = xr.open_dataset(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    grid = world.grid
    assert ds.attrs["Conventions"] == "CF-1.8" and "history" in ds.attrs
    thetao = ds["thetao"]
    assert thetao.dims == ("time", "depth", "lat", "lon") and thetao.attrs["units"] == "degC"
    assert thetao.attrs["standard_name"] == "sea_water_potential_temperature"
    assert ds["depth"].attrs["positive"] == "down" and ds["lon"].attrs["units"] == "degrees_east"
    assert ds["time"].attrs["standard_name"] == "time" and ds["time"].attrs["axis"] == "T"
    np.testing.assert_array_equal(ds["depth"].values, grid.depth)
    np.testing.assert_array_equal(ds["lat"].values, grid.lat)
    np.testing.assert_array_equal(ds["mask"].values, grid.ocean.astype("i1"))
    # every chunk's values are the world's temperature, NaN on land
    np.testing.assert_array_equal(thetao.values, world.temperature(0, world.n_steps))
    assert sum(n_chunks) == world.n_steps and len(n_chunks) > 1
    with netCDF4.Dataset(path) as nc:
        assert nc["time"].calendar == ds["time"].dt.calendar == world.calendar
        assert nc["thetao"].getncattr("_FillValue") == np.float32(1e20)
        assert nc.dimensions["time"].isunlimited()
    return ds


def test_control_world_file_holds_the_world_fields_and_its_noleap_times(tmp_path, tiny_world):
    chunks: list[int] = []
    write_world(tiny_world, tmp_path / "world.nc", chunk_steps=15, progress=chunks.append, command="deepda world x")
    ds = _check_world_file(tmp_path / "world.nc", tiny_world, chunks)
    assert chunks == [15, 15, 10] and ds.attrs["history"].endswith("deepda world x")
    assert list(ds["time"].values) == list(tiny_world.times())  # cftime noleap, step centres
    assert ds["time"].values[0].year == TINY.world.control_start_year and ds["time"].dt.calendar == "noleap"


def test_historical_world_file_has_standard_dates_across_a_leap_year(tmp_path, tiny_grid):
    world = ModelWorld(tiny_grid, TINY.world, run="historical", n_steps=2 * SPY, start_year=2011, oni=read_oni())
    chunks: list[int] = []
    write_world(world, tmp_path / "hist.nc", chunk_steps=100, progress=chunks.append)
    ds = _check_world_file(tmp_path / "hist.nc", world, chunks)
    np.testing.assert_array_equal(ds["time"].values.astype("datetime64[ns]"), world.times())
    stamps = ds.indexes["time"]
    assert stamps[0].year == 2011 and stamps[SPY].year == 2012 and stamps[-1].year == 2012
    # 5-day steps centred on the same dates in both years: the leap day of 2012 is skipped
    dates = [[t.strftime("%m-%d %H") for t in stamps[year * SPY + np.array([0, 11, 12, 72])]] for year in (0, 1)]
    assert dates[0] == dates[1] == ["01-03 12", "02-27 12", "03-04 12", "12-29 12"]


def test_world_file_keeps_the_world_description(tmp_path, tiny_world):
    write_world(tiny_world, tmp_path / "world.nc", chunk_steps=15)
    attrs = xr.open_dataset(tmp_path / "world.nc", decode_times=False).attrs
    expected = tiny_world.dataset(0, 1).attrs
    for name in ("title", "source", "run", "seed", "n_modes", "steps_per_year", "start_year", "calendar"):
        assert attrs.get(name) == expected[name], name
