"""Profile-table files: CF DSG netCDF and CSV round trips, and the EN4 / Argo / CSV readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from engine import io
from engine.config import NetworkSpec
from engine.io import dsg, profile_index
from engine.observe.profiles import COLUMNS, as_table, empty_table, qc_summary
from tests import data_factories as df


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Exactly equal: values (NaN where NaN), dtypes, order."""
    assert list(b.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


# --- DSG netCDF ---------------------------------------------------------------------------


def test_dsg_round_trip_is_exact(tmp_path: Path) -> None:
    table = df.sample_table()
    io.write_profiles(table, tmp_path / "obs.nc")
    _assert_same(table, io.read_profiles(tmp_path / "obs.nc"))


def test_dsg_round_trip_of_an_empty_table(tmp_path: Path) -> None:
    io.write_profiles(empty_table(), tmp_path / "empty.nc")
    _assert_same(empty_table(), io.read_profiles(tmp_path / "empty.nc"))


def test_dsg_file_is_cf_profile_contiguous_ragged_array(tmp_path: Path) -> None:
    table = df.sample_table()
    io.write_profiles(table, tmp_path / "obs.nc", attrs={"title": "test obs", "source": "unit test"})
    with xr.open_dataset(tmp_path / "obs.nc") as ds:
        assert ds.attrs["featureType"] == "profile"
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds.attrs["title"] == "test obs" and ds.attrs["source"] == "unit test"
        assert "deepda" in ds.attrs["history"]
        assert ds["profile_id"].attrs["cf_role"] == "profile_id"
        assert ds["rowSize"].attrs["sample_dimension"] == "obs"
        assert int(ds["rowSize"].sum()) == ds.sizes["obs"] == len(table)
        assert ds.sizes["profile"] == table["profile_id"].nunique()
        assert ds["depth"].attrs["positive"] == "down" and ds["depth"].attrs["axis"] == "Z"
        assert ds["depth"].attrs["units"] == "m"
        assert ds["temperature"].attrs["units"] == "degC"
        assert ds["lat"].attrs["standard_name"] == "latitude" and ds["lon"].attrs["units"] == "degrees_east"
        assert ds["time"].attrs["axis"] == "T" and ds["time"].dtype.kind == "M"  # xarray decodes the times
        assert ds["time"].values[0] == table["time"].iloc[0]
        assert ds["qc"].attrs["flag_meanings"].split()[9] == "flagged_bad_in_source_file"
        assert ds["platform"].attrs["flag_meanings"].split() == ["argo", "xbt", "ctd", "mooring", "sst", "unknown"]


def test_qc_flag_meanings_match_the_reason_codes() -> None:
    from engine.observe.profiles import QC_REASONS

    assert sorted(dsg._QC_FLAG_MEANINGS) == [0, *sorted(QC_REASONS)]


def test_write_refuses_scattered_profiles_and_leaves_nothing(tmp_path: Path) -> None:
    table = df.sample_table()
    scattered = pd.concat([table.iloc[:2], table.iloc[3:5], table.iloc[2:3], table.iloc[5:]])
    with pytest.raises(ValueError, match="not contiguous"):
        io.write_profiles(scattered, tmp_path / "obs.nc")
    moved = table.copy()
    moved.loc[1, "lat"] += 1.0
    with pytest.raises(ValueError, match="more than one lat"):
        io.write_profiles(moved, tmp_path / "obs.nc")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "obs.nc"
    io.write_profiles(df.sample_table(), target)
    before = target.read_bytes()
    bad = df.sample_table().drop(columns="depth")
    with pytest.raises(ValueError, match="depth"):
        io.write_profiles(bad, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.nc"]


def test_write_to_a_missing_folder_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(io.InputError) as err:
        io.write_profiles(df.sample_table(), tmp_path / "nope" / "obs.nc")
    assert "nope" in str(err.value) and "\n" not in str(err.value)


# --- CSV ----------------------------------------------------------------------------------


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    table = df.sample_table()
    io.write_profiles_csv(table, tmp_path / "obs.csv")
    _assert_same(table, io.read_profiles_csv(tmp_path / "obs.csv"))


def test_csv_round_trip_of_awkward_floats(tmp_path: Path) -> None:
    """Shortest round-trip formatting is exact for any float32 / float64, tiny or huge."""
    rng = np.random.default_rng(1)
    n = 2000
    scale = 10.0 ** rng.integers(-8, 8, n)
    table = pd.DataFrame(
        {
            "time": pd.Timestamp("2000-01-01") + pd.to_timedelta(rng.integers(0, 10**18, n), unit="ns"),
            "lat": rng.uniform(-90, 90, n),
            "lon": rng.uniform(0, 360, n),
            "depth": (rng.random(n) * scale).astype("f4"),
            "temperature": (rng.normal(size=n) * scale).astype("f4"),
            "platform": "argo",
            "obs_error": (rng.random(n) * scale).astype("f4"),
            "profile_id": np.arange(n),
            "qc": 0,
        }
    )
    table = as_table(table)
    io.write_profiles_csv(table, tmp_path / "floats.csv")
    _assert_same(table, io.read_profiles_csv(tmp_path / "floats.csv"))


def test_csv_is_readable_text(tmp_path: Path) -> None:
    io.write_profiles_csv(df.sample_table(), tmp_path / "obs.csv")
    lines = (tmp_path / "obs.csv").read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1].startswith("2001-01-01T00:00:00.000000000,") or lines[1].startswith("2001-01-01T00:00:00,")


def test_csv_with_column_mapping_and_default_errors(tmp_path: Path) -> None:
    df.write_csv(tmp_path / "user.csv")
    table = io.read_profiles_csv(tmp_path / "user.csv", columns=df.CSV_COLUMNS)
    assert len(table) == len(df.CSV_ROWS)
    assert table["platform"].tolist()[:6] == ["argo"] * 4 + ["xbt"] * 2
    assert table["platform"].iloc[9] == "mooring"  # "TAO mooring"
    defaults = dict(NetworkSpec().errors)  # each platform's own error where the file gives none
    assert table["obs_error"].iloc[0] == np.float32(defaults["argo"])
    assert table["obs_error"].iloc[4] == np.float32(defaults["xbt"])
    assert table["time"].iloc[4] == pd.Timestamp("2001-03-02T06:00")
    assert table["lon"].iloc[0] == -30.0  # normalising is QC's job
    # one profile per (time, position, platform), in order of appearance
    assert table["profile_id"].tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 5]
    override = io.read_profiles_csv(tmp_path / "user.csv", columns=df.CSV_COLUMNS, obs_error={"argo": 0.1})
    assert override["obs_error"].iloc[0] == np.float32(0.1) and override["obs_error"].iloc[4] == np.float32(
        defaults["xbt"]
    )


