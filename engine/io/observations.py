"""One entry point for observation files of any supported format, with QC."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from engine.io.core import InputError
from engine.io.csvfiles import (
    read_profiles_csv,
)
from engine.io.dsg import (
    OBS_FORMATS,
    _bad_input,
    _open_netcdf,
    read_profiles,
)
from engine.io.realformats import (
    read_argo,
    read_en4,
)
from engine.profiles import qc_summary
from engine.qc import PeriodLike, period_bounds, run_qc

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
        if ds.attrs.get("featureType") == "profile" or "rowSize" in names:
            return "dsg"
        if names & {"POTM_CORRECTED", "DEPH_CORRECTED", "PROFILE_POTM_QC"}:
            return "en4"
        if {"PRES", "TEMP"} <= names:
            return "argo"
    raise _bad_input(file, "cannot tell which observation format this is", "give --format dsg, en4, argo or csv")


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
    format : {"dsg", "deepda", "en4", "argo", "csv"}, optional
        Default: ``.csv``/``.txt`` is CSV; a netCDF file is recognised by its variables.
    columns : dict, optional
        CSV column mapping (see :func:`read_profiles_csv`); CSV only.
    obs_error : float or dict, optional
        Error for rows whose file gives none (EN4, Argo, CSV without an error column).
    grid : engine.grid.Grid, optional
        Enables the sea-floor check (see :func:`engine.qc.run_qc`).
    period : optional
        Enables the time-window check, e.g. ``"1981-2020"``.

    Returns
    -------
    (table, summary)
        The profile table with QC codes (no row dropped) and :func:`engine.profiles.qc_summary`.

    Raises
    ------
    InputError
        For anything wrong with the file or the arguments, in one line with the fix.
    """
    file = Path(path)
    if period is not None:
        try:
            period_bounds(period)
        except ValueError as err:
            raise InputError(f"{err}; give a period such as 1981-2020") from None
    fmt = observation_format(file, format)
    if columns is not None and fmt != "csv":
        raise InputError(f"a column mapping applies to CSV files only, but {file} is read as {fmt}; drop the mapping")
    try:
        if fmt == "csv":
            table = read_profiles_csv(file, columns, obs_error)
        elif fmt == "dsg":
            table = read_profiles(file)
        else:
            table = (read_en4 if fmt == "en4" else read_argo)(file, obs_error)
    except (ValueError, KeyError, IndexError, TypeError) as err:  # a layout the readers did not foresee
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        raise _bad_input(
            file, f"could not be read as {fmt} ({reason})", "check that --format matches the file"
        ) from None
    table = run_qc(table, grid=grid, period=period)
    return table, qc_summary(table)
