"""Cheap readers of the profile dimension of DeepDA DSG files: headers and QC summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from engine.errors import InputError, file_error
from engine.io.dsg import _platform_flags
from engine.io.integrity import check_complete
from engine.io.nclock import open_netcdf
from engine.io.netcdf_decode import _decode_time, _masked, damaged_guard
from engine.observe.profiles import PLATFORMS, QC_GOOD, qc_summary

_HEADER_VARIABLES = ("profile_id", "time", "lat", "lon", "platform", "rowSize")


def _open_deepda_dsg(path: str | Path, names: tuple[str, ...]) -> tuple[Path, xr.Dataset]:
    """Open a DeepDA DSG file undecoded and lazily (only what is indexed later is read).

    Raises
    ------
    InputError
        Missing or unreadable file, or one without the DeepDA variables ``names``.
    """
    file = Path(path)
    if not file.exists():
        raise InputError(f"{file} does not exist; give the path of a profile file")
    check_complete(file)
    try:
        ds = open_netcdf(file, decode_cf=False, engine="netcdf4")
    except Exception:  # the netCDF library raises OSError, ValueError, ...
        raise InputError(f"{file} is not a readable netCDF file; give a DeepDA profile file") from None
    missing = [name for name in names if name not in ds.variables]
    if missing:
        ds.close()
        raise InputError(
            f"{file} is not a DeepDA profile (DSG) file: no {', '.join(missing)}; "
            "convert it with 'deepda observe --read'"
        )
    return file, ds


def _header_frame(ds: xr.Dataset, file: Path) -> pd.DataFrame:
    """The profile-dimension variables of an open DeepDA DSG file, decoded as :func:`read_profiles`
    decodes them (same dtypes, NaT and NaN), so headers and full tables agree exactly."""
    return pd.DataFrame(
        {
            "profile_id": np.asarray(ds["profile_id"].values).astype(np.int64),
            "time": _decode_time(ds["time"], file),
            "lat": _masked(ds["lat"]).astype(np.float64),
            "lon": _masked(ds["lon"]).astype(np.float64),
            "platform": pd.Categorical(_platform_flags(ds["platform"]), categories=PLATFORMS),
            "rows": np.asarray(ds["rowSize"].values).astype(np.int64),
        }
    )


def read_profile_headers(path: str | Path) -> pd.DataFrame:
    """One row per profile (profile_id, time, lat, lon, platform, rows) of a DeepDA DSG file,
    reading only the profile dimension: cheap even for 40-year OSSE files."""
    file, ds = _open_deepda_dsg(path, _HEADER_VARIABLES)
    with ds, damaged_guard(file):
        return _header_frame(ds, file)


def _good_per_profile(qc: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Number of rows with QC code 0 in each profile of a contiguous ragged array.

    Parameters
    ----------
    qc : ndarray
        QC code per row, profiles one after the other.
    rows : ndarray
        Rows per profile (``rowSize``); zero for an empty profile.

    Returns
    -------
    ndarray of int64
        One count per profile (0 for an empty one).
    """
    rows = np.asarray(rows, dtype=np.int64)
    ends = np.cumsum(rows)
    # Count the flagged rows (few) per profile rather than summing a per-row indicator:
    # np.add.reduceat over rowSize offsets would cast all rows (60 M in a 40-year OSSE) to
    # int64, ~0.5 GB, and needs special cases for empty profiles. side="right" skips empty
    # profiles, whose end equals the previous one.
    flagged = np.flatnonzero(np.asarray(qc) != QC_GOOD)
    owner = np.searchsorted(ends, flagged, side="right")
    return rows - np.bincount(owner, minlength=len(rows)).astype(np.int64)


def read_profile_summary(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-profile headers with good-row counts, and the QC summary, of a DeepDA DSG file.

    Reads only the profile dimension and the ``qc`` variable (not depth, temperature or
    obs_error): what a map of profile positions, counts per platform and year and a QC
    table need, at a fraction of the time and memory of :func:`read_profiles` on a long
    OSSE file.

    The QC codes are the ones stored in the file. :func:`engine.io.open_observations`
    runs :func:`engine.observe.qc.run_qc` again on the full table, which can only add flags: rows
    the file leaves at 0 may be flagged there (e.g. OSSE temperatures below -2.5 degC, as
    OSSE files are written without QC; and always with a grid or period: the sea-floor and
    time-window checks). This summary is what the file says, not what an assimilation
    reading it with a grid will use.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`write_profiles` or :func:`write_profiles_incremental`.

    Returns
    -------
    (headers, summary)
        ``headers``: :func:`read_profile_headers` plus ``good``, the rows with QC code 0
        in each profile. ``summary``: :func:`engine.observe.profiles.qc_summary` of the stored
        codes, equal to ``qc_summary(read_profiles(path))``.

    Raises
    ------
    InputError
        Missing or unreadable file, not a DeepDA DSG file (no ``qc`` included), or a
        ``rowSize`` that does not add up to the rows, in one line with the fix.
    """
    file, ds = _open_deepda_dsg(path, (*_HEADER_VARIABLES, "qc"))
    with ds, damaged_guard(file):
        headers = _header_frame(ds, file)
        qc = np.asarray(ds["qc"].values).astype(np.int8, copy=False)  # the table's dtype
    if headers["rows"].sum() != len(qc):
        problem = f"rowSize adds up to {headers['rows'].sum()} but there are {len(qc)} observations"
        raise file_error(file, problem, "the file is damaged; write it again")
    headers["good"] = _good_per_profile(qc, headers["rows"].to_numpy())
    # qc_summary only looks at the qc column: a one-column frame gives the full table's summary.
    return headers, qc_summary(pd.DataFrame({"qc": qc}, copy=False))
