"""Malformed observations: bad rows are flagged with a reason and counted (never dropped);
unreadable files fail with one clear line naming the file, the problem and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import io
from engine.observe import qc
from engine.observe.profiles import QC_REASONS, as_table, qc_summary
from tests import data_factories as df


def _table(rows: list[dict]) -> pd.DataFrame:
    """A profile table from partial rows (defaults: a good Argo measurement)."""
    base = {
        "time": pd.Timestamp("2001-06-01"),
        "lat": 0.5,
        "lon": 10.0,
        "depth": 10.0,
        "temperature": 20.0,
        "platform": "argo",
        "obs_error": 0.2,
        "profile_id": 0,
        "qc": 0,
    }
    return as_table(pd.DataFrame([{**base, **row} for row in rows]))


def _codes(table: pd.DataFrame, **kwargs) -> list[int]:
    out = qc.run_qc(table, **kwargs)
    assert len(out) == len(table)  # nothing lost
    return out["qc"].tolist()


def _one_line(err: pytest.ExceptionInfo, *words: str) -> str:
    message = str(err.value)
    assert "\n" not in message and message.strip() == message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


# --- bad rows -------------------------------------------------------------------------------


def test_nan_temperature_and_missing_fields() -> None:
    table = _table([{}, {"temperature": np.nan}, {"depth": np.nan}, {"time": pd.NaT}, {"obs_error": np.nan}])
    assert _codes(table) == [0, 1, 1, 1, 1]


def test_out_of_range_temperature() -> None:
    table = _table([{"temperature": t, "depth": d} for d, t in enumerate((400.0, -5.0, 40.0, -2.5))])
    assert _codes(table) == [2, 2, 0, 0]


def test_kelvin_profile_is_told_from_a_wild_value() -> None:
    kelvin = [{"profile_id": 1, "depth": d, "temperature": t} for d, t in ((5, 298.15), (50, 290.0), (500, 280.0))]
    celsius = [{"profile_id": 2, "depth": d, "temperature": t} for d, t in ((5, 25.0), (50, 300.0), (500, 8.0))]
    assert _codes(_table(kelvin + celsius)) == [3, 3, 3, 0, 2, 0]


def test_impossible_latitude() -> None:
    assert _codes(_table([{"lat": 95.0}, {"lat": -90.5, "profile_id": 1}, {"lat": 90.0, "profile_id": 2}])) == [4, 4, 0]


def test_impossible_longitude_and_normalisation() -> None:
    table = _table([{"lon": 400.0}, {"lon": -30.0, "profile_id": 1}, {"lon": -181.0, "profile_id": 2}])
    out = qc.run_qc(table)
    assert out["qc"].tolist() == [4, 0, 4]
    assert out["lon"].tolist() == [400.0, 330.0, -181.0]  # bad values kept as found, for the record


def test_negative_depth() -> None:
    assert _codes(_table([{"depth": -5.0}, {"depth": 0.0}])) == [5, 0]


def test_deeper_than_the_sea_floor() -> None:
    grid = df.bathymetry_grid()  # floor at 550 m near (-22.5, 292.5); land at (22.5, 22.5)
    table = _table(
        [
            {"lat": -20.0, "lon": 290.0, "depth": 500.0},
            {"lat": -20.0, "lon": 290.0, "depth": 600.0},
            {"lat": -20.0, "lon": -70.0, "depth": 700.0, "profile_id": 1},  # same cell, other convention
            {"lat": 20.0, "lon": 20.0, "depth": 0.0, "profile_id": 2},  # land cell
            {"lat": -60.0, "lon": 200.0, "depth": 5000.0, "profile_id": 3},  # open ocean below the grid
        ]
    )
    assert _codes(table, grid=grid) == [0, 6, 6, 6, 0]
    assert _codes(table) == [0, 0, 0, 0, 0]  # without a grid the check is off


def test_sea_floor_on_the_real_coarse_grid(coarse_grid) -> None:
    """A shelf column (ocean above the bottom level) and a land cell of the shipped geography."""
    ocean = coarse_grid.ocean
    n_ocean = ocean.sum(axis=0)
    i, j = np.argwhere((n_ocean > 0) & (n_ocean < ocean.shape[0]))[0]
    floor = coarse_grid.depth_bounds[n_ocean[i, j] - 1, 1]
    li, lj = np.argwhere(~ocean[0])[0]
    lat, lon = coarse_grid.lat, coarse_grid.lon
    table = _table(
        [
            {"lat": lat[i], "lon": lon[j], "depth": coarse_grid.depth[0]},
            {"lat": lat[i], "lon": lon[j], "depth": floor + 1.0},
            {"lat": lat[li], "lon": lon[lj], "depth": 1.0, "profile_id": 1},
        ]
    )
    assert _codes(table, grid=coarse_grid) == [0, 6, 6]


def test_time_outside_the_period() -> None:
    times = ["1980-12-31T23:59", "1981-01-01", "2020-12-31T23:59", "2021-01-01"]
    table = _table([{"time": pd.Timestamp(t), "profile_id": i} for i, t in enumerate(times)])
    assert _codes(table, period="1981-2020") == [7, 0, 0, 7]
    assert _codes(table, period=(1981, 2020)) == [7, 0, 0, 7]
    assert _codes(table, period=("1981-01-01", pd.Timestamp("2020-06-01"))) == [7, 0, 7, 7]


def test_period_forms_and_errors() -> None:
    start, end = qc.period_bounds("2001")
    assert start == pd.Timestamp("2001-01-01") and end.year == 2001 and end.month == 12 and end.day == 31
    assert qc.period_bounds("1981-01/2020-06")[1].month == 6
    with pytest.raises(ValueError, match="ends before"):
        qc.period_bounds("2020-1981")
    with pytest.raises(ValueError, match="cannot be read"):
        qc.period_bounds(("soon", "later"))


def test_duplicate_row_after_the_first() -> None:
    table = _table([{}, {"temperature": 21.0}, {"depth": 20.0}, {}])
    assert _codes(table) == [0, 8, 0, 8]


def test_duplicate_of_a_bad_row_is_not_a_duplicate() -> None:
    table = _table([{"temperature": np.nan}, {"temperature": 21.0}])  # the first good one is kept
    assert _codes(table) == [1, 0]


def test_first_reason_wins_and_source_flags_stay() -> None:
    table = _table(
        [
            {"temperature": np.nan, "depth": -1.0, "lat": 95.0},  # NaN before position before depth
            {"lat": 95.0, "depth": -1.0, "profile_id": 1},
            {"qc": 9, "profile_id": 2, "lat": 5.0},  # source flag kept
            {"qc": 9, "temperature": 400.0, "profile_id": 3, "lat": 6.0},  # a check of ours names it
        ]
    )
    assert _codes(table) == [1, 4, 9, 2]


def test_qc_is_idempotent_and_only_adds_flags() -> None:
    df_rows = [{}, {"temperature": 400.0}, {"time": pd.Timestamp("1970-01-01"), "profile_id": 1}, {}]
    once = qc.run_qc(_table(df_rows), period="1981-2020")
    again = qc.run_qc(once)  # no period now: the code 7 stays
    pd.testing.assert_frame_equal(once, again)
    assert again["qc"].tolist() == [0, 2, 7, 8]


def test_run_qc_does_not_modify_its_input() -> None:
    table = _table([{"lon": -30.0, "temperature": 400.0}])
    before = table.copy()
    qc.run_qc(table)
    pd.testing.assert_frame_equal(table, before)


def test_csv_with_every_kind_of_bad_row(tmp_path: Path) -> None:
    df.write_csv(tmp_path / "user.csv")
    table, summary = io.open_observations(tmp_path / "user.csv", columns=df.CSV_COLUMNS, period="1981-2020")
    assert len(table) == len(df.CSV_ROWS) == int(summary["rows"].sum())
    assert table["qc"].tolist() == [row[6] for row in df.CSV_ROWS]
    assert set(summary["reason"]) >= {QC_REASONS[c] for c in (1, 2, 3, 4, 5, 7, 8)}


def test_argo_flag_4_is_source_bad(tmp_path: Path) -> None:
    table, summary = io.open_observations(df.write_argo(tmp_path / "D6901234_012.nc"), "argo")
    counts = dict(zip(summary["code"], summary["rows"], strict=True))
    assert counts[9] == df.ARGO_SOURCE_BAD
    assert len(table) == df.ARGO_ROWS == sum(counts.values())


def test_argo_adjusted_value_removed_in_delayed_mode_is_kept_and_counted(tmp_path: Path) -> None:
    """In 'D' mode a fill in TEMP_ADJUSTED means the operator removed the value: a row, not padding."""
    table, _ = io.open_observations(df.write_argo(tmp_path / "D6901234_012.nc", data_mode="DD"))
    assert len(table) == df.ARGO_ROWS
    assert table["qc"].tolist()[4:] == [1, 1, 1]


def test_en4_profile_and_position_flags_flag_whole_profiles(tmp_path: Path) -> None:
    table = io.read_en4(df.write_en4(tmp_path / "en4.nc"))
    assert table.loc[table["profile_id"] == 2, "qc"].tolist() == [9, 9]  # PROFILE_POTM_QC 4
    assert table.loc[table["profile_id"] == 4, "qc"].tolist() == [9]  # POSITION_QC 4


def test_summary_counts_add_up() -> None:
    table = qc.run_qc(_table([{}, {"temperature": np.nan}, {"temperature": 99.0}, {"depth": -3.0}]))
    summary = qc_summary(table)
    assert summary["rows"].sum() == 4
    assert summary.set_index("code")["rows"].to_dict() == {0: 1, 1: 1, 2: 1, 5: 1}


# --- unreadable files: one line, names the file and the fix ---------------------------------


def test_missing_file(tmp_path: Path) -> None:
    for fmt in (None, "en4", "argo", "csv", "dsg"):
        with pytest.raises(io.InputError) as err:
            io.open_observations(tmp_path / "nowhere.nc", fmt)
        _one_line(err, "nowhere.nc", "does not exist", "check the path")


def test_not_a_netcdf_file(tmp_path: Path) -> None:
    (tmp_path / "notes.nc").write_text("these are not the profiles you are looking for\n")
    for fmt in (None, "en4", "argo", "dsg"):
        with pytest.raises(io.InputError) as err:
            io.open_observations(tmp_path / "notes.nc", fmt)
        _one_line(err, "notes.nc", "not a readable netCDF file")


def test_empty_netcdf_file(tmp_path: Path) -> None:
    (tmp_path / "empty.nc").write_bytes(b"")
    with pytest.raises(io.InputError) as err:
        io.open_observations(tmp_path / "empty.nc", "en4")
    _one_line(err, "empty.nc", "empty")


def test_argo_file_missing_temp(tmp_path: Path) -> None:
    path = df.write_argo(tmp_path / "R6901234_012.nc", drop=["TEMP"])
    with pytest.raises(io.InputError) as err:
        io.open_observations(path, "argo")
    _one_line(err, "R6901234_012.nc", "TEMP", "--format")


def test_en4_file_missing_temperature_and_position(tmp_path: Path) -> None:
    path = df.write_en4(tmp_path / "en4.nc", drop=["POTM_CORRECTED", "TEMP"])
    with pytest.raises(io.InputError) as err:
        io.read_en4(path)
    _one_line(err, "en4.nc", "POTM_CORRECTED / TEMP")
    path = df.write_en4(tmp_path / "en4b.nc", drop=["LATITUDE"])
    with pytest.raises(io.InputError) as err:
        io.read_en4(path)
    _one_line(err, "en4b.nc", "LATITUDE")


def test_netcdf_of_unknown_layout(tmp_path: Path) -> None:
    import xarray as xr

    xr.Dataset({"sst": ("x", np.zeros(3))}).to_netcdf(tmp_path / "other.nc")
    with pytest.raises(io.InputError) as err:
        io.open_observations(tmp_path / "other.nc")
    _one_line(err, "other.nc", "--format")
    with pytest.raises(io.InputError) as err:
        io.read_profiles(tmp_path / "other.nc")
    _one_line(err, "other.nc", "not a DeepDA/CF profile file")


def test_csv_missing_a_mapped_column(tmp_path: Path) -> None:
    df.write_csv(tmp_path / "user.csv")
    columns = {**df.CSV_COLUMNS, "temperature": "temperature_degC"}
    with pytest.raises(io.InputError) as err:
        io.open_observations(tmp_path / "user.csv", columns=columns)
    _one_line(err, "user.csv", "temperature_degC", "temp_c", "mapping")


def test_csv_without_mapping_lacks_columns(tmp_path: Path) -> None:
    df.write_csv(tmp_path / "user.csv")
    with pytest.raises(io.InputError) as err:
        io.open_observations(tmp_path / "user.csv")
    _one_line(err, "user.csv", "'time'", "'temperature'")


def test_empty_csv(tmp_path: Path) -> None:
    for content in ("", "\n\n"):
        (tmp_path / "empty.csv").write_text(content)
        with pytest.raises(io.InputError) as err:
            io.open_observations(tmp_path / "empty.csv", columns=df.CSV_COLUMNS)
        _one_line(err, "empty.csv", "empty")


def test_csv_header_only_is_refused_not_an_empty_table(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text(",".join(df.CSV_COLUMNS.values()) + "\n")
    with pytest.raises(io.InputError, match="header but no data rows"):
        io.open_observations(tmp_path / "header.csv", columns=df.CSV_COLUMNS)


def test_csv_column_with_nothing_readable(tmp_path: Path) -> None:
    rows = [("yesterday", *row[1:]) for row in df.CSV_ROWS[:3]]
    df.write_csv(tmp_path / "user.csv", rows)
    with pytest.raises(io.InputError) as err:
        io.open_observations(tmp_path / "user.csv", columns=df.CSV_COLUMNS)
    _one_line(err, "user.csv", "'date'", "no readable dates")


def test_csv_unreadable_entries_become_flagged_rows(tmp_path: Path) -> None:
    rows = [df.CSV_ROWS[0], ("someday", *df.CSV_ROWS[1][1:]), (*df.CSV_ROWS[1][:4], "warm", *df.CSV_ROWS[1][5:])]
    df.write_csv(tmp_path / "user.csv", rows)
    table, _ = io.open_observations(tmp_path / "user.csv", columns=df.CSV_COLUMNS)
    assert table["qc"].tolist() == [0, 13, 13]  # unreadable text, flagged on its row


def test_csv_foreign_qc_column_is_refused(tmp_path: Path) -> None:
    frame = pd.read_csv(df.write_csv(tmp_path / "user.csv"))
    frame["qc"] = "A"
    frame.to_csv(tmp_path / "user.csv", index=False)
    with pytest.raises(io.InputError) as err:
        io.open_observations(tmp_path / "user.csv", columns=df.CSV_COLUMNS)
    _one_line(err, "user.csv", "'qc'", "DeepDA QC codes")


def test_unknown_format_name(tmp_path: Path) -> None:
    path = df.write_en4(tmp_path / "en4.nc")
    with pytest.raises(io.InputError) as err:
        io.open_observations(path, "hadiod")
    _one_line(err, "hadiod", "en4", "argo", "csv")


def test_unreadable_period(tmp_path: Path) -> None:
    with pytest.raises(io.InputError) as err:
        io.open_observations(df.write_en4(tmp_path / "en4.nc"), period="the eighties")
    _one_line(err, "the eighties", "1981-2020")


def test_unknown_mapping_key_and_mapping_for_netcdf(tmp_path: Path) -> None:
    df.write_csv(tmp_path / "user.csv")
    with pytest.raises(io.InputError) as err:
        io.open_observations(tmp_path / "user.csv", columns={**df.CSV_COLUMNS, "temp": "temp_c"})
    _one_line(err, "temp", "map any of")
    with pytest.raises(io.InputError) as err:
        io.open_observations(df.write_en4(tmp_path / "en4.nc"), columns=df.CSV_COLUMNS)
    _one_line(err, "en4.nc", "CSV files only")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(io.InputError) as err:
        io.open_observations(tmp_path, "en4")
    _one_line(err, str(tmp_path), "folder")


def test_damaged_ragged_array(tmp_path: Path) -> None:
    import netCDF4

    io.write_profiles(df.sample_table(), tmp_path / "obs.nc")
    with netCDF4.Dataset(tmp_path / "obs.nc", "a") as nc:
        nc["rowSize"][0] = nc["rowSize"][0] + 1
    with pytest.raises(io.InputError) as err:
        io.read_profiles(tmp_path / "obs.nc")
    _one_line(err, "obs.nc", "rowSize", "damaged")


def test_osse_observations_carry_the_qc_of_the_whole_table(tiny_grid):
    from engine.observe.network import ObservingNetwork, observe
    from engine.osse import historical_world, osse_observations
    from tests.conftest import TINY

    world = historical_world(TINY, tiny_grid, (1999, 2000))
    network = ObservingNetwork(tiny_grid, TINY.network)
    chunks = list(osse_observations(world, network, tiny_grid))
    assert len(chunks) == 2  # one per year
    whole = qc.run_qc(observe(world, network), tiny_grid)
    stored = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(stored, whole)
    # what the file stores is what an assimilation reading it with the grid would use
    pd.testing.assert_series_equal(qc.run_qc(stored, tiny_grid)["qc"], stored["qc"])
