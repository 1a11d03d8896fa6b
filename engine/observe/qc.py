"""Quality control of the profile table: flag bad rows with a reason, never drop them.

:func:`run_qc` gives every row the code of the first check it fails (codes and reasons
in :data:`engine.observe.profiles.QC_REASONS`); :func:`engine.observe.profiles.qc_summary` counts them.
The checks are small pure functions on arrays, usable on their own. Nothing here reads
or writes a file (DESIGN sections 2 and 6).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.observe.profiles import QC_GOOD, as_table

if TYPE_CHECKING:
    from engine.grid import Grid

TEMPERATURE_RANGE = (-2.5, 40.0)  # degC: sea water is neither colder nor (in situ) warmer
KELVIN_RANGE = (271.0, 313.0)  # the same range in Kelvin, roughly
LONGITUDE_RANGE = (-180.0, 360.0)  # both conventions in use; normalised to 0..360
LATITUDE_LIMIT = 90.0

QC_MISSING, QC_RANGE, QC_KELVIN, QC_POSITION = 1, 2, 3, 4
QC_NEGATIVE_DEPTH, QC_BELOW_FLOOR, QC_PERIOD, QC_DUPLICATE = 5, 6, 7, 8
QC_NON_FINITE, QC_TOO_DEEP, QC_BAD_ERROR, QC_UNREADABLE = 10, 11, 12, 13
QC_BACKGROUND = 14  # engine.observe.background_check
FLOOR_MARGIN_M = 1000.0  # below a cell's deepest 1 degree sea floor: a trench, not an instrument error
DEEPEST_OCEAN_M = 11_000.0  # the Challenger Deep is about 10,935 m
_NUMERIC = ("lat", "lon", "depth", "temperature", "obs_error")

PeriodLike = str | tuple[Any, Any]


def missing_values(table: pd.DataFrame) -> np.ndarray:
    """Rows with a NaN/NaT in time, position, depth, temperature or obs_error."""
    columns = ("time", "lat", "lon", "depth", "temperature", "obs_error")
    return np.any([table[c].isna().to_numpy() for c in columns], axis=0)


def non_finite(table: pd.DataFrame) -> np.ndarray:
    """Rows with an infinite position, depth, temperature or obs_error (NaN has its own code)."""
    return np.any([np.isinf(table[c].to_numpy(dtype=np.float64)) for c in _NUMERIC], axis=0)


def deeper_than_any_ocean(depth: np.ndarray) -> np.ndarray:
    """Depths below the deepest ocean (NaN and inf have their own codes)."""
    d = np.asarray(depth, dtype=np.float64)
    return np.isfinite(d) & (d > DEEPEST_OCEAN_M)


def error_not_positive(obs_error: np.ndarray) -> np.ndarray:
    """Observation errors of zero or below: no instrument is perfect (NaN has its own code)."""
    e = np.asarray(obs_error, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return e <= 0


def out_of_range(temperature: np.ndarray) -> np.ndarray:
    """Temperatures outside -2.5..40 degC (NaN counts as in range: it has its own code)."""
    t = np.asarray(temperature, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (t < TEMPERATURE_RANGE[0]) | (t > TEMPERATURE_RANGE[1])


def kelvin_rows(profile_id: np.ndarray, temperature: np.ndarray) -> np.ndarray:
    """Rows in the Kelvin band (271-313) of profiles where most values are in that band.

    Deciding per profile tells a profile reported in Kelvin (flag it all as such) from a
    single wild value in a Celsius profile (which is merely out of range).
    """
    t = np.asarray(temperature, dtype=np.float64)
    if len(t) == 0:
        return np.zeros(0, dtype=bool)
    finite = np.isfinite(t)
    with np.errstate(invalid="ignore"):
        looks = finite & (t >= KELVIN_RANGE[0]) & (t <= KELVIN_RANGE[1])
    _, profile = np.unique(np.asarray(profile_id), return_inverse=True)
    n_looks = np.bincount(profile, weights=looks)
    n_finite = np.bincount(profile, weights=finite)
    return looks & (n_looks > 0.5 * n_finite)[profile]


def impossible_position(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Latitude outside +-90 or longitude outside -180..360 (NaN has its own code)."""
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (np.abs(lat) > LATITUDE_LIMIT) | (lon < LONGITUDE_RANGE[0]) | (lon > LONGITUDE_RANGE[1])