def test_csv_scattered_profile_rows_are_gathered(tmp_path: Path) -> None:
    rows = [df.CSV_ROWS[0], df.CSV_ROWS[4], df.CSV_ROWS[1]]
    df.write_csv(tmp_path / "user.csv", rows)
    table = io.read_profiles_csv(tmp_path / "user.csv", columns=df.CSV_COLUMNS)
    assert table["depth"].tolist() == [5.0, 100.0, 10.0]
    assert table["profile_id"].tolist() == [0, 0, 1]
    io.write_profiles(table, tmp_path / "obs.nc")  # now a valid ragged array


# --- EN4 ----------------------------------------------------------------------------------


def test_en4_reader_maps_values_units_and_platforms(tmp_path: Path) -> None:
    table = io.read_en4(df.write_en4(tmp_path / "EN.4.2.2.f.profiles.g10.200001.nc"))
    assert len(table) == df.EN4_ROWS
    firsts = table.groupby("profile_id").first()
    assert firsts["platform"].tolist() == df.EN4_PLATFORMS
    assert firsts["lat"].tolist() == [p["lat"] for p in df.EN4_PROFILES]
    assert table["time"].iloc[0] == pd.Timestamp("2000-01-01T12:00")  # JULD 18262.5 days since 1950
    xbt = table[table["profile_id"] == 1]
    assert xbt["depth"].tolist() == [1.0, 10.0, 100.0, 200.0, 400.0]
    assert np.isnan(xbt["temperature"].iloc[2])  # fill -> NaN, kept as a row
    argo = table[table["profile_id"] == 0]
    assert argo["temperature"].tolist() == [25.0, 24.0, 20.0, 8.0]  # POTM_CORRECTED, not TEMP (+0.25)
    assert argo["qc"].tolist() == [0, 0, 9, 0]
    assert table["obs_error"].iloc[4] == np.float32(dict(NetworkSpec().errors)["xbt"])  # XBT default


def test_en4_reader_converts_kelvin_units(tmp_path: Path) -> None:
    celsius = io.read_en4(df.write_en4(tmp_path / "c.nc"))
    kelvin = io.read_en4(df.write_en4(tmp_path / "k.nc", kelvin=True))
    np.testing.assert_allclose(kelvin["temperature"], celsius["temperature"], atol=1e-4)


def test_en4_reader_falls_back_to_temp(tmp_path: Path) -> None:
    table = io.read_en4(df.write_en4(tmp_path / "t.nc", drop=["POTM_CORRECTED"]))
    assert table["temperature"].iloc[0] == np.float32(25.25)


# --- Argo ---------------------------------------------------------------------------------


