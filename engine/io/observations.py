"""One entry point for observation files of any supported format, with QC."""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.errors import InputError, file_error
from engine.io.csvfiles import read_profiles_csv
from engine.io.dsg import OBS_FORMATS, read_profiles
from engine.io.nclock import NETCDF_LOCK
from engine.io.netcdf_decode import _open_netcdf
from engine.io.profile_index import read_profile_headers, read_profile_summary
from engine.io.realformats import (
    read_argo,
    read_en4,
)
from engine.io.wod import looks_like_wod, read_wod
from engine.observe.profiles import qc_summary
from engine.observe.qc import PeriodLike, period_bounds, run_qc

if TYPE_CHECKING:
    from engine.grid import Grid

# --- one entry point ----------------------------------------------------------------------


def observation_format(file: Path, format: str | None) -> str:
    """The reader to use: the given format, else by suffix, else by the netCDF's variables."""
    if format is not None:
        name = str(format).strip().lower()
        if name not in OBS_FORMATS:
            raise InputError(f"unknown observation format '{format}'; use one of {', '.join(OBS_FORMATS)}")
        return "dsg" if name == "deepda" else name
    if file.suffix.lower() in (".csv", ".txt"):
        return "csv"
    file, ds = _open_netcdf(file)
    with ds:
        names = set(map(str, ds.variables))
        if looks_like_wod(names):  # before DSG: WOD files are CF profiles too (featureType Profile)
            return "wod"
        if ds.attrs.get("featureType") == "profile" or "rowSize" in names:
            return "dsg"
        if names & {"POTM_CORRECTED", "DEPH_CORRECTED", "PROFILE_POTM_QC"}:
            return "en4"
        if {"PRES", "TEMP"} <= names:
            return "argo"
    raise file_error(file, "cannot tell which observation format this is", "give --format dsg, en4, argo, wod or csv")


def check_observations(path: str | Path) -> str:
    """The format of an observation file, or one line saying why it is none (a gridded
    world or analysis given in its place is named as such)."""
    from engine.io.fields import check_fields

    file = Path(path).expanduser()
    try:
        return observation_format(file, None)
    except InputError as err:
        problem = err
    try:
        check_fields(file)
    except InputError:
        raise problem from None
    raise file_error(file, "is a gridded field, not observations", "give it as the world or an analysis")


