"""Try malformed file inputs on every file-reading verb; write docs/bad_inputs_files.md.

Each case builds its files in a fresh folder, runs one ``deepda`` command and checks the
contract: exit code 2, one line on stderr naming the problem and the fix, no traceback,
nothing created, every input byte-for-byte unchanged. Rows with impossible values are
the other half of the contract: exit 0, every row kept, each bad one flagged with its
reason. Run from the repository root: ``python3 scripts/bad_file_inputs.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io as text_io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import netCDF4
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import cli, io  # noqa: E402
from tests import data_factories as make  # noqa: E402
from tests.conftest import TINY  # noqa: E402

REAL_ARGO = Path("/work/shared/real-argo/13857_prof.nc")
UNREADABLE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
CSV_HEAD = "time,lat,lon,depth,temperature\n"


def _snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink() or not p.is_file():
            out[str(p.relative_to(folder))] = "link" if p.is_symlink() else "dir"
        else:
            try:
                out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
            except PermissionError:
                out[str(p.relative_to(folder))] = "unreadable"
    return out


def _run(args: list[str], subprocess_prefix: list[str] | None) -> tuple[int, str]:
    if subprocess_prefix is not None:
        done = subprocess.run(
            [*subprocess_prefix, sys.executable, "-m", "engine.cli", *args],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        return done.returncode, done.stderr
    err = text_io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(text_io.StringIO()):
        code = cli.main(args)
    return code, err.getvalue()


# --- the files --------------------------------------------------------------------------------


def _cut(source: Path, target: Path, keep: float | int) -> None:
    data = source.read_bytes()
    target.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])


def _argo3(path: Path) -> Path:
    if REAL_ARGO.exists():
        shutil.copy(REAL_ARGO, path)
        path.chmod(0o644)
    else:  # the factories' Argo file as netCDF-3
        import xarray as xr

        with xr.open_dataset(make.write_argo(path.with_suffix(".tmp")), decode_cf=False) as ds:
            ds.load().to_netcdf(path, format="NETCDF3_CLASSIC")
        path.with_suffix(".tmp").unlink()
    return path


def _csv(path: Path, *rows: str, head: str = CSV_HEAD) -> None:
    path.write_text(head + "".join(r + "\n" for r in rows))


def _bad_rowsize(source: Path, target: Path) -> None:
    shutil.copy(source, target)
    with netCDF4.Dataset(target, "a") as nc:
        nc.variables["rowSize"][0] = nc.variables["rowSize"][0] + 5


def _damaged_chunk(source: Path, target: Path) -> None:
    data = bytearray(source.read_bytes())
    start = len(data) * 3 // 10
    data[start : start + 4096] = bytes(range(256)) * 16
    target.write_bytes(bytes(data))


def _locked(make_file: Callable[[], object], path: Path) -> None:
    make_file()
    path.chmod(0)


# --- the cases: (setup, command, run in a subprocess without file capabilities?) -----------------

OBS = "obs.nc"
CONF = "tiny.toml"
ASSIM = ["assimilate", "--config", CONF, "--method", "persistence"]


def cases(shared: Path) -> list[tuple[Callable[[Path], None], list[str], bool]]:
    obs, conf = shared / OBS, shared / CONF
    columns = ",".join(f"{k}={v}" for k, v in make.CSV_COLUMNS.items())

    def base(d: Path) -> None:
        shutil.copy(obs, d / OBS)
        shutil.copy(conf, d / CONF)

    def with_(*steps: Callable[[Path], object]) -> Callable[[Path], None]:
        def setup(d: Path) -> None:
            base(d)
            for step in steps:
                step(d)

        return setup

    return [
        (with_(), [*ASSIM, "--obs", OBS, "--out", OBS], False),
        (with_(lambda d: os.link(d / OBS, d / "hard.nc")), [*ASSIM, "--obs", OBS, "--out", "hard.nc"], False),
        (with_(lambda d: (d / "link.nc").symlink_to(OBS)), [*ASSIM, "--obs", OBS, "--out", "link.nc"], False),
        (with_(lambda d: (d / OBS).rename(d / "an.nc.part")), [*ASSIM, "--obs", "an.nc.part", "--out", "an.nc"], False),
        (with_(), ["observe", "--read", OBS, "--out", OBS], False),
        (with_(lambda d: (d / "link.nc").symlink_to(OBS)), ["observe", "--read", "link.nc", "--out", OBS], False),
        (with_(lambda d: make.write_csv(d / "casts.csv")),
         ["observe", "--read", "casts.csv", "--columns", columns, "--out", "casts.csv"], False),
        (with_(), ["world", "--config", CONF, "--years", "1", "--out", CONF], False),
        (with_(), ["train", "--config", CONF, "--out", "model.pt", "--log", CONF], False),
        (with_(lambda d: _cut(_argo3(d / "full.nc"), d / "argo.nc", 0.5), lambda d: (d / "full.nc").unlink()),
         ["observe", "--read", "argo.nc", "--format", "argo", "--out", "out.nc"], False),
        (with_(lambda d: _cut(_argo3(d / "full.nc"), d / "argo.nc", 0.9999),
               lambda d: (d / "full.nc").unlink()),
         ["observe", "--read", "argo.nc", "--out", "out.nc"], False),
        (with_(lambda d: _cut(_argo3(d / "full.nc"), d / "argo.nc", 300), lambda d: (d / "full.nc").unlink()),
         ["observe", "--read", "argo.nc", "--format", "argo", "--out", "out.nc"], False),
        (with_(lambda d: _cut(d / OBS, d / "cut.nc", 0.66)), ["observe", "--read", "cut.nc", "--out", "out.nc"], False),
        (with_(lambda d: _cut(d / OBS, d / "cut.nc", 0.66)), [*ASSIM, "--obs", "cut.nc", "--out", "an.nc"], False),
        (with_(lambda d: _damaged_chunk(d / OBS, d / "bad.nc")), ["observe", "--read", "bad.nc", "--out", "out.nc"],
         False),
        (with_(lambda d: _bad_rowsize(d / OBS, d / "bad.nc")), [*ASSIM, "--obs", "bad.nc", "--out", "an.nc"], False),
        (with_(lambda d: (d / "empty.nc").write_bytes(b"")), ["observe", "--read", "empty.nc", "--out", "out.nc"],
         False),
        (with_(lambda d: (d / "notes.nc").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))),
         ["observe", "--read", "notes.nc", "--out", "out.nc"], False),
        (with_(lambda d: (d / "casts").mkdir()), ["observe", "--read", "casts", "--format", "csv", "--out", "o.nc"],
         False),
        (with_(lambda d: _locked(lambda: make.write_argo(d / "locked.nc"), d / "locked.nc")),
         ["observe", "--read", "locked.nc", "--out", "out.nc"], True),
        (with_(lambda d: _locked(lambda: make.write_csv(d / "locked.csv"), d / "locked.csv")),
         ["observe", "--read", "locked.csv", "--out", "out.nc"], True),
        (with_(lambda d: _locked(lambda: shutil.copy(d / OBS, d / "locked.nc"), d / "locked.nc")),
         [*ASSIM, "--obs", "locked.nc", "--out", "an.nc"], True),
        (with_(lambda d: _csv(d / "head.csv")), ["observe", "--read", "head.csv", "--out", "out.nc"], False),
        (with_(lambda d: (d / "blank.csv").write_text("\n\n")), ["observe", "--read", "blank.csv", "--out", "o.nc"],
         False),
        (with_(lambda d: make.write_argo_without_profiles(d / "argo.nc")), ["observe", "--read", "argo.nc", "--out", "o.nc"],
         False),
        (with_(lambda d: _csv(d / "argo.csv", "2001-01-01,10,200,5,20,1", "2001-01-01,10,200,10,20,4",
                              head="time,lat,lon,depth,temperature,qc\n")),
         ["observe", "--read", "argo.csv", "--out", "out.nc"], False),
        (with_(lambda d: _csv(d / "flags.csv", "2001-01-01,10,200,5,20,A", head="time,lat,lon,depth,temperature,qc\n")),
         ["observe", "--read", "flags.csv", "--columns", "qc=qc", "--out", "out.nc"], False),
        (with_(lambda d: _csv(d / "us.csv", "03/04/1981,10,200,5,20", "05/06/1981,10,200,5,20")),
         ["observe", "--read", "us.csv", "--out", "out.nc"], False),
        (with_(lambda d: _csv(d / "when.csv", "yesterday,10,200,5,20", "today,10,200,5,20")),
         ["observe", "--read", "when.csv", "--out", "out.nc"], False),
        (with_(lambda d: _csv(d / "c.csv", "2001-01-01,10,200,5,20,1", head="time,lat,lon,depth,temperature,qc\n")),
         ["observe", "--read", "c.csv", "--columns", "qc=qc,source_qc=qc", "--out", "out.nc"], False),
        (with_(lambda d: _csv(d / "c.csv", "2001-01-01,10,200,5,20")),
         ["observe", "--read", "c.csv", "--columns", "temp=temperature", "--out", "out.nc"], False),
        (with_(lambda d: (d / "c.csv").write_bytes(bytes(range(256)) * 8)),
         ["observe", "--read", "c.csv", "--out", "out.nc"], False),
        (with_(lambda d: _csv(d / "c.csv", "2001-01-01,north,200,5,20", "2001-01-01,south,200,5,20")),
         ["observe", "--read", "c.csv", "--out", "out.nc"], False),
        (with_(lambda d: make.write_wod(d / "wod.nc", drop=["Temperature_row_size"])),
         ["observe", "--read", "wod.nc", "--out", "out.nc"], False),
        (with_(lambda d: _cut(make.write_wod(d / "full.nc"), d / "wod.nc", 0.5), lambda d: (d / "full.nc").unlink()),
         ["observe", "--read", "wod.nc", "--format", "wod", "--out", "out.nc"], False),
        (with_(), [*ASSIM, "--obs", OBS, "--out", "an.nc", "--resume"], False),
        (with_(lambda d: _started(d, "climatology")), [*ASSIM, "--obs", OBS, "--out", "an.nc", "--resume"], False),
    ]  # fmt: skip


def _started(folder: Path, method: str) -> None:
    """An unfinished run of ``method`` with one step done, in an.nc.part."""
    from engine.da.base import Cancelled
    from engine.da.reanalysis import assimilate_to_file

    with contextlib.suppress(Cancelled):
        assimilate_to_file(method, folder / OBS, folder / "an.nc", config=TINY, should_stop=lambda: True)


ROW_CASES = [  # CSV rows with impossible values: kept and flagged, the rest of the file good
    ("1981-03-03T12:00,10,200,inf,24", "depth inf"),
    ("1981-03-03T12:00,10,200,3000000,24", "depth 3,000 km"),
    ("1981-03-03T12:00,10,200,12000,24", "depth 12,000 m"),
    ("1981-03-03T12:00,10,200,50,-inf", "temperature -inf"),
    ("9999-03-03T12:00,10,200,10,24", "date in year 9999"),
    ("1981-03-03T12:00,10,200,five,24", "depth 'five'"),
]


def main() -> int:
    rows, rows_ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        shared = Path(tmp) / "shared"
        shared.mkdir()
        io.write_config(TINY, shared / CONF)
        with contextlib.redirect_stderr(text_io.StringIO()):
            assert (
                cli.main(["observe", "--config", str(shared / CONF), "--period", "2010", "--out", str(shared / OBS)])
                == 0
            )
        here = Path.cwd()
        for n, (setup, args, locked) in enumerate(cases(shared), 1):
            folder = Path(tmp) / f"case{n}"
            folder.mkdir()
            os.chdir(folder)
            try:
                setup(folder)
                before = _snapshot(folder)
                code, err = _run(args, UNREADABLE if locked else None)
                after = _snapshot(folder)
            finally:
                os.chdir(here)
            line = err.strip()
            ok = code == 2 and err.count("\n") == 1 and "Traceback" not in err and before == after
            rows_ok &= ok
            rows.append((f"`deepda {' '.join(args)}`", code, line.removeprefix("deepda: error: "), ok))
            for p in folder.rglob("*"):
                if not p.is_symlink():
                    p.chmod(0o755 if p.is_dir() else 0o644)
        qc_rows = _row_cases(Path(tmp))
    rows_ok &= all(ok for *_, ok in qc_rows)
    _write_table(rows, qc_rows)
    print(f"{len(rows)} refused inputs, {len(qc_rows)} flagged rows; all meet the contract: {rows_ok}")
    return 0 if rows_ok else 1


def _row_cases(tmp: Path) -> list[tuple[str, int, str, bool]]:
    """Each bad row beside a good one: exit 0, both rows kept, the bad one flagged with its reason."""
    out = []
    for n, (row, what) in enumerate(ROW_CASES):
        folder = tmp / f"rows{n}"
        folder.mkdir()
        _csv(folder / "casts.csv", "1981-03-03T12:00,-10,100,5,26", row)
        code, err = _run(["observe", "--read", str(folder / "casts.csv"), "--out", str(folder / "obs.nc")], None)
        table, summary = io.open_observations(folder / "obs.nc")
        flagged = summary[summary["code"] != 0]
        reason = "; ".join(f"{r.code} {r.reason}" for r in flagged.itertuples())
        ok = code == 0 and len(table) == 2 and table["qc"].tolist()[0] == 0 and len(flagged) == 1 and not err
        out.append(
            (f"`deepda observe --read casts.csv --out obs.nc` (a good row and one with {what})", code, reason, ok)
        )
    return out


def _write_table(rows: list, qc_rows: list) -> None:
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [
        "# Malformed file inputs",
        "",
        "Generated by `python3 scripts/bad_file_inputs.py` (each case in a fresh folder; paths are",
        "relative to it). Contract checked for every row: exit code 2, one line on stderr, no",
        "traceback, nothing created and every input byte-for-byte unchanged. `tiny.toml` is the",
        "tests' tiny config; `obs.nc` one year of its OSSE observations; Argo files are GDAC",
        "netCDF-3. Unreadable files are mode 000, read with CAP_DAC_OVERRIDE dropped (setpriv).",
        "",
        "| # | command | exit | message (after `deepda: error: `) | contract |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {i} | {cell(c)} | {e} | {cell(m)} | {'yes' if ok else 'NO'} |" for i, (c, e, m, ok) in enumerate(rows, 1)
    ]
    lines += [
        "",
        "Impossible values inside an otherwise good file: exit 0, every row kept, the bad one",
        "flagged with its reason (as `deepda observe` prints in its QC summary).",
        "",
        "| # | command | exit | flag | contract |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {i} | {cell(c)} | {e} | {cell(m)} | {'yes' if ok else 'NO'} |" for i, (c, e, m, ok) in enumerate(qc_rows, 1)
    ]
    (ROOT / "docs" / "bad_inputs_files.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    raise SystemExit(main())
