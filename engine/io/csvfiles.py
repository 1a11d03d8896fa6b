"""Profile tables as CSV, with a column mapping for other people's files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import file_error
from engine.io.core import (
    InputError,
    atomic_path,
)
from engine.io.dsg import (
    _QC_FLAG_MEANINGS,
    QC_SOURCE_BAD,
    classify_platform,
    default_obs_error,
)
from engine.io.integrity import read_head
from engine.observe.profiles import COLUMNS, PLATFORMS, QC_GOOD, as_table
from engine.observe.qc import QC_UNREADABLE

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
    with atomic_path(path) as tmp:
        _csv_text(table).to_csv(tmp, index=False)


def _csv_text(table: pd.DataFrame) -> pd.DataFrame:
    table = as_table(table)
    out = table.astype({"platform": object}).fillna({"platform": ""})
    out["time"] = _iso_times(table["time"])
    return out


def write_profiles_csv_incremental(tables: Iterable[pd.DataFrame], path: str | Path) -> int:
    """Write profile tables one after the other into one CSV file, as :func:`write_profiles_csv`
    writes one table (atomically: nothing is left if a table fails); returns the rows written.
    Memory: one table at a time."""
    rows = 0
    with atomic_path(path) as tmp:
        for table in tables:
            _csv_text(table).to_csv(tmp, index=False, mode="a" if rows else "w", header=not rows)
            rows += len(table)
        if not rows:  # the header alone, as an empty table writes
            _csv_text(as_table(pd.DataFrame(columns=list(COLUMNS)))).to_csv(tmp, index=False)
    return rows


def _read_csv_frame(file: Path) -> pd.DataFrame:
    if not file.exists():
        raise file_error(file, "file does not exist", "check the path")
    if file.is_dir():
        raise file_error(file, "is a folder, not a file", "give the path of a CSV file")
    if not read_head(file, 1 << 16).strip():
        raise file_error(file, "file is empty", "give a CSV file with a header row and one row per measurement")
    header = read_head(file, 4096).split(b"\n", 1)[0]
    # spreadsheets in many locales save ';'- or tab-separated "CSV"
    sep = next((s for s in (",", ";", "\t") if s.encode() in header), ",")
    try:
        frame = pd.read_csv(file, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise file_error(
            file, f"is not a readable CSV table ({reason})", "check the path and the delimiter (comma)"
        ) from None
    if frame.empty:
        raise file_error(file, "has a header but no data rows", "give a CSV file with one row per measurement")
    return frame


def _csv_column_map(frame: pd.DataFrame, file: Path, columns: dict[str, str] | None) -> dict[str, str]:
    """Table column -> CSV column, defaulting to same-named columns; fail on gaps or typos."""
    unknown = sorted(set(columns or {}) - set(COLUMNS) - {"source_qc"})
    if unknown:
        raise InputError(
            f"unknown column mapping key(s) {', '.join(unknown)}; map any of {', '.join(COLUMNS)}, source_qc"
        )
    if columns and {"qc", "source_qc"} <= set(columns):
        raise InputError("map either qc (DeepDA codes) or source_qc (IOC/Argo flags), not both")
    mapping = {name: name for name in COLUMNS if name in frame.columns}
    if columns and "source_qc" in columns:
        mapping.pop("qc", None)
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


_MISSING_TEXT = ("", "nan", "na", "n/a", "null", "none", "-", "--")
_SLASH_DATES = {"month-first": ("%m", "%d", "%Y"), "day-first": ("%d", "%m", "%Y")}
_TIME_OF_DAY = ("", " %H:%M", " %H:%M:%S", "T%H:%M", "T%H:%M:%S")
# what datetime64[ns] can hold: a date past these is a typo (e.g. year 9999), flagged on its row
_EARLIEST, _LATEST = pd.Timestamp("1678-01-01", tz="UTC"), pd.Timestamp("2262-01-01", tz="UTC")


def _slash_dates(text: pd.Series, order: tuple[str, str, str]) -> pd.Series:
    """Dates such as 03/04/1981 (12:00) read in one day/month order; NaT where that fails."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    for sep in ("/", "-", "."):
        for clock in _TIME_OF_DAY:
            todo = out.isna()
            if not todo.any():
                return out
            fmt = sep.join(order) + clock
            out[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce", utc=True)
    return out


def _non_iso_dates(text: pd.Series, file: Path, csv_name: str) -> pd.Series:
    """Dates that are not ISO 8601: day/month/year in whichever order the column uses.

    The order is the one some date needs (a day above 12); a column where both orders
    read and disagree everywhere is refused rather than guessed. Anything else falls to
    pandas' flexible parser; what nothing reads stays NaT.
    """
    month, day = (_slash_dates(text, order) for order in _SLASH_DATES.values())
    only_month, only_day = month.notna() & day.isna(), day.notna() & month.isna()
    disagree = month.notna() & day.notna() & (month != day)
    if only_day.any() and not only_month.any():
        chosen = day
    elif not only_day.any() and (only_month.any() or not disagree.any()):
        chosen = month
    else:
        example = text[disagree | only_day].iloc[0]
        raise file_error(
            file,
            f"column '{csv_name}' has dates such as '{example}' that read both day-first and month-first",
            "write the dates as ISO 8601 (e.g. 1981-03-04T12:00)",
        )
    rest = chosen.isna()
    if rest.any():
        chosen[rest] = pd.to_datetime(text[rest], format="mixed", errors="coerce", utc=True)
    return chosen


def _parse_times(text: pd.Series, file: Path, csv_name: str) -> pd.Series:
    # pandas reads 'now' and 'today' as the clock's time: in a data file they are no date
    text = text.where(~text.str.lower().isin(("now", "today")), "unreadable")
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    rest = parsed.isna() & ~text.str.lower().isin(_MISSING_TEXT)
    if rest.any():
        parsed = parsed.astype("datetime64[us, UTC]")
        parsed[rest] = _non_iso_dates(text[rest], file, csv_name).astype("datetime64[us, UTC]")
    parsed = parsed.where((parsed >= _EARLIEST) & (parsed < _LATEST))
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _parse_column(values: pd.Series, name: str, file: Path, csv_name: str) -> tuple[pd.Series, np.ndarray]:
    """Parse one CSV column; returns the values and where text was there but unreadable.

    Unreadable entries become NaN/NaT and are flagged on their row (QC code 13), never
    dropped. A column in which nothing at all can be read is a mapping mistake, not bad
    rows, and is refused.
    """
    text = values.str.strip()
    parsed = _parse_times(text, file, csv_name) if name == "time" else pd.to_numeric(text, errors="coerce")
    unreadable = (parsed.isna() & ~text.str.lower().isin(_MISSING_TEXT)).to_numpy()
    if len(text) and parsed.isna().all() and unreadable.any():
        kind = "dates (e.g. 2001-01-31T12:00)" if name == "time" else "numbers"
        raise file_error(file, f"column '{csv_name}' (for {name}) holds no readable {kind}", "fix the column mapping")
    return parsed, unreadable


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
        :func:`classify_platform`), obs_error, profile_id (numbers or text) and qc
        (DeepDA codes) are optional; ``source_qc`` maps a column of IOC / Argo flags
        (1 = good; 3 and 4 become code 9, flagged bad in the source file).
    obs_error : float or dict, optional
        Error for rows without one: a number, or per-platform values over
        :data:`DEFAULT_OBS_ERROR`.

    Returns
    -------
    DataFrame
        The profile table. Text that cannot be read (a number, a date such as year 9999)
        becomes NaN/NaT with QC code 13 on its row; empty fields are missing values (code
        1 later); no row is dropped. Dates are ISO 8601 or day/month/year in either
        order. A file written by :func:`write_profiles_csv` reads back exactly.

    Raises
    ------
    InputError
        Missing, empty or header-only file, missing mapped columns, a column with
        nothing readable, dates whose day/month order is ambiguous, or a ``qc`` column
        holding another flag scheme.
    """
    file = Path(path)
    raw = _read_csv_frame(file)
    mapping = _csv_column_map(raw, file, columns)
    frame = pd.DataFrame(index=raw.index)
    unreadable = np.zeros(len(raw), dtype=bool)
    for name in (*REQUIRED_CSV_COLUMNS, "obs_error"):
        if name in mapping:
            frame[name], bad = _parse_column(raw[mapping[name]], name, file, mapping[name])
            unreadable |= bad
    text = raw[mapping["platform"]] if "platform" in mapping else pd.Series("", index=raw.index)
    frame["platform"] = pd.Categorical(text.map(classify_platform), categories=PLATFORMS)
    if "obs_error" not in mapping:
        frame["obs_error"] = default_obs_error(frame["platform"], obs_error)
    if "profile_id" in mapping:
        frame["profile_id"] = _profile_ids(raw[mapping["profile_id"]])
    qc = _csv_qc(raw, mapping, file, explicit="qc" in (columns or {}))
    frame["qc"] = np.where(unreadable, QC_UNREADABLE, qc).astype(np.int8)
    return as_table(_assign_profiles(frame))


def _profile_ids(text: pd.Series) -> pd.Series:
    """Numeric ids as they are; text ids (e.g. 'WMO4900782_035') numbered in order of appearance."""
    ids = pd.to_numeric(text.str.strip(), errors="coerce")
    if ids.notna().all() and (ids == ids.round()).all():
        return ids
    return pd.Series(pd.factorize(text.str.strip())[0], index=text.index, dtype="float64")


def _csv_qc(raw: pd.DataFrame, mapping: dict[str, str], file: Path, explicit: bool) -> np.ndarray:
    """DeepDA QC codes from a ``qc`` column, or source flags from a ``source_qc`` column.

    The same numbers mean different things in different schemes (IOC / Argo: 1 = good;
    DeepDA: 1 = missing value), so a ``qc`` column is read as DeepDA codes only in a file
    with DeepDA's own header (what :func:`write_profiles_csv` writes) or when the mapping
    names it (``qc=COLUMN``); ``source_qc=COLUMN`` reads IOC flags (3 and 4 are bad). Any
    other ``qc`` column is refused, never guessed.
    """
    if "source_qc" in mapping:
        flags = raw[mapping["source_qc"]].str.strip()
        return np.where(flags.isin(("3", "4")), QC_SOURCE_BAD, QC_GOOD).astype(np.int8)
    if "qc" not in mapping:
        return np.zeros(len(raw), dtype=np.int8)
    codes = pd.to_numeric(raw[mapping["qc"]].str.strip().replace("", "0"), errors="coerce")
    own = list(raw.columns) == list(COLUMNS)
    if not codes.isin(list(_QC_FLAG_MEANINGS)).all():
        raise file_error(
            file,
            f"column '{mapping['qc']}' holds values that are not DeepDA QC codes ({min(_QC_FLAG_MEANINGS)}-"
            f"{max(_QC_FLAG_MEANINGS)})",
            f"for IOC/Argo flags map it with --columns source_qc={mapping['qc']}; else rename the column",
        )
    if not (explicit or own):
        raise file_error(
            file,
            f"column '{mapping['qc']}' may hold another flag scheme than DeepDA QC codes (0 = good, 1 = missing)",
            f"for IOC/Argo flags (1 = good, 3/4 bad) map it with --columns source_qc={mapping['qc']}; "
            f"for DeepDA codes, --columns qc={mapping['qc']}",
        )
    return codes.to_numpy(dtype=np.int8)