def open_observations(
    path: str | Path,
    format: str | None = None,
    *,
    columns: dict[str, str] | None = None,
    obs_error: float | dict[str, float] | None = None,
    grid: Grid | None = None,
    period: PeriodLike | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read an observation file of any supported format, run QC, and count the outcome.

    Parameters
    ----------
    path : str or Path
        The file.
    format : {"dsg", "deepda", "en4", "argo", "wod", "csv"}, optional
        Default: ``.csv``/``.txt`` is CSV; a netCDF file is recognised by its variables.
    columns : dict, optional
        CSV column mapping (see :func:`read_profiles_csv`); CSV only.
    obs_error : float or dict, optional
        Error for rows whose file gives none (EN4, Argo, CSV without an error column).
    grid : engine.grid.Grid, optional
        Enables the sea-floor check (see :func:`engine.observe.qc.run_qc`).
    period : optional
        Enables the time-window check, e.g. ``"1981-2020"``.

    Returns
    -------
    (table, summary)
        The profile table with QC codes (no row dropped) and :func:`engine.observe.profiles.qc_summary`.

    Raises
    ------
    InputError
        For anything wrong with the file or the arguments, in one line with the fix.
    """
    file = Path(path)
    fmt = checked_format(file, format, columns, period)
    table = read_table(file, fmt, columns, obs_error)
    if table.empty and fmt != "dsg":
        raise no_profiles(file, fmt)
    table = run_qc(table, grid=grid, period=period)
    return table, qc_summary(table)


def checked_format(file: Path, format: str | None, columns: dict[str, str] | None, period: Any) -> str:
    """The format ``file`` is read as, once the options that go with it are checked."""
    if period is not None:
        try:
            period_bounds(period)
        except ValueError as err:
            raise InputError(f"{err}; give a period such as 1981-2020") from None
    fmt = observation_format(file, format)
    if columns is not None and fmt != "csv":
        raise InputError(f"a column mapping applies to CSV files only, but {file} is read as {fmt}; drop the mapping")
    return fmt


def no_profiles(file: Path, fmt: str) -> InputError:
    """The error for a file without measurements (DeepDA's own files may be empty: a
    denial run with nothing left)."""
    return file_error(file, f"holds no profiles ({fmt} file with no measurements)", "give a file with data")


def read_table(
    file: Path,
    fmt: str,
    columns: dict[str, str] | None,
    obs_error: float | dict[str, float] | None,
    part: slice | None = None,
) -> pd.DataFrame:
    """The profile table of ``file`` read as ``fmt``, before QC; ``part`` (EN4, Argo: a
    slice of profiles; WOD: of casts) reads only those."""
    try:
        if fmt == "csv":
            return read_profiles_csv(file, columns, obs_error)
        if fmt == "dsg":
            return read_profiles(file)
        return {"en4": read_en4, "argo": read_argo, "wod": read_wod}[fmt](file, obs_error, part)
    except (ValueError, KeyError, IndexError, TypeError) as err:  # a layout the readers did not foresee
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        raise file_error(
            file, f"could not be read as {fmt} ({reason})", "check that --format matches the file"
        ) from None


def observation_paths(items: Iterable[str | Path]) -> list[Path]:
    """The files named by ``items``: files, glob patterns and folders (their .nc and .csv
    files, recursively), each once, in order."""
    found: dict[Path, None] = {}
    for item in items:
        text = str(item)
        if any(c in text for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
        elif Path(text).is_dir():
            matches = sorted(p for p in Path(text).rglob("*") if p.suffix.lower() in (".nc", ".csv", ".txt"))
        else:
            matches = [Path(text)]
        if not matches:
            raise InputError(f"{text} matches no file; give files, folders or patterns such as 'argo/*_prof.nc'")
        found.update(dict.fromkeys(p for p in matches if p.is_file() or not p.exists()))
    return list(found)


def is_osse_file(path: str | Path) -> bool:
    """Whether an observation file holds OSSE observations (sampled from a model world's
    truth, which can then be scored against), by the ``source`` attribute DeepDA writes."""
    file = Path(path)
    if observation_format(file, None) != "dsg":
        return False
    import netCDF4

    with NETCDF_LOCK, netCDF4.Dataset(file) as nc:
        return str(getattr(nc, "source", "")).startswith("DeepDA OSSE")


def profile_times(path: str | Path) -> np.ndarray | None:
    """Time of every profile of a DeepDA DSG file, from the profile dimension only (cheap);
    None for other files, which have no such index and are read whole."""
    file = Path(path)
    if observation_format(file, None) != "dsg":
        return None
    try:
        return read_profile_headers(file)["time"].to_numpy()
    except InputError:  # a CF profile file without DeepDA's profile variables
        return None


def good_profile_times(path: str | Path) -> np.ndarray | None:
    """Time of every profile of a DeepDA DSG file with at least one row passing its stored QC
    (a file read with --period keeps the rows outside it, flagged); None for other files."""
    file = Path(path)
    if observation_format(file, None) != "dsg":
        return None
    try:
        headers, _ = read_profile_summary(file)
    except InputError:
        return None
    return headers["time"].to_numpy()[headers["good"].to_numpy() > 0]


def read_observation_groups(
    path: str | Path,
    group_of: Callable[[np.ndarray], np.ndarray],
    groups: Iterable[int],
    grid: Grid | None = None,
) -> Iterator[pd.DataFrame]:
    """The QC'd profile table of each group of times in ``groups``, one group at a time.

    ``group_of`` maps observation times to group numbers (e.g. the year of the assimilation
    step). A DeepDA DSG file whose profiles are in time order (what ``deepda observe``
    writes) is read one group of profiles at a time, so memory follows one group, not the
    whole file (a 40-year OSSE file holds ~56 M rows); any other file is read and checked
    once and split. QC per group equals QC of the whole table: every check looks at one row,
    except duplicates, which share a time and so a group.

    Parameters
    ----------
    path : str or Path
        An observation file of any supported format (recognised as by
        :func:`open_observations`).
    group_of : callable
        datetime64 array -> integer array of the same length.
    groups : iterable of int
        The groups to yield, in the order wanted; a group without observations gives an
        empty table.
    grid : engine.grid.Grid, optional
        Enables the sea-floor check, as in :func:`open_observations`.
    """
    file = Path(path)
    times = profile_times(file)
    if times is not None and not np.isnat(times).any():
        profile_group = np.asarray(group_of(times))
        if np.all(np.diff(profile_group) >= 0):
            for group in groups:
                first, stop = np.searchsorted(profile_group, [group, group + 1])
                yield run_qc(read_profiles(file, slice(int(first), int(stop))), grid=grid)
            return
    table, _ = open_observations(file, grid=grid)
    row_group = np.asarray(group_of(table["time"].to_numpy()))
    order = np.argsort(row_group, kind="stable")  # a profile's rows share a time and stay together
    table, row_group = table.iloc[order], row_group[order]
    for group in groups:
        first, stop = np.searchsorted(row_group, [group, group + 1])
        yield table.iloc[first:stop]
