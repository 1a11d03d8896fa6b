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