def normalise_longitude(lon: np.ndarray) -> np.ndarray:
    """Valid longitudes (-180..360) mapped to 0..360; invalid ones left as they are, for the record."""
    lon = np.asarray(lon, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        valid = (lon >= LONGITUDE_RANGE[0]) & (lon <= LONGITUDE_RANGE[1])
    return np.where(valid, np.mod(lon, 360.0), lon)


def below_sea_floor(lat: np.ndarray, lon: np.ndarray, depth: np.ndarray, grid: Grid) -> np.ndarray:
    """Rows deeper than the sea floor of the nearest grid cell, or in a land cell.

    The floor is the bottom of the cell's deepest ocean layer (its level plus half a
    layer). A column that is ocean at every level reaches below the grid: there the floor
    is the cell's deepest 1 degree sea floor plus ``FLOOR_MARGIN_M`` (a trench may be
    deeper than its 1 degree mean), so that only the impossible is flagged.
    """
    lat, lon, depth = (np.asarray(a, dtype=np.float64) for a in (lat, lon, depth))
    valid = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(depth) & (np.abs(lat) <= LATITUDE_LIMIT)
    res = grid.spec.resolution
    i = np.clip(np.round((np.where(valid, lat, 0.0) - grid.lat[0]) / res), 0, len(grid.lat) - 1).astype(int)
    j = np.round((np.mod(np.where(valid, lon, 0.0), 360.0) - grid.lon[0]) / res).astype(int) % len(grid.lon)
    ocean = np.asarray(grid.ocean, dtype=bool)
    nz = ocean.shape[0]
    # levels down to the deepest ocean one; 0 where the surface is land
    n_ocean = np.where(ocean.any(axis=0), nz - np.argmax(ocean[::-1], axis=0), 0)
    floor = np.r_[-np.inf, grid.depth_bounds[:, 1]][n_ocean[i, j]]
    below_grid = n_ocean[i, j] == nz
    deepest = np.inf if grid.deepest_floor is None else grid.deepest_floor[i, j] + FLOOR_MARGIN_M
    floor = np.where(below_grid, deepest, floor)
    return valid & (depth > floor)


def period_bounds(period: PeriodLike) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last instant of a period.

    Parameters
    ----------
    period : str or (start, end)
        ``"1981-2020"`` or ``"1981-01/2020-06"`` or ``"2001"``; or a pair whose items
        are years (int), date strings, or timestamps. Years, months and days cover
        themselves whole: ``(1981, 2020)`` runs to 2020-12-31 23:59:59.999999999.

    Raises
    ------
    ValueError
        If the period cannot be read or ends before it starts.
    """
    if isinstance(period, str):
        years = re.fullmatch(r"\s*(\d{4})\s*-\s*(\d{4})\s*", period)
        parts = years.groups() if years else tuple(period.split("/")) if "/" in period else (period, period)
    else:
        parts = tuple(period)
    if len(parts) != 2:
        raise ValueError(f"period {period!r} must be 'YYYY-YYYY', 'start/end' or a (start, end) pair")
    try:
        start, end = _instant(parts[0], "start"), _instant(parts[1], "end")
    except ValueError:
        raise ValueError(f"period {period!r} has a date that cannot be read; use e.g. '1981-2020'") from None
    if end < start:
        raise ValueError(f"period {period!r} ends before it starts")
    return start, end


def _instant(value: Any, side: str) -> pd.Timestamp:
    """A period end: strings and years cover their whole span; timestamps are exact."""
    if isinstance(value, dt.datetime | np.datetime64 | pd.Timestamp):
        return pd.Timestamp(value)
    span = pd.Period(str(value).strip())
    return span.start_time if side == "start" else span.end_time


def outside_period(time: np.ndarray, period: PeriodLike) -> np.ndarray:
    """Times before the period's start or after its end (NaT has its own code)."""
    start, end = period_bounds(period)
    t = pd.DatetimeIndex(np.asarray(time, dtype="datetime64[ns]"))
    return np.asarray(((t < start) | (t > end)) & t.notna())


def duplicate_rows(table: pd.DataFrame, candidates: np.ndarray) -> np.ndarray:
    """Candidate rows repeating the time, lat, lon, depth and platform of an earlier candidate."""
    keys = pd.DataFrame(
        {
            "time": table["time"].to_numpy().view("i8"),
            "lat": table["lat"].to_numpy(),
            "lon": table["lon"].to_numpy(),
            "depth": table["depth"].to_numpy(),
            "platform": table["platform"].cat.codes.to_numpy(),
        }
    )
    rows = np.flatnonzero(candidates)
    out = np.zeros(len(table), dtype=bool)
    out[rows[keys.iloc[rows].duplicated(keep="first").to_numpy()]] = True
    return out


def profile_keys(table: pd.DataFrame) -> np.ndarray:
    """One integer per row naming its profile by platform, time (to the minute) and position
    (to 0.01 degree): the same profile read from two files (a float's multi-profile file
    and its single-profile file) gets the same key whatever ids the files gave it."""
    minutes = table["time"].to_numpy().astype("datetime64[m]").astype("i8")
    lat = np.round((np.nan_to_num(table["lat"].to_numpy()) + 90.0) * 100.0).astype("i8")
    lon = np.round(np.mod(np.nan_to_num(table["lon"].to_numpy()), 360.0) * 100.0).astype("i8") % 36000
    platform = table["platform"].cat.codes.to_numpy().astype("i8")
    return ((minutes * 18001 + lat) * 36000 + lon) * 8 + platform


def run_qc(table: pd.DataFrame, grid: Grid | None = None, period: PeriodLike | None = None) -> pd.DataFrame:
    """Set each row's QC code to the first check it fails; no row is ever dropped.

    Checks, in order: missing value (1); non-finite value (10); Kelvin profile (3,
    before the range test, which a Kelvin value would also fail, because it is the more
    telling reason); temperature outside -2.5..40 degC (2); impossible position (4);
    negative depth (5); deeper than the deepest ocean (11); observation error not
    positive (12); deeper than the local sea floor (6, only with ``grid``); time outside
    ``period`` (7, only with a period); duplicate of an earlier good row (8). A row that
    passes them all keeps any code it had (such as 9, flagged bad in the source file):
    QC only adds flags, so running it again, or with a grid later, is safe. A row the
    reader could not read (13) keeps that code.

    Parameters
    ----------
    table : DataFrame
        A profile table.
    grid : Grid, optional
        The model grid, for the sea-floor check.
    period : str or (start, end), optional
        See :func:`period_bounds`.

    Returns
    -------
    DataFrame
        A new table: same rows in the same order, valid longitudes normalised to 0..360,
        ``qc`` set.
    """
    out = as_table(table)
    out["lon"] = normalise_longitude(out["lon"].to_numpy())
    lat, lon = out["lat"].to_numpy(), out["lon"].to_numpy()
    depth, temperature = out["depth"].to_numpy(), out["temperature"].to_numpy()
    checks = [
        (QC_MISSING, missing_values(out)),
        (QC_NON_FINITE, non_finite(out)),
        (QC_KELVIN, kelvin_rows(out["profile_id"].to_numpy(), temperature)),
        (QC_RANGE, out_of_range(temperature)),
        (QC_POSITION, impossible_position(lat, lon)),
        (QC_NEGATIVE_DEPTH, depth < 0),
        (QC_TOO_DEEP, deeper_than_any_ocean(depth)),
        (QC_BAD_ERROR, error_not_positive(out["obs_error"].to_numpy())),
    ]
    if grid is not None:
        checks.append((QC_BELOW_FLOOR, below_sea_floor(lat, lon, depth, grid)))
    if period is not None:
        checks.append((QC_PERIOD, outside_period(out["time"].to_numpy(), period)))
    code = out["qc"].to_numpy().copy()
    failed = code == QC_UNREADABLE  # the reader's reason is the telling one: the text could not be read
    for reason, mask in checks:  # the first failed check names the reason
        code[mask & ~failed] = reason
        failed |= mask
    code[duplicate_rows(out, code == QC_GOOD)] = QC_DUPLICATE
    out["qc"] = code.astype(np.int8)
    return out
