"""Bad files as a user meets them: the command, the one line it prints, exit 2, nothing harmed.

Each test runs a ``deepda`` verb (``engine.cli.main`` or a subprocess) on a malformed,
truncated, unreadable or misdirected file and checks what the user sees: one line naming
the problem and the fix, no traceback, exit code 2, no output created, inputs untouched;
or, for bad rows, exit 0 with every row kept and flagged with its reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from engine import cli, io
from tests import data_factories as make
from tests.conftest import TINY

REAL_ARGO = Path("/work/shared/real-argo/13857_prof.nc")  # a GDAC netCDF-3 multi-profile file
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny config and one year of OSSE observations."""
    folder = tmp_path_factory.mktemp("safety")
    io.write_config(TINY, folder / "tiny.toml")
    obs = ["observe", "--config", str(folder / "tiny.toml"), "--period", "2010", "--out", str(folder / "obs.nc")]
    assert cli.main(obs) == 0
    return folder


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(capsys, args: list[str], *words: str) -> str:
    """Run the CLI; it must exit 2 with one line (no traceback) holding ``words``."""
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("deepda: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word.lower() in err.lower(), (word, err)
    return err


def _listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# --- outputs never replace inputs ---------------------------------------------------------


@pytest.mark.parametrize("link", ["same", "hard", "symlink", "part"])
def test_assimilate_refuses_an_out_that_is_the_observation_file(run_dir, tmp_path, capsys, link):
    obs = tmp_path / "obs.nc"
    shutil.copy(run_dir / "obs.nc", obs)
    out = {"same": obs, "hard": tmp_path / "hard.nc", "symlink": tmp_path / "link.nc", "part": tmp_path / "an.nc"}[link]
    if link == "hard":
        os.link(obs, out)
    elif link == "symlink":
        out.symlink_to(obs)
    elif link == "part":  # the observations sit where the run keeps its unfinished steps
        obs = obs.rename(tmp_path / "an.nc.part")
    before, files = _digest(obs), _listing(tmp_path)
    args = ["assimilate", "--config", str(run_dir / "tiny.toml"), "--method", "persistence"]
    _refused(capsys, [*args, "--obs", str(obs), "--out", str(out)], "--obs", "destroy", "choose another --out")
    assert _digest(obs) == before and _listing(tmp_path) == files


@pytest.mark.parametrize("fmt", ["nc", "csv"])
def test_observe_read_refuses_to_write_over_its_source(run_dir, tmp_path, capsys, fmt):
    source = tmp_path / f"source.{fmt}"
    if fmt == "csv":
        make.write_csv(source)
    else:
        shutil.copy(run_dir / "obs.nc", source)
    link = tmp_path / f"link.{fmt}"
    link.symlink_to(source)
    before = _digest(source)
    mapping = [] if fmt == "nc" else ["--columns", ",".join(f"{k}={v}" for k, v in make.CSV_COLUMNS.items())]
    for out in (source, link):
        _refused(capsys, ["observe", "--read", str(source), *mapping, "--out", str(out)], "--read", "--out")
    _refused(capsys, ["observe", "--read", str(link), *mapping, "--out", str(source)], "same file")
    assert _digest(source) == before and _listing(tmp_path) == {source.name, link.name}


def test_world_refuses_to_write_over_its_config(run_dir, tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    shutil.copy(run_dir / "tiny.toml", config)
    _refused(capsys, ["world", "--config", str(config), "--years", "1", "--out", str(config)], "--config")
    assert config.read_text() == (run_dir / "tiny.toml").read_text()


# --- kill -9: temporaries are resumed or cleaned, never crashed on ----------------------------


def _deepda(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", *args]


def _kill_when(proc: subprocess.Popen, appeared, limit_s: float = 120.0) -> None:
    """SIGKILL ``proc`` the moment ``appeared()`` turns true (it must, before the run ends)."""
    start = time.monotonic()
    while not appeared():
        assert proc.poll() is None, "the run ended before the file appeared"
        assert time.monotonic() - start < limit_s
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _assimilate(run_dir: Path, out: Path, *extra: str) -> list[str]:
    return _deepda(
        "assimilate", "--config", str(run_dir / "tiny.toml"), "--method", "persistence", "--members", "2",
        "--obs", str(run_dir / "obs.nc"), "--out", str(out), *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def straight_run(run_dir):
    out = run_dir / "straight.nc"
    assert cli.main(_assimilate(run_dir, out)[3:]) == 0
    with xr.open_dataset(out) as ds:
        return ds.load()


def _same_analysis(path: Path, straight: xr.Dataset) -> None:
    with xr.open_dataset(path) as ds:
        for name in ("thetao", "thetao_anomaly", "thetao_spread"):
            np.testing.assert_array_equal(ds[name].values, straight[name].values)
        assert ds.attrs["steps_done"] == straight.attrs["steps_done"] == ds.sizes["time"]


def test_kill_9_as_the_part_file_appears_then_resume_matches_a_straight_run(run_dir, tmp_path, straight_run):
    out = tmp_path / "an.nc"
    part = io.partial_path(out)
    _kill_when(subprocess.Popen(_assimilate(run_dir, out), cwd=ROOT, stderr=subprocess.DEVNULL), part.exists)
    assert part.exists() and not out.exists()
    done = subprocess.run(_assimilate(run_dir, out, "--resume"), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    _same_analysis(out, straight_run)
    assert _listing(tmp_path) == {"an.nc"}  # no .part and no hidden temporary left


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_terminated_or_background_run_stops_as_on_ctrl_c_and_resumes(run_dir, tmp_path, straight_run, sig):
    # started as `deepda ... &` is: SIGINT ignored, which Python then never turns into Ctrl-C
    out = tmp_path / "an.nc"
    part = io.partial_path(out)
    ignore = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    proc = subprocess.Popen(_assimilate(run_dir, out), cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=ignore)
    start = time.monotonic()
    while not part.exists():
        assert proc.poll() is None and time.monotonic() - start < 120
        time.sleep(0.001)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert "interrupted" in stderr
    done = subprocess.run(_assimilate(run_dir, out, "--resume"), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _same_analysis(out, straight_run)


@pytest.mark.parametrize("damage", ["empty", "garbage", "half"])
def test_resume_of_a_damaged_part_file_starts_again(run_dir, tmp_path, capsys, straight_run, damage):
    out = tmp_path / "an.nc"
    part = io.partial_path(out)
    whole = (run_dir / "straight.nc").read_bytes()
    part.write_bytes({"empty": b"", "garbage": b"not netcdf" * 100, "half": whole[: len(whole) // 2]}[damage])
    assert cli.main(_assimilate(run_dir, out, "--resume")[3:]) == 0
    _same_analysis(out, straight_run)
    assert not part.exists()


def test_killed_world_run_leaves_a_temporary_that_the_next_run_removes(run_dir, tmp_path):
    out = tmp_path / "world.nc"
    args = _deepda("world", "--config", str(run_dir / "tiny.toml"), "--years", "3", "--out", str(out))

    def temporary() -> list[Path]:
        return [p for p in tmp_path.iterdir() if p.name.startswith(".world.nc.") and p.name.endswith(".part")]

    _kill_when(subprocess.Popen(args, cwd=ROOT, stderr=subprocess.DEVNULL), lambda: bool(temporary()))
    assert temporary() and not out.exists()
    assert subprocess.run(args, cwd=ROOT, capture_output=True).returncode == 0
    assert _listing(tmp_path) == {"world.nc"}


def test_a_live_runs_temporary_is_left_alone(tmp_path):
    live = tmp_path / f".obs.nc.{os.getpid()}.part"  # this process is alive
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".obs.nc.{dead.pid}.part"
    other = tmp_path / f".other.nc.{dead.pid}.part"
    for p in (live, stale, other):
        p.write_bytes(b"x")
    assert io.clean_stale_temps(tmp_path / "obs.nc") == [stale]
    assert live.exists() and other.exists() and not stale.exists()


# --- truncated, damaged and unreadable files ------------------------------------------------


def _netcdf3_argo(path: Path) -> Path:
    """The factories' Argo file rewritten as netCDF-3 (the GDAC format)."""
    source = make.write_argo(path.with_suffix(".nc4"))
    with xr.open_dataset(source, decode_cf=False, mask_and_scale=False) as ds:
        ds.load().to_netcdf(path, format="NETCDF3_CLASSIC", engine="netcdf4")
    source.unlink()
    return path


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
@pytest.mark.parametrize("source", ["real", "factory"])
def test_truncated_netcdf3_argo_file_is_refused(tmp_path, capsys, source, keep):
    whole = tmp_path / "argo.nc"
    if source == "real":
        if not REAL_ARGO.exists():
            pytest.skip("real Argo sample not on this machine")
        shutil.copy(REAL_ARGO, whole)
    else:
        _netcdf3_argo(whole)
    assert io.open_observations(whole, "argo")[0]["depth"].notna().all()  # whole, it reads
    data = whole.read_bytes()
    cut = tmp_path / "cut.nc"
    cut.write_bytes(data[: int(len(data) * keep)])
    out = tmp_path / "obs.nc"
    _refused(capsys, ["observe", "--read", str(cut), "--format", "argo", "--out", str(out)], "truncated", "cut.nc")
    assert not out.exists()


def test_truncated_netcdf3_header_is_refused(tmp_path, capsys):
    data = _netcdf3_argo(tmp_path / "argo.nc").read_bytes()
    (tmp_path / "cut.nc").write_bytes(data[:200])
    _refused(capsys, ["observe", "--read", str(tmp_path / "cut.nc"), "--out", str(tmp_path / "o.nc")], "truncated")


def test_truncated_observation_file_is_refused_by_assimilate(run_dir, tmp_path, capsys):
    data = (run_dir / "obs.nc").read_bytes()
    cut = tmp_path / "obs.nc"
    cut.write_bytes(data[: len(data) * 2 // 3])
    args = ["assimilate", "--config", str(run_dir / "tiny.toml"), "--method", "persistence", "--obs", str(cut)]
    _refused(capsys, [*args, "--out", str(tmp_path / "an.nc")], "truncated", "obs.nc")
    assert _listing(tmp_path) == {"obs.nc"}


def test_damaged_netcdf4_chunk_is_refused(run_dir, tmp_path, capsys):
    data = bytearray((run_dir / "obs.nc").read_bytes())
    rng = np.random.default_rng(0)
    start = len(data) * 3 // 10
    data[start : start + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.nc"
    bad.write_bytes(bytes(data))
    _refused(capsys, ["observe", "--read", str(bad), "--out", str(tmp_path / "o.nc")], "bad.nc", "again")
    assert _listing(tmp_path) == {"bad.nc"}


def _without_file_capabilities() -> list[str] | None:
    """A command prefix under which this user cannot read a mode-000 file (None: impossible here).

    Tests run as root, who reads anything: dropping CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    from the bounding set (setpriv) makes the kernel check the mode bits for real.
    """
    prefix = [] if os.geteuid() != 0 else ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    if prefix and shutil.which("setpriv") is None:
        return None
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f"deepda-probe-{os.getpid()}"
    probe.write_text("x")
    probe.chmod(0)
    try:
        denied = subprocess.run([*prefix, "cat", str(probe)], capture_output=True).returncode != 0
    finally:
        probe.unlink()
    return prefix if denied else None


@pytest.mark.parametrize("kind", ["argo", "csv", "dsg"])
def test_unreadable_input_file_is_one_line(run_dir, tmp_path, kind):
    prefix = _without_file_capabilities()
    if prefix is None:
        pytest.skip("cannot make a file unreadable for this user here")
    source = tmp_path / ("locked.csv" if kind == "csv" else "locked.nc")
    {"argo": lambda: make.write_argo(source), "csv": lambda: make.write_csv(source)}.get(
        kind, lambda: shutil.copy(run_dir / "obs.nc", source)
    )()
    source.chmod(0)
    out = tmp_path / "obs.nc"
    verbs = [["observe", "--read", str(source), "--out", str(out)]]
    if kind == "dsg":
        config = ["--config", str(run_dir / "tiny.toml"), "--method", "persistence"]
        verbs.append(["assimilate", *config, "--obs", str(source), "--out", str(out)])
    for verb in verbs:
        done = subprocess.run([*prefix, *_deepda(*verb)], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "permission denied" in done.stderr and "chmod" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


# --- QC: impossible values flagged, counted and kept -------------------------------------------

BAD_ROWS = [  # time, lat, lon, depth, temperature, obs_error, expected QC code
    ("1981-03-03T12:00", "10", "200", "5", "25", "0.2", 0),
    ("1981-03-03T12:00", "10", "200", "inf", "24", "0.2", 10),
    ("1981-03-03T12:00", "10", "200", "3000000", "24", "0.2", 11),  # 3,000 km
    ("1981-03-03T12:00", "10", "200", "12000", "24", "0.2", 11),
    ("1981-03-03T12:00", "10", "200", "50", "-inf", "0.2", 10),
    ("1981-03-03T12:00", "10", "200", "60", "24", "0", 12),
    ("1981-03-03T12:00", "10", "200", "70", "24", "inf", 10),
    ("9999-03-03T12:00", "10", "200", "10", "24", "0.2", 13),  # a typo in one date
    ("03/03/1981 12:00", "-10", "100", "5", "26", "0.2", 0),  # not ISO, but readable
    ("1981-03-04", "-10", "100", "five", "26", "0.2", 13),
]


def _bad_csv(path: Path, rows=BAD_ROWS) -> Path:
    header = "time,lat,lon,depth,temperature,obs_error\n"
    path.write_text(header + "".join(",".join(r[:6]) + "\n" for r in rows))
    return path


def test_impossible_values_are_flagged_counted_and_kept(tmp_path, capsys):
    source, out = _bad_csv(tmp_path / "casts.csv"), tmp_path / "obs.nc"
    assert cli.main(["observe", "--read", str(source), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for reason in ("non-finite value", "deeper than the deepest ocean", "observation error not positive", "9999"):
        assert reason in printed
    table, _ = io.open_observations(out)
    assert len(table) == len(BAD_ROWS)
    by_depth = dict(zip(table["depth"].astype(float).fillna(-1.0), table["qc"], strict=True))
    expected = {float(r[3]) if r[3] != "five" else -1.0: r[6] for r in BAD_ROWS if r[0] != "9999-03-03T12:00"}
    assert {d: by_depth[d] for d in expected} == expected
    assert (table["qc"] == 13).sum() == 2 and (table["qc"] == 0).sum() == 2
    assert pd.Timestamp("1981-03-03T12:00") in set(table.loc[table["qc"] == 0, "time"])


def test_impossible_depths_are_flagged_where_the_grid_column_reaches_its_last_level(tmp_path, coarse_grid):
    # a cell of the coarse grid that is ocean at every level: its sea floor is below the grid
    # (one whose deepest 1 degree sea floor is above 7,000 m, as almost all are)
    deep = np.argwhere(coarse_grid.ocean.all(axis=0) & (coarse_grid.deepest_floor < 7000.0))[0]
    lat, lon = float(coarse_grid.lat[deep[0]]), float(coarse_grid.lon[deep[1]])
    floor = float(coarse_grid.deepest_floor[deep[0], deep[1]])
    depths = ("1000", "inf", "9000", "3000000", str(floor + 500.0))
    rows = [("2001-01-01", str(lat), str(lon), d, "5", "0.2", 0) for d in depths]
    table, summary = io.open_observations(_bad_csv(tmp_path / "deep.csv", rows), grid=coarse_grid)
    # 9,000 m is below that cell's deepest sea floor and its trench margin; 500 m below its
    # deepest 1 degree mean may be a trench and is kept
    assert table["qc"].tolist() == [0, 10, 6, 11, 0]
    assert summary["rows"].sum() == 5


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["13/03/1981 12:00", "03/04/1981 06:30"], ["1981-03-13T12:00", "1981-04-03T06:30"]),  # day first
        (["03/13/1981", "04/03/1981"], ["1981-03-13", "1981-04-03"]),  # month first
        (["1981-03-03T12:00", "03/03/1981 12:00"], ["1981-03-03T12:00", "1981-03-03T12:00"]),
        (["03.04.1981", "31.12.1990 23:59"], ["1981-04-03", "1990-12-31T23:59"]),
    ],
)
def test_common_date_formats_are_read(tmp_path, dates, expected):
    rows = [(d, "10", "200", str(5 + i), "20", "0.2", 0) for i, d in enumerate(dates)]
    table, _ = io.open_observations(_bad_csv(tmp_path / "dates.csv", rows))
    assert table["time"].tolist() == [pd.Timestamp(e) for e in expected] and (table["qc"] == 0).all()


def test_ambiguous_dates_are_refused(tmp_path, capsys):
    rows = [(d, "10", "200", str(5 + i), "20", "0.2", 0) for i, d in enumerate(["03/04/1981", "05/06/1981"])]
    source = _bad_csv(tmp_path / "dates.csv", rows)
    _refused(capsys, ["observe", "--read", str(source), "--out", str(tmp_path / "o.nc")], "day-first", "ISO 8601")
    assert _listing(tmp_path) == {"dates.csv"}


def _argo_flag_csv(path: Path) -> Path:
    # 20 degC near the surface at 30N, 160W in January: what the climatology expects there,
    # so the background check leaves the rows to the flag mapping under test
    rows = [("2001-01-01", "30", "200", str(d), "20", "0.2", 0) for d in (5, 10, 20, 40)]
    _bad_csv(path, rows)
    frame = pd.read_csv(path)
    frame["qc"] = [1, 1, 4, 3]  # IOC / Argo flags: 1 good, 3 probably bad, 4 bad
    frame.to_csv(path, index=False)
    return path


def test_a_foreign_qc_column_is_refused_unless_mapped(tmp_path, capsys):
    source, out = _argo_flag_csv(tmp_path / "argo.csv"), tmp_path / "obs.nc"
    _refused(capsys, ["observe", "--read", str(source), "--out", str(out)], "'qc'", "source_qc=qc")
    assert not out.exists()
    assert cli.main(["observe", "--read", str(source), "--columns", "source_qc=qc", "--out", str(out)]) == 0
    assert io.open_observations(out)[0]["qc"].tolist() == [0, 0, 9, 9]
    # qc=qc says the column holds DeepDA codes: 1 is then "missing value", as asked
    assert cli.main(["observe", "--read", str(source), "--columns", "qc=qc", "--out", str(tmp_path / "b.nc")]) == 0


def test_deepdas_own_csv_keeps_its_qc_codes(run_dir, tmp_path):
    table, _ = io.open_observations(run_dir / "obs.nc")
    io.write_profiles_csv(table.head(500), tmp_path / "own.csv")
    again, _ = io.open_observations(tmp_path / "own.csv")
    assert again["qc"].tolist() == table.head(500)["qc"].tolist()


def test_header_only_csv_is_refused(tmp_path, capsys):
    source = tmp_path / "empty.csv"
    source.write_text("time,lat,lon,depth,temperature\n")
    _refused(capsys, ["observe", "--read", str(source), "--out", str(tmp_path / "o.nc")], "no data rows")
    assert _listing(tmp_path) == {"empty.csv"}


def test_argo_file_with_no_profiles_is_refused(tmp_path, capsys):
    source = make.write_argo_without_profiles(tmp_path / "argo.nc")
    _refused(capsys, ["observe", "--read", str(source), "--out", str(tmp_path / "o.nc")], "no profiles")
    assert _listing(tmp_path) == {"argo.nc"}


# --- CF: the IOOS compliance checker, offline -----------------------------------------------


def _cf_errors(path: Path) -> list[str]:
    """The checker's errors (high-priority failures) for CF-1.8."""
    from compliance_checker.base import BaseCheck
    from compliance_checker.runner import CheckSuite

    suite = CheckSuite()
    suite.load_all_available_checkers()
    results, problems = suite.run_all(suite.load_dataset(str(path)), ["cf:1.8"], skip_checks=[])["cf:1.8"]
    assert not problems, problems  # a check that crashed is not a pass
    failed = [r for r in results if r.weight == BaseCheck.HIGH and r.value[0] < r.value[1]]
    return [f"{r.name}: {m}" for r in failed for m in r.msgs]


@pytest.mark.cf
def test_compliance_checker_finds_no_cf_errors_in_world_observation_and_analysis_files(run_dir, tmp_path, monkeypatch):
    pytest.importorskip("compliance_checker")
    import socket

    def offline(*args, **kwargs):
        raise AssertionError("the compliance checker tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", offline)  # the standard-name table ships with it
    config = str(run_dir / "tiny.toml")
    files = {"world": tmp_path / "world.nc", "obs": run_dir / "obs.nc", "analysis": tmp_path / "an.nc"}
    assert cli.main(["world", "--config", config, "--years", "1", "--out", str(files["world"])]) == 0
    assert cli.main(_assimilate(run_dir, files["analysis"])[3:]) == 0
    files["csv-read obs"] = tmp_path / "from_csv.nc"
    assert cli.main(["observe", "--read", str(make.write_csv(tmp_path / "c.csv")), "--columns",
                     ",".join(f"{k}={v}" for k, v in make.CSV_COLUMNS.items()),
                     "--out", str(files["csv-read obs"])]) == 0  # fmt: skip
    assert {kind: _cf_errors(path) for kind, path in files.items()} == {kind: [] for kind in files}


def test_semicolon_separated_csv_is_read(tmp_path):
    source = tmp_path / "excel.csv"
    source.write_text("time;lat;lon;depth;temperature\n2001-01-01;10;200;5;20\n2001-01-01;10;200;10;19\n")
    table, _ = io.open_observations(source)
    assert table["temperature"].tolist() == [20.0, 19.0] and (table["qc"] == 0).all()


def test_now_and_today_are_not_dates_in_a_data_file(tmp_path):
    rows = [(d, "10", "200", str(5 + i), "20", "0.2", 0) for i, d in enumerate(["2001-01-01", "today", "now"])]
    table, _ = io.open_observations(_bad_csv(tmp_path / "when.csv", rows))
    assert table["qc"].tolist() == [0, 13, 13] and table["time"].isna().sum() == 2