def test_argo_reader_prefers_adjusted_in_delayed_mode(tmp_path: Path) -> None:
    table = io.read_argo(df.write_argo(tmp_path / "D6901234_012.nc"))
    assert len(table) == df.ARGO_ROWS
    delayed, realtime = table[table["profile_id"] % 100 == 0], table[table["profile_id"] % 100 == 1]
    assert delayed["temperature"].tolist() == df.ARGO_TEMP_ADJUSTED[0]
    assert realtime["temperature"].tolist() == df.ARGO_TEMP[1][:3]
    assert (table["qc"] == 9).sum() == df.ARGO_SOURCE_BAD
    assert delayed["qc"].tolist() == [0, 9, 0, 0] and realtime["qc"].tolist() == [0, 0, 9]
    assert set(table["platform"]) == {"argo"}
    assert table["profile_id"].iloc[0] == df.ARGO_WMO * 1_000_000 + df.ARGO_CYCLE * 100
    assert table["time"].iloc[0] == pd.Timestamp("2001-01-01T06:00")


def test_argo_real_time_mode_uses_raw_values(tmp_path: Path) -> None:
    table = io.read_argo(df.write_argo(tmp_path / "R6901234_012.nc", data_mode="RR"))
    assert table["temperature"].tolist()[:4] == df.ARGO_TEMP[0]


def test_argo_pressure_to_depth_is_sane(tmp_path: Path) -> None:
    table = io.read_argo(df.write_argo(tmp_path / "D6901234_012.nc"))
    deepest = float(table["depth"].iloc[3])  # 2000 dbar (adjusted) at 40 S
    assert 1960.0 < deepest < 1990.0
    assert float(table["depth"].iloc[0]) == pytest.approx(4.0 * 0.993, abs=0.05)
    assert np.all(np.diff(table["depth"].iloc[:4]) > 0)


def test_depth_from_pressure_matches_mid_latitude_rule_of_thumb() -> None:
    depth = io.depth_from_pressure(np.array([0.0, 1000.0, 2000.0]), np.array([45.0, 45.0, 45.0]))
    assert depth[0] == pytest.approx(0.0, abs=1e-6)
    assert depth[2] == pytest.approx(1980.0, abs=10.0)


# --- open_observations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "writer", "rows"),
    [
        ("EN.4.2.2.f.profiles.g10.200001.nc", df.write_en4, df.EN4_ROWS),
        ("D6901234_012.nc", df.write_argo, df.ARGO_ROWS),
    ],
)
def test_open_observations_detects_netcdf_formats(tmp_path: Path, name: str, writer, rows: int) -> None:
    table, summary = io.open_observations(writer(tmp_path / name))
    assert len(table) == rows == int(summary["rows"].sum())
    assert table["lon"].between(0, 360).all()  # QC normalised the longitudes


def test_open_observations_reads_its_own_outputs(tmp_path: Path) -> None:
    table = df.sample_table()
    io.write_profiles(table, tmp_path / "obs.nc")
    io.write_profiles_csv(table, tmp_path / "obs.csv")
    from_nc, summary = io.open_observations(tmp_path / "obs.nc")
    from_deepda, _ = io.open_observations(tmp_path / "obs.nc", "deepda")
    from_csv, _ = io.open_observations(tmp_path / "obs.csv")
    _assert_same(from_nc, from_csv)
    _assert_same(from_nc, from_deepda)
    assert len(from_nc) == len(table)
    pd.testing.assert_frame_equal(summary, qc_summary(from_nc))


def test_en4_summary_counts_every_reason(tmp_path: Path) -> None:
    _, summary = io.open_observations(df.write_en4(tmp_path / "en4.nc"), "en4")
    assert dict(zip(summary["code"], summary["rows"], strict=True)) == df.EN4_EXPECTED_QC


# --- profile-level summary (profile dimension and qc only) ---------------------------------


def _with_empty_profiles(path: Path, out: Path, before: list[int]) -> Path:
    """A copy of a DSG file with empty profiles (rowSize 0) inserted before the profiles
    ``before``: our writers never make one, but the layout allows it."""
    with xr.open_dataset(path, decode_cf=False) as ds:
        ds = ds.load()
    n = len(before)
    variables = {}
    for name, var in ds.variables.items():
        if var.dims != ("profile",):
            variables[name] = var
            continue
        extra = {"profile_id": 1000 + np.arange(n), "rowSize": np.zeros(n)}.get(name, var.values[[0] * n])
        values = np.insert(var.values, before, extra).astype(var.dtype)
        variables[name] = xr.Variable("profile", values, var.attrs)
    xr.Dataset(variables, attrs=ds.attrs).to_netcdf(out)
    return out


def _without(path: Path, out: Path, names: tuple[str, ...]) -> Path:
    """A copy of a DSG file lacking the variables ``names``."""
    with xr.open_dataset(path, decode_cf=False) as ds:
        ds.drop_vars(list(names)).load().to_netcdf(out)
    return out


