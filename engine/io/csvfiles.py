"""Profile tables as CSV, with a column mapping for other people's files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.errors import file_error
from engine.io.core import (
    InputError,
    atomic_path,
)
from engine.io.dsg import (
    _QC_FLAG_MEANINGS,
    classify_platform,
    default_obs_error,
)
from engine.observe.profiles import COLUMNS, PLATFORMS, as_table

if TYPE_CHECKING:
    pass

# --- CSV ----------------------------------------------------------------------------------

REQUIRED_CSV_COLUMNS = ("time", "lat", "lon", "depth", "temperature")


def _iso_times(times: pd.Series) -> np.ndarray:
    """ISO 8601 strings, to the second unless a time needs more (then to the nanosecond)."""
    values = times.to_numpy().astype("datetime64[ns]")
    whole = np.all(values[~np.isnat(values)].view("i8") % 10**9 == 0)
    text = np.datetime_as_string(values, unit="s" if whole else "ns")
    return np.where(np.isnat(values), "", text)


def write_profiles_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Write a profile table as CSV (atomically) that :func:`read_profiles_csv` reads back exactly.

    Floats are written with the shortest representation that round-trips (float64 for
    lat/lon, float32 for the others); times as ISO 8601 (UTC, no zone suffix); NaN and NaT
    as empty fields.
    """
    table = as_table(table)
    out = table.astype({"platform": object}).fillna({"platform": ""})
    out["time"] = _iso_times(table["time"])
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)


def _read_csv_frame(file: Path) -> pd.DataFrame:
    if not file.exists():
        raise file_error(file, "file does not exist", "check the path")
    if file.is_dir():
        raise file_error(file, "is a folder, not a file", "give the path of a CSV file")
    if not file.read_bytes().strip():
        raise file_error(file, "file is empty", "give a CSV file with a header row and one row per measurement")
    try:
        return pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise file_error(
            file, f"is not a readable CSV table ({reason})", "check the path and the delimiter (comma)"
        ) from None


def _csv_column_map(frame: pd.DataFrame, file: Path, columns: dict[str, str] | None) -> dict[str, str]:
    """Table column -> CSV column, defaulting to same-named columns; fail on gaps or typos."""
    unknown = sorted(set(columns or {}) - set(COLUMNS))
    if unknown:
        raise InputError(f"unknown column mapping key(s) {', '.join(unknown)}; map any of {', '.join(COLUMNS)}")
    mapping = {name: name for name in COLUMNS if name in frame.columns}
    mapping.update(columns or {})
    absent = [f"'{csv}' (for {name})" for name, csv in mapping.items() if csv not in frame.columns]
    absent += [f"'{name}'" for name in REQUIRED_CSV_COLUMNS if name not in mapping]
    if absent:
        found = ", ".join(map(str, frame.columns[:12])) + (", ..." if len(frame.columns) > 12 else "")
        raise file_error(
            file,
            f"has no column {', '.join(absent)} (columns found: {found})",
            "fix the column mapping, e.g. {'time': 'date', 'temperature': 'temp_c'}",
        )
    return mapping


def _parse_column(values: pd.Series, name: str, file: Path, csv_name: str) -> pd.Series:
    """Parse one CSV column; unreadable entries become NaN/NaT (and QC code 1), never vanish.

    A column in which nothing at all can be read is a mapping mistake, not bad rows.
    """
    text = values.str.strip()
    if name == "time":
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
        if parsed.isna().all() and (text != "").any():
            parsed = pd.to_datetime(text, format="mixed", errors="coerce", utc=True)
        parsed = parsed.dt.tz_localize(None)
    else:
        parsed = pd.to_numeric(text, errors="coerce")
    if len(text) and parsed.isna().all() and (text != "").any():
        kind = "dates (e.g. 2001-01-31T12:00)" if name == "time" else "numbers"
        raise file_error(file, f"column '{csv_name}' (for {name}) holds no readable {kind}", "fix the column mapping")
    return parsed


