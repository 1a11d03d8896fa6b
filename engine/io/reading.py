"""Many observation files at once, of mixed formats, streamed into one profile file.

Memory follows one part of one file, never the whole set: a file is read a part at a
time (about 260,000 measurements: EN4 and Argo by profiles, WOD by casts), QC'd, checked
and written before the next part is read. What grows with the number of files is only
the record of profiles seen (:class:`SeenProfiles`), so that a profile sent twice (a
float's multi-profile file and its single-profile file) is counted once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.io.csvfiles import write_profiles_csv_incremental
from engine.io.dsg import write_profiles_incremental
from engine.io.observations import checked_format, no_profiles, read_table
from engine.io.realformats import profile_chunks
from engine.io.wod import cast_chunks
from engine.observe.profiles import QC_GOOD, qc_summary
from engine.observe.qc import QC_DUPLICATE, profile_keys, run_qc

PART_ROWS = 1 << 18  # measurements read at a time: QC and the background check take ~800 bytes a row


class SeenProfiles:
    """The profile keys (:func:`engine.observe.qc.profile_keys`) of every file read so far.

    Kept as a sorted int64 array (8 bytes a profile) plus a set of the recent ones (about
    60 bytes each), folded into the array when it outgrows a quarter of it (and 65,536
    keys): at most about 20 bytes a profile, 20 MB for a million profiles.
    """

    def __init__(self) -> None:
        self.sorted = np.zeros(0, dtype=np.int64)
        self.recent: set[int] = set()

    def __len__(self) -> int:
        return len(self.sorted) + len(self.recent)

    def _in_sorted(self, unique: np.ndarray) -> np.ndarray:
        if not len(self.sorted):
            return np.zeros(len(unique), dtype=bool)
        return self.sorted[np.minimum(np.searchsorted(self.sorted, unique), len(self.sorted) - 1)] == unique

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Whether each key was added before."""
        unique, inverse = np.unique(keys, return_inverse=True)
        found = self._in_sorted(unique)
        found |= np.fromiter((int(k) in self.recent for k in unique), dtype=bool, count=len(unique))
        return found[inverse.reshape(-1)]

    def add(self, keys: np.ndarray) -> None:
        unique = np.unique(keys)
        self.recent.update(unique[~self._in_sorted(unique)].tolist())
        if len(self.recent) > max(1 << 16, len(self.sorted) // 4):
            fresh = np.fromiter(self.recent, dtype=np.int64, count=len(self.recent))
            self.sorted, self.recent = np.union1d(self.sorted, fresh), set()


def mark_repeats(table: pd.DataFrame, seen: SeenProfiles) -> pd.DataFrame:
    """``table`` with the good rows of profiles in ``seen`` flagged as duplicates (QC 8);
    its own profiles are then added to ``seen``."""
    keys = profile_keys(table)
    repeated = seen.contains(keys) & (table["qc"].to_numpy() == QC_GOOD) if len(seen) else None
    seen.add(keys)
    if repeated is None or not repeated.any():
        return table
    return table.assign(qc=np.where(repeated, QC_DUPLICATE, table["qc"].to_numpy()).astype(table["qc"].dtype))


def file_parts(
    file: Path, fmt: str, part_rows: int = PART_ROWS, grid: Any = None, period: Any = None, **read: Any
) -> Iterator[pd.DataFrame]:
    """The QC'd tables of ``file``, one part at a time (a small file is one part).

    ``read`` (columns, obs_error) goes to :func:`engine.io.observations.read_table`. QC per
    part equals QC of the whole file but for duplicates within the file, which
    :func:`mark_repeats` finds across parts (a profile is never split).

    Raises
    ------
    InputError
        As :func:`engine.io.open_observations`, also for a file without measurements.
    """
    parts: list[slice | None] = [None]
    if fmt in ("en4", "argo", "wod") and file.is_file() and file.stat().st_size > part_rows * 8:  # else: small
        parts = (cast_chunks if fmt == "wod" else profile_chunks)(file, part_rows)  # type: ignore[assignment]
    rows = 0
    for part in parts:
        table = read_table(file, fmt, read.get("columns"), read.get("obs_error"), part)
        rows += len(table)
        if len(table) or fmt == "dsg":
            yield run_qc(table, grid=grid, period=period)
    if not rows and fmt != "dsg":
        raise no_profiles(file, fmt)


def read_observation_parts(
    paths: Iterable[Path],
    format: str | None = None,
    check: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    part_rows: int = PART_ROWS,
    **options: Any,
) -> Iterator[tuple[Path, pd.DataFrame, bool]]:
    """``(path, table, last)`` for each part of each file, in order; ``last`` marks a
    file's final part. Repeats of earlier profiles are flagged (QC 8, kept), then
    ``check`` (e.g. the background check) runs on each part. Of several files, a CSV column
    mapping (``columns``) applies to the CSV files only; ``options`` are those of
    :func:`engine.io.open_observations`."""
    paths = list(paths)
    seen = SeenProfiles()
    for path in paths:
        file = Path(path)
        columns = options.get("columns")
        if len(paths) > 1 and columns and checked_format(file, format, None, None) != "csv":
            columns = None
        fmt = checked_format(file, format, columns, options.get("period"))
        pending = None  # one part held back, to know which is the last
        for table in file_parts(file, fmt, part_rows, **{**options, "columns": columns}):
            if pending is not None:
                yield path, pending, False
            pending = mark_repeats(table, seen)
            pending = check(pending) if check is not None else pending  # a repeat is a repeat whatever its values
        yield path, pending, True


def read_observation_files(
    paths: Iterable[Path],
    format: str | None = None,
    check: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    **options: Any,
) -> Iterator[tuple[Path, pd.DataFrame, pd.DataFrame]]:
    """Each file's QC'd table and QC summary, one file at a time (memory: one file), as
    :func:`read_observation_parts` reads them, the parts of a file put together."""
    parts: list[pd.DataFrame] = []
    for path, table, last in read_observation_parts(paths, format, check, **options):
        parts.append(table)
        if last:
            whole = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
            parts = []
            yield path, whole, qc_summary(whole)


def add_summaries(total: pd.DataFrame | None, summary: pd.DataFrame) -> pd.DataFrame:
    """Two QC summaries (:func:`engine.observe.profiles.qc_summary`) added up, by code."""
    both = summary if total is None else pd.concat([total, summary])
    return both.groupby(["code", "reason"], sort=True, as_index=False)["rows"].sum()


def write_observation_files(
    paths: list[Path],
    out: str | Path,
    format: str | None = None,
    on_file: Callable[[Path, pd.DataFrame], None] | None = None,
    command: str | None = None,
    **options: Any,
) -> tuple[int, pd.DataFrame]:
    """Read many observation files (:func:`read_observation_parts`) into one profile file,
    CF DSG netCDF or CSV by suffix, streamed: each part is written and dropped before the
    next is read; nothing is left if any file fails. ``on_file(path, qc_summary)`` after
    each file. Returns the measurements written and the QC summary of them all."""
    totals: dict[str, pd.DataFrame | None] = {"file": None, "all": None}

    def tables() -> Iterator[pd.DataFrame]:
        for path, table, last in read_observation_parts(paths, format, **options):
            totals["file"] = add_summaries(totals["file"], qc_summary(table))
            if last:
                totals["all"] = add_summaries(totals["all"], totals["file"])
                if on_file:
                    on_file(path, totals["file"])
                totals["file"] = None
            yield table

    if str(out).endswith(".csv"):
        rows = write_profiles_csv_incremental(tables(), out)
    else:
        source = str(paths[0]) if len(paths) == 1 else f"{len(paths)} files, e.g. {paths[0]}"
        rows = write_profiles_incremental(out, tables(), {"source": source}, command)
    return rows, totals["all"]