def _expected_headers(full: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """Per-profile rows and good rows of a full table, in the order ``ids`` (0 where absent)."""
    by_profile = full.assign(good=full["qc"].to_numpy() == 0).groupby("profile_id")
    return pd.DataFrame(
        {
            "rows": by_profile.size().reindex(ids, fill_value=0).to_numpy(np.int64),
            "good": by_profile["good"].sum().reindex(ids, fill_value=0).to_numpy(np.int64),
        }
    )


def _flagged_table() -> pd.DataFrame:
    """The sample table with more rows flagged (reasons 1, 8 and 9 besides its 2 and 9)."""
    table = df.sample_table()
    table.loc[[5, 12, 15], "qc"] = np.array([1, 8, 9], dtype=np.int8)
    return table


def _write_in_chunks(table: pd.DataFrame, path: Path) -> None:
    """write_profiles_incremental in two chunks (whole seconds and no NaT: what the OSSE writes)."""
    table = table.assign(time=table["time"].fillna(pd.Timestamp("2005-05-05")).dt.floor("s"))
    io.write_profiles_incremental(path, [table.iloc[:8], table.iloc[8:]])


@pytest.mark.parametrize("writer", ["write_profiles", "write_profiles_incremental"])
def test_profile_summary_equals_the_full_table(tmp_path: Path, writer: str) -> None:
    table = _flagged_table()
    written = tmp_path / "written.nc"
    if writer == "write_profiles":
        io.write_profiles(table, written)
    else:
        _write_in_chunks(table, written)
    path = _with_empty_profiles(written, tmp_path / "obs.nc", before=[0, 3, table["profile_id"].nunique()])
    headers, summary = io.read_profile_summary(path)
    full = io.read_profiles(path)
    assert set(full["qc"]) == {0, 1, 2, 8, 9} and (headers["rows"] == 0).sum() == 3
    pd.testing.assert_frame_equal(summary, qc_summary(full), check_exact=True)
    pd.testing.assert_frame_equal(
        headers[["rows", "good"]], _expected_headers(full, headers["profile_id"].to_numpy()), check_exact=True
    )
    # the profile variables are the full table's first row of each (non-empty) profile
    firsts = full.drop_duplicates("profile_id")[["profile_id", "time", "lat", "lon", "platform"]]
    shown = headers[headers["rows"] > 0][list(firsts.columns)]
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), firsts.reset_index(drop=True), check_exact=True)
    assert list(headers.columns) == ["profile_id", "time", "lat", "lon", "platform", "rows", "good"]


def test_profile_summary_reads_neither_temperature_nor_depth(tmp_path: Path) -> None:
    io.write_profiles(_flagged_table(), tmp_path / "obs.nc")
    lean = _without(tmp_path / "obs.nc", tmp_path / "lean.nc", ("depth", "temperature", "obs_error"))
    for a, b in zip(io.read_profile_summary(lean), io.read_profile_summary(tmp_path / "obs.nc"), strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_profile_summary_of_an_empty_file(tmp_path: Path) -> None:
    io.write_profiles(empty_table(), tmp_path / "empty.nc")
    headers, summary = io.read_profile_summary(tmp_path / "empty.nc")
    assert headers.empty and "good" in headers
    pd.testing.assert_frame_equal(summary, qc_summary(io.read_profiles(tmp_path / "empty.nc")), check_exact=True)


def test_good_rows_per_profile_with_empty_profiles() -> None:
    qc = np.array([0, 9, 0, 0, 2, 0], dtype=np.int8)
    rows = np.array([0, 2, 0, 0, 3, 1, 0])
    np.testing.assert_array_equal(profile_index._good_per_profile(qc, rows), [0, 1, 0, 0, 2, 1, 0])
    np.testing.assert_array_equal(profile_index._good_per_profile(np.zeros(0, np.int8), np.zeros(2, int)), [0, 0])
    assert profile_index._good_per_profile(np.zeros(0, np.int8), np.zeros(0, int)).shape == (0,)


def test_profile_summary_errors_are_one_line(tmp_path: Path) -> None:
    io.write_profiles(df.sample_table(), tmp_path / "obs.nc")
    cases = {
        tmp_path / "missing.nc": "does not exist",
        df.write_csv(tmp_path / "user.csv"): "not a readable netCDF",
        df.write_en4(tmp_path / "en4.nc"): "not a DeepDA profile (DSG) file",
        _without(tmp_path / "obs.nc", tmp_path / "noqc.nc", ("qc",)): "no qc",
    }
    for path, problem in cases.items():
        with pytest.raises(io.InputError) as err:
            io.read_profile_summary(path)
        assert problem in str(err.value) and "\n" not in str(err.value)