def _assign_profiles(frame: pd.DataFrame) -> pd.DataFrame:
    """Give rows profile ids and make each profile's rows contiguous.

    A profile is one (source id, time, lat, lon, platform); source ids are kept when they
    already mean exactly that, else profiles are numbered in order of first appearance.
    Rows are reordered (stably) only when a profile's rows are scattered.
    """
    keys = pd.DataFrame(
        {
            "time": frame["time"].to_numpy().view("i8"),
            "lat": frame["lat"],
            "lon": frame["lon"],
            "platform": frame["platform"].cat.codes,
        }
    )
    has_ids = "profile_id" in frame and frame["profile_id"].notna().all()
    if has_ids:
        keys["source"] = frame["profile_id"].to_numpy()
    group = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup().to_numpy()
    consistent = has_ids and len(np.unique(group)) == frame["profile_id"].nunique()
    frame["profile_id"] = frame["profile_id"].astype(np.int64) if consistent else group
    if not _contiguous(group):
        frame = frame.iloc[np.argsort(group, kind="stable")]
    return frame.reset_index(drop=True)


def _contiguous(group: np.ndarray) -> bool:
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else group
    return len(np.unique(group[starts])) == len(starts)


def read_profiles_csv(
    path: str | Path,
    columns: dict[str, str] | None = None,
    obs_error: float | dict[str, float] | None = None,
) -> pd.DataFrame:
    """Read a CSV table of measurements into a profile table.

    Parameters
    ----------
    path : str or Path
        CSV file with a header row, one row per measurement.
    columns : dict, optional
        Table column -> CSV column, e.g. ``{"time": "date", "temperature": "temp_c"}``.
        Unmapped table columns are taken from same-named CSV columns. time, lat, lon,
        depth and temperature are required; platform (free text, classified by
        :func:`classify_platform`), obs_error, profile_id and qc are optional.
    obs_error : float or dict, optional
        Error for rows without one: a number, or per-platform values over
        :data:`DEFAULT_OBS_ERROR`.

    Returns
    -------
    DataFrame
        The profile table. Unreadable values become NaN/NaT (QC code 1 later); no row is
        dropped. A file written by :func:`write_profiles_csv` reads back exactly.

    Raises
    ------
    InputError
        Missing or empty file, missing mapped columns, or a column with nothing readable.
    """
    file = Path(path)
    raw = _read_csv_frame(file)
    mapping = _csv_column_map(raw, file, columns)
    frame = pd.DataFrame(index=raw.index)
    for name in REQUIRED_CSV_COLUMNS:
        frame[name] = _parse_column(raw[mapping[name]], name, file, mapping[name])
    text = raw[mapping["platform"]] if "platform" in mapping else pd.Series("", index=raw.index)
    frame["platform"] = pd.Categorical(text.map(classify_platform), categories=PLATFORMS)
    if "obs_error" in mapping:
        frame["obs_error"] = _parse_column(raw[mapping["obs_error"]], "obs_error", file, mapping["obs_error"])
    else:
        frame["obs_error"] = default_obs_error(frame["platform"], obs_error)
    if "profile_id" in mapping:
        frame["profile_id"] = _parse_column(raw[mapping["profile_id"]], "profile_id", file, mapping["profile_id"])
    frame["qc"] = _csv_qc(raw, mapping, file)
    return as_table(_assign_profiles(frame))


def _csv_qc(raw: pd.DataFrame, mapping: dict[str, str], file: Path) -> np.ndarray:
    """DeepDA QC codes from a ``qc`` column (0 where absent); other flag schemes are refused."""
    if "qc" not in mapping:
        return np.zeros(len(raw), dtype=np.int8)
    codes = pd.to_numeric(raw[mapping["qc"]].str.strip().replace("", "0"), errors="coerce")
    if not codes.isin(list(_QC_FLAG_MEANINGS)).all():
        raise file_error(
            file,
            f"column '{mapping['qc']}' holds values that are not DeepDA QC codes 0-9",
            "rename that column or map 'qc' to a column of DeepDA codes",
        )
    return codes.to_numpy(dtype=np.int8)
