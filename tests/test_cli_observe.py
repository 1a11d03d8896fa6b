"""`deepda observe --read`: real formats through the CLI, QC summary printed, bad files exit 2."""

import pytest

from engine import cli, io
from tests import data_factories as make


def test_read_en4_prints_the_qc_summary_and_keeps_flagged_rows(tmp_path, capsys):
    source = make.write_en4(tmp_path / "EN.4.2.2.f.profiles.g10.201001.nc")
    out = tmp_path / "obs.nc"
    assert cli.main(["observe", "--read", str(source), "--format", "en4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "good" in printed and "flagged rows kept" in printed
    table, summary = io.open_observations(out)
    original, _ = io.open_observations(source, "en4")
    assert len(table) == len(original) and summary["rows"].sum() == len(table)


def test_read_csv_with_a_column_mapping(tmp_path, capsys):
    source = make.write_csv(tmp_path / "casts.csv")
    out = tmp_path / "obs.csv"
    mapping = ",".join(f"{ours}={theirs}" for ours, theirs in make.CSV_COLUMNS.items())
    assert cli.main(["observe", "--read", str(source), "--columns", mapping, "--out", str(out)]) == 0
    expected = io.read_profiles_csv(source, columns=make.CSV_COLUMNS)
    assert len(io.read_profiles_csv(out)) == len(expected) and expected["temperature"].notna().any()
    assert cli.main(["observe", "--read", str(source), "--out", str(tmp_path / "y.nc")]) == 2
    assert "column mapping" in capsys.readouterr().err
    assert cli.main(["observe", "--read", str(source), "--columns", "nonsense", "--out", str(tmp_path / "x.nc")]) == 2
    assert "--columns" in capsys.readouterr().err and not (tmp_path / "x.nc").exists()


@pytest.mark.parametrize(
    ("write", "fmt", "message"),
    [
        (lambda p: p.write_text("not a netcdf"), "en4", "not a readable netCDF"),
        (lambda p: make.write_en4(p, drop=["LATITUDE"]), "en4", "LATITUDE"),
        (lambda p: make.write_argo(p, drop=["TEMP"]), "argo", "TEMP"),
        (lambda p: p.write_text(""), "csv", "empty"),
        (lambda p: None, "en4", "does not exist"),
    ],
)
def test_unreadable_files_exit_2_with_one_line_and_no_output(tmp_path, capsys, write, fmt, message):
    source = tmp_path / ("bad.csv" if fmt == "csv" else "bad.nc")
    write(source)
    out = tmp_path / "obs.nc"
    assert cli.main(["observe", "--read", str(source), "--format", fmt, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.lower() in err.lower() and "bad." in err
    assert not out.exists()


def test_read_a_folder_of_mixed_files_counts_a_profile_sent_twice_once(tmp_path, capsys):
    folder = tmp_path / "incoming"
    (folder / "argo").mkdir(parents=True)
    make.write_argo(folder / "argo" / "D6901234_012.nc")
    make.write_argo(folder / "argo" / "R6901234_012.nc")  # the same two profiles again, as real downloads repeat them
    make.write_en4(folder / "en4.nc")
    out = tmp_path / "all.nc"
    assert cli.main(["observe", "--read", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err.count("incoming/") == 3  # a QC line per file
    assert "duplicate" in printed.out and "wrote" in printed.out
    table, _ = io.open_observations(out)
    first = io.open_observations(folder / "argo" / "D6901234_012.nc")[0]
    en4 = io.open_observations(folder / "en4.nc")[0]
    assert len(table) == 2 * len(first) + len(en4)  # every row kept
    assert (table["qc"] == 8).sum() == (first["qc"] == 0).sum()  # the repeat's good rows flagged as duplicates
    # a pattern and a file name select the same files; a pattern matching nothing is one line
    assert cli.main(["observe", "--read", str(folder / "argo" / "*.nc"), "--out", str(tmp_path / "b.nc")]) == 0
    capsys.readouterr()
    assert cli.main(["observe", "--read", str(tmp_path / "none*.nc"), "--out", str(tmp_path / "c.nc")]) == 2
    assert "matches no file" in capsys.readouterr().err and not (tmp_path / "c.nc").exists()
