"""Reading at scale: the World Ocean Database reader, many files of mixed formats in one
command, duplicates across files, streaming (one file at a time), and the bench's folders."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from engine import cli, io
from engine.bench.data import read_argo_folder
from engine.io.argo_write import copy_argo_as_new_float, write_argo_profiles, write_synthetic_argo_folder
from engine.io.reading import SeenProfiles, read_observation_files, read_observation_parts
from engine.io.wod import wod_platform
from engine.observe.qc import run_qc
from tests import data_factories as make

# --- World Ocean Database ------------------------------------------------------------------


def test_wod_reader_maps_values_flags_and_platforms(tmp_path: Path) -> None:
    table = io.read_wod(make.write_wod(tmp_path / "wod_ctd_2010.nc"))
    assert len(table) == make.WOD_ROWS
    platforms = table.groupby("profile_id")["platform"].first().astype(str).to_dict()
    assert platforms == make.WOD_PLATFORMS  # the bottle cast has no temperature and no rows
    assert run_qc(table)["qc"].value_counts().to_dict() == make.WOD_EXPECTED_QC
    ctd = table[table["profile_id"] == 20000001]
    assert ctd["depth"].tolist() == make.WOD_CASTS[0]["z"] and ctd["temperature"].tolist() == make.WOD_CASTS[0]["t"]
    assert ctd["time"].iloc[0] == pd.Timestamp("1770-01-01") + pd.Timedelta(days=88000.5)
    xbt = table[table["profile_id"] == 20000002]
    assert xbt.loc[xbt["depth"] == 100.0, "qc"].item() == 9  # WOD's gradient check
    assert np.isnan(xbt["temperature"].iloc[-1])  # a fill is a missing value, kept
    assert (table.loc[table["profile_id"] == 20000003, "qc"] == 9).all()  # the profile flag rejects the cast
    mooring = table[table["profile_id"] == 20000004]
    assert mooring["qc"].tolist() == [0, 9]  # its 100 m depth is flagged (z_WODflag)


def test_wod_temperatures_in_kelvin_are_converted(tmp_path: Path) -> None:
    file = make.write_wod(tmp_path / "wod.nc")
    celsius = io.read_wod(file)["temperature"].to_numpy()
    with netCDF4.Dataset(file, "a") as nc:
        nc.set_auto_mask(False)
        kelvin = nc["Temperature"][:]
        nc["Temperature"][:] = np.where(kelvin < 1e30, kelvin + 273.15, kelvin)
        nc["Temperature"].units = "kelvin"
    assert np.allclose(io.read_wod(file)["temperature"], celsius, atol=1e-4, equal_nan=True)


def test_wod_is_recognised_and_read_through_the_cli(tmp_path: Path, capsys) -> None:
    source = make.write_wod(tmp_path / "ocldb1570984477.6279_OSD.nc")
    assert io.observation_format(source, None) == "wod"
    for options in ([], ["--format", "wod"]):
        out = tmp_path / f"obs{len(options)}.nc"
        assert cli.main(["observe", "--read", str(source), *options, "--out", str(out)]) == 0
        assert "flagged bad in the source file" in capsys.readouterr().out
        assert len(io.read_profiles(out)) == make.WOD_ROWS


@pytest.mark.parametrize(
    ("dataset", "extra", "platform"),
    [
        ("profiling float", "", "argo"),
        ("XBT", "", "xbt"),
        ("bottle/rossette/net", "", "ctd"),
        ("moored buoy", "", "mooring"),
        ("", "wod_MRB_2010.nc", "mooring"),  # no dataset variable: the file name's dataset code
        ("", "ocldb1617988395.19301_PFL.nc", "argo"),
        ("", "ARGO PROFILING FLOAT 6902961", "argo"),  # else the Platform text
        ("drifting buoy", "", "unknown"),
    ],
)
def test_wod_dataset_names_map_to_platforms(dataset: str, extra: str, platform: str) -> None:
    assert wod_platform(dataset, extra) == platform


@pytest.mark.parametrize("missing", ["Temperature_row_size", "z_row_size"])
def test_wod_without_row_sizes_is_one_line_exit_2_and_nothing_written(tmp_path: Path, capsys, missing: str) -> None:
    bad = make.write_wod(tmp_path / "wod_bad.nc", drop=[missing])
    out = tmp_path / "obs.nc"
    assert cli.main(["observe", "--read", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and missing in err and "wod_bad.nc" in err and not out.exists()
    # among other files, after a good one: still nothing written
    make.write_argo(tmp_path / "D6901234_012.nc")
    assert cli.main(["observe", "--read", str(tmp_path / "D6901234_012.nc"), str(bad), "--out", str(out)]) == 2
    assert missing in capsys.readouterr().err.splitlines()[-1] and not out.exists()
    assert not list(tmp_path.glob("obs*"))  # no temporary file left either


def test_wod_row_sizes_that_do_not_add_up_are_refused(tmp_path: Path, capsys) -> None:
    bad = make.write_wod(tmp_path / "wod_cut.nc")
    with netCDF4.Dataset(bad, "a") as nc:
        nc["Temperature_row_size"][0] = 5  # one more than the cast's values
    assert cli.main(["observe", "--read", str(bad), "--out", str(tmp_path / "o.nc")]) == 2
    assert "adds up to" in capsys.readouterr().err and not (tmp_path / "o.nc").exists()


# --- many files, mixed formats ---------------------------------------------------------------


def test_mixed_formats_in_one_folder_qc_per_file_and_in_total(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    files = {
        "D6901234_012.nc": make.write_argo(folder / "D6901234_012.nc"),
        "R6901234_012.nc": make.write_argo(folder / "R6901234_012.nc"),  # the same profiles again
        "casts.csv": make.write_csv(folder / "casts.csv"),
        "en4.nc": make.write_en4(folder / "en4.nc"),
        "wod_ctd_2010.nc": make.write_wod(folder / "wod_ctd_2010.nc"),
    }
    mapping = ",".join(f"{ours}={theirs}" for ours, theirs in make.CSV_COLUMNS.items())
    out = tmp_path / "all.nc"
    assert cli.main(["observe", "--read", str(folder), "--columns", mapping, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    lines = [line for line in printed.err.splitlines() if "incoming/" in line]
    assert len(lines) == len(files) and all("measurements" in line and "good" in line for line in lines)
    assert "duplicate measurement 5" in next(line for line in lines if "R6901234" in line)  # the repeat's good rows
    singles = {
        name: io.open_observations(path, columns=make.CSV_COLUMNS if name.endswith(".csv") else None)[0]
        for name, path in files.items()
    }
    table = io.read_profiles(out)
    assert len(table) == sum(len(t) for t in singles.values())  # every row of every file kept
    assert set(table["platform"].astype(str)) >= {"argo", "xbt", "ctd", "mooring"}
    total_good = int(printed.out.split("good")[1].split()[0])  # the total table's 'good' row
    assert total_good == (table["qc"] == 0).sum() and f"{len(table)} measurements" in printed.out


def test_files_are_read_one_at_a_time(tmp_path: Path) -> None:
    first = make.write_argo(tmp_path / "D6901234_012.nc")
    reading = read_observation_files([first, tmp_path / "not_yet_there.nc"])
    path, table, summary = next(reading)  # the second file is not opened before it is needed
    assert path == first and summary["rows"].sum() == len(table) == make.ARGO_ROWS
    with pytest.raises(io.InputError, match="not_yet_there.nc"):
        next(reading)


@pytest.mark.parametrize("write", [make.write_wod, make.write_en4, make.write_argo])
def test_a_large_file_is_read_in_parts_with_the_same_result(tmp_path: Path, write) -> None:
    file = write(tmp_path / "big.nc")
    whole = next(read_observation_files([file]))[1]
    parts = list(read_observation_parts([file], part_rows=2))  # a few profiles (WOD: casts) at a time
    assert len(parts) >= 2 and [last for _, _, last in parts] == [False] * (len(parts) - 1) + [True]
    pd.testing.assert_frame_equal(pd.concat([t for _, t, _ in parts], ignore_index=True), whole)
    summaries = []
    rows, total = io.write_observation_files(
        [file], tmp_path / "o.nc", on_file=lambda p, s: summaries.append(s), part_rows=2
    )
    assert rows == len(whole) and len(summaries) == 1  # one QC line for the file, whatever its parts
    pd.testing.assert_frame_equal(summaries[0], total)
    assert dict(zip(total["code"], total["rows"], strict=True)) == whole["qc"].value_counts().to_dict()


def test_a_cast_repeated_within_a_file_is_a_duplicate_in_parts_too(tmp_path: Path) -> None:
    casts = [make.WOD_CASTS[0], make.WOD_CASTS[5], {**make.WOD_CASTS[0], "id": 30000001}]  # the CTD cast twice
    file = make.write_wod(tmp_path / "wod.nc", casts=casts)
    for part_rows in (2, 1 << 21):
        table = pd.concat([t for _, t, _ in read_observation_parts([file], part_rows=part_rows)])
        assert (table.loc[table["profile_id"] == 30000001, "qc"] == 8).all(), part_rows
        assert (table.loc[table["profile_id"] != 30000001, "qc"] == 0).all()


def test_seen_profiles_agrees_with_a_set_across_its_folds() -> None:
    rng = np.random.default_rng(3)
    seen, reference = SeenProfiles(), set()
    for _ in range(40):  # 40 x 3,000 keys: folded into the sorted array more than once
        keys = rng.integers(0, 300_000, 3_000)
        assert (seen.contains(keys) == np.isin(keys, list(reference))).all()
        seen.add(keys)
        reference.update(keys.tolist())
    assert len(seen) == len(reference) and len(seen.sorted) > 0


def test_csv_output_is_written_file_by_file_and_reads_back(tmp_path: Path) -> None:
    table = make.sample_table()
    halves = [table.iloc[:7], table.iloc[7:]]  # whole seconds in one, nanoseconds in the other
    out = tmp_path / "obs.csv"
    assert io.write_profiles_csv_incremental(iter(halves), out) == len(table)
    back = io.read_profiles_csv(out)
    pd.testing.assert_frame_equal(back, io.read_profiles_csv(_whole(table, tmp_path / "one.csv")))


def _whole(table: pd.DataFrame, path: Path) -> Path:
    io.write_profiles_csv(table, path)
    return path


# --- the bench's folders -----------------------------------------------------------------------


def test_argo_writer_round_trip(tmp_path: Path) -> None:
    table = io.read_argo(make.write_argo(tmp_path / "D.nc"))
    table = table[np.isfinite(table["depth"])].reset_index(drop=True)
    write_argo_profiles(table, tmp_path / "6901234_prof.nc", 6901234)
    back = io.read_argo(tmp_path / "6901234_prof.nc")
    assert len(back) == len(table) and np.allclose(back["depth"], table["depth"], atol=1e-3)
    assert np.array_equal(back["temperature"], table["temperature"], equal_nan=True)
    assert (back["time"].to_numpy() == table["time"].to_numpy()).all()


def test_copies_as_new_floats_are_new_profiles(tmp_path: Path) -> None:
    source = make.write_argo(tmp_path / "D6901234_012.nc")
    folder = tmp_path / "copies"
    folder.mkdir()
    for k in range(3):
        copy_argo_as_new_float(source, folder / f"c{k}.nc", 7_000_000 + k, float(k))
    tables = [t for _, t, _ in read_observation_files(sorted(folder.glob("*.nc")))]
    assert not any((t["qc"] == 8).any() for t in tables)  # moved in time: no duplicates
    assert tables[2]["profile_id"].iloc[0] // 1_000_000 == 7_000_002
    assert (tables[2]["time"] - tables[0]["time"] == pd.Timedelta(days=2)).all()


def test_bench_reading_counts_every_profile_and_each_repeat_once(tmp_path: Path) -> None:
    folder = tmp_path / "argo"
    folder.mkdir()
    write_synthetic_argo_folder(folder, 4)
    result = read_argo_folder(folder)
    assert result["files"] == 5 and result["profiles"] == 4 * 36 + 1
    assert result["duplicate_measurements"] == 100  # the one single-profile file repeats its float's cycle
    assert result["profiles_per_s"] > 0 and result["peak_rss_mb"] > 0
