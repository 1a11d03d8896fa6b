"""Profile table -> gridded super-observations: anomaly map, mask, count and error per step.

Each good profile (qc == 0) is interpolated to the model levels, the grid's climatology and
seasonal cycle at its step are subtracted, and the values falling in one cell and step are
combined into a super-observation:

- interpolation is linear between measured depths; there is no extrapolation above the
  shallowest or below the deepest measurement, except that a measurement inside a level's
  layer (``grid.depth_bounds``, i.e. within about half a layer of the level) counts for
  it: a 0 m SST serves the 5 m level, a profile ending at 680 m the 700 m level;
- the profile's cell is the one holding its position (nearest cell); values in land cells
  are dropped;
- the cell value is the inverse-error-variance weighted mean of the anomalies; the cell
  error is that of the mean of independent instrument errors, ``1 / sqrt(sum 1/e_i^2)``
  (``e / sqrt(n)`` for n equal errors), plus in quadrature the cell's representativeness
  error (``repr_error``, :mod:`engine.observe.representativeness`), which every profile in
  the cell shares, so that crowding a cell never makes it exact;
- where there is no observation, ``obs_anomaly``, ``obs_error`` and ``obs_count`` are 0 and
  ``obs_mask`` 0 (zeros, not NaN, because the network multiplies inputs by the mask).

Everything is vectorised over observations (np.searchsorted / np.bincount), with one small
loop over model levels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cftime
import numpy as np
import pandas as pd
import xarray as xr

from engine.grid import Grid, horizontal_corners, nearest_cell, step_day_of_year, step_times, time_to_step
from engine.io import read_observation_groups
from engine.observe.representativeness import superobs_error

MIN_ERROR = 1e-3  # degC: keeps inverse-variance weights finite for error-free test data
VARIABLES = ("obs_anomaly", "obs_mask", "obs_count", "obs_error")
ATTRS = {
    "obs_anomaly": {
        "long_name": "super-observation temperature anomaly (vs grid climatology + seasonal cycle)",
        "units": "degC",
    },
    "obs_mask": {"long_name": "1 where the cell holds at least one observation", "units": "1"},
    "obs_count": {"long_name": "number of observations (profile levels) in the cell", "units": "1"},
    "obs_error": {"long_name": "error standard deviation of the super-observation", "units": "degC"},
}


def table_steps(times: Any, start_year: int, steps_per_year: int) -> np.ndarray:
    """Step index (from January of ``start_year``) of each time: datetime64 (standard
    calendar, via ``engine.grid.time_to_step``) or cftime noleap / 365_day objects."""
    times = np.asarray(times)
    if times.dtype.kind == "M" or len(times) == 0:
        return np.asarray(time_to_step(times, start_year, steps_per_year), dtype="i8")
    calendars = {getattr(t, "calendar", None) for t in times[:1]}
    if not calendars <= {"noleap", "365_day"}:
        raise ValueError(f"times in calendar {calendars.pop()!r}: use datetime64 (standard) or cftime noleap")
    days = np.asarray(cftime.date2num(times, "days since 0001-01-01", calendar="noleap"), dtype="f8")
    year = 1 + np.floor(days / 365.0).astype("i8")
    doy = days - (year - 1) * 365.0
    if steps_per_year == 12:
        month_starts = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30])
        within = np.searchsorted(month_starts, doy, side="right") - 1
    else:
        within = np.minimum(np.floor(doy * steps_per_year / 365.0).astype("i8"), steps_per_year - 1)
    return (year - start_year) * steps_per_year + within


def _sorted_profiles(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Good rows as arrays, sorted by profile then depth, with each row's profile number."""
    good = table["qc"].to_numpy() == 0 if "qc" in table else np.ones(len(table), bool)
    good &= np.isfinite(table["temperature"].to_numpy()) & np.isfinite(table["depth"].to_numpy())
    idx = np.flatnonzero(good)
    pid = table["profile_id"].to_numpy()[idx]
    depth = table["depth"].to_numpy()[idx].astype("f8")
    order = np.argsort(pid, kind="stable")  # our tables are already in profile order: cheap
    if np.any((pid[order][1:] == pid[order][:-1]) & (depth[order][1:] < depth[order][:-1])):
        order = np.lexsort((depth, pid))  # some profile is not given shallow to deep
    rows, pid, depth = idx[order], pid[order], depth[order]
    new = np.r_[True, pid[1:] != pid[:-1]] if len(pid) else np.zeros(0, bool)
    return {
        "row": rows,
        "depth": depth,
        "temperature": table["temperature"].to_numpy()[rows].astype("f8"),
        "error": table["obs_error"].to_numpy()[rows].astype("f8"),
        "profile": np.cumsum(new) - 1,
        "start": np.flatnonzero(new),
    }


def profile_levels(rows: dict[str, np.ndarray], depth_levels: np.ndarray, bounds: np.ndarray) -> dict[str, np.ndarray]:
    """Interpolate every profile to the model levels (see the module docstring).

    Returns flat arrays over (profile, level) pairs that got a value: ``profile``
    (number), ``k`` (level), ``value`` and ``error``.
    """
    z, temp, err, start = rows["depth"], rows["temperature"], rows["error"], rows["start"]
    n, n_prof = len(z), len(start)
    end = np.r_[start[1:], n]  # one past each profile's last row
    big = 1e5  # key = profile * big + depth orders rows exactly as the sort above
    key = rows["profile"] * big + np.clip(z, -0.4 * big, 0.4 * big)
    out: dict[str, list[np.ndarray]] = {"profile": [], "k": [], "value": [], "error": []}
    profiles = np.arange(n_prof)
    for k, level in enumerate(depth_levels):
        pos = np.searchsorted(key, profiles * big + level, side="left")  # first row at or below the level
        below, above = pos < end, pos > start
        lo, hi = np.clip(pos - 1, 0, max(n - 1, 0)), np.clip(pos, 0, max(n - 1, 0))
        exact = below & (z[hi] == level)
        inside = below & above & ~exact
        near_top = below & ~above & ~exact & (z[hi] <= bounds[k, 1])  # shallowest value inside the layer
        near_bottom = above & ~below & (z[lo] >= bounds[k, 0])  # deepest value inside the layer
        w = np.where(inside, (level - z[lo]) / np.where(inside, z[hi] - z[lo], 1.0), 0.0)
        w = np.where(exact | near_top, 1.0, w)  # weight of the row at/below the level
        hit = exact | inside | near_top | near_bottom
        idx = np.flatnonzero(hit)
        value = (1 - w[idx]) * temp[lo[idx]] + w[idx] * temp[hi[idx]]
        error = (1 - w[idx]) * err[lo[idx]] + w[idx] * err[hi[idx]]
        for name, arr in (("profile", idx), ("k", np.full(len(idx), k)), ("value", value), ("error", error)):
            out[name].append(arr)
    return {name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in out.items()}


@functools.lru_cache(maxsize=4)
def _static_fields(grid: Grid) -> np.ndarray:
    """(nz * ny * nx, 5) climatology and seasonal harmonics, one row per point, for fast gathers."""
    return np.concatenate([grid.climatology[None], grid.seasonal_harmonics]).reshape(5, -1).T.copy()


def _expected(grid: Grid, hcells: np.ndarray, hweights: np.ndarray, k: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Climatology + seasonal cycle at each observation's own position (level k, day of year).

    Bilinear at the observation's position like the sampling (ocean corners only), not the
    cell-centre value: across a 5 degree cell the mean temperature changes by degrees, which
    would otherwise leak into the anomalies (~0.7 degC rms at the surface on the coarse grid).
    ``hcells, hweights`` (4, n) come from ``engine.grid.horizontal_corners``.
    """
    cells = k * hcells.dtype.type(grid.shape[1] * grid.shape[2]) + hcells
    weights = hweights * grid.ocean.reshape(-1)[cells]
    weights /= weights.sum(axis=0)  # > 0: the nearest cell is ocean at level k
    static = np.einsum("cn,cnh->nh", weights, _static_fields(grid)[cells])  # (n, 5)
    phase = 2.0 * np.pi * doy / 365.0
    basis = np.stack([np.ones_like(phase), np.cos(phase), np.sin(phase), np.cos(2 * phase), np.sin(2 * phase)], axis=1)
    return (basis * static).sum(axis=1)


def _superobs(
    grid: Grid,
    table: pd.DataFrame,
    rows: dict[str, np.ndarray],
    step: np.ndarray,
    doy: np.ndarray,
    n_steps: int,
    repr_error: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Super-observations on (n_steps, nz, ny, nx) from sorted rows; ``step``/``doy`` per profile."""
    nz, ny, nx = grid.shape
    first = rows["row"][rows["start"]]  # each profile's position is its first row's
    lat, lon = table["lat"].to_numpy()[first], table["lon"].to_numpy()[first]
    iy, ix = nearest_cell(grid, lat, lon)
    hcells, hweights = horizontal_corners(grid, lat, lon)  # once per profile, used at every level
    lev = profile_levels(rows, grid.depth, grid.depth_bounds)
    p, k = lev["profile"].astype("i8"), lev["k"].astype("i8")
    keep = (step[p] >= 0) & (step[p] < n_steps) & grid.ocean[k, iy[p], ix[p]]
    p, k, value, error = p[keep], k[keep], lev["value"][keep], lev["error"][keep]
    y, x = iy[p], ix[p]
    anomaly = value - _expected(grid, hcells[:, p], hweights[:, p], k, doy[p])
    cell, inverse = np.unique(((step[p] * nz + k) * ny + y) * nx + x, return_inverse=True)
    weight = 1.0 / np.maximum(error, MIN_ERROR) ** 2
    sum_w = np.bincount(inverse, weight, len(cell))
    size = n_steps * nz * ny * nx
    out = {name: np.zeros(size, "f4") for name in VARIABLES}
    out["obs_anomaly"][cell] = np.bincount(inverse, weight * anomaly, len(cell)) / sum_w
    out["obs_count"][cell] = np.bincount(inverse, minlength=len(cell))
    out["obs_mask"][cell] = 1.0
    shared = 0.0 if repr_error is None else repr_error.reshape(-1)[cell % (nz * ny * nx)]
    out["obs_error"][cell] = superobs_error(sum_w, shared)
    return {name: arr.reshape(n_steps, nz, ny, nx) for name, arr in out.items()}


def grid_profiles(
    table: pd.DataFrame,
    grid: Grid,
    start_year: int,
    steps_per_year: int,
    first_step: int = 0,
    n_steps: int | None = None,
    calendar: str | None = None,
    repr_error: np.ndarray | None = None,
) -> xr.Dataset:
    """Grid a profile table into per-step super-observations.

    Parameters
    ----------
    table : DataFrame
        Profile table (``engine.observe.profiles``); only qc == 0 rows with finite values are used.
        ``time`` may be datetime64 (standard calendar) or cftime noleap (control runs).
    start_year, steps_per_year : int
        Step 0 is the first step of January ``start_year``.
    first_step, n_steps : int
        The steps gridded (default: through the last observed step); rows outside are ignored.
    calendar : {"standard", "noleap"}, optional
        Of the output time axis; by default that of the table's times.
    repr_error : ndarray (nz, ny, nx), optional
        Representativeness error std per cell (degC), added to every super-observation's error.

    Returns
    -------
    xr.Dataset
        ``obs_anomaly, obs_mask, obs_count, obs_error`` (time, depth, lat, lon) float32.
    """
    rows = _sorted_profiles(table)
    first = rows["row"][rows["start"]]
    step = table_steps(table["time"].to_numpy()[first], start_year, steps_per_year) - first_step
    if n_steps is None:
        n_steps = int(step.max()) + 1 if len(step) else 0
    doy_table = step_day_of_year(steps_per_year, steps_per_year)
    doy = doy_table[(step + first_step) % steps_per_year]
    fields = _superobs(grid, table, rows, step, doy, n_steps, repr_error)
    if calendar is None:
        calendar = "noleap" if table["time"].dtype == object else "standard"
    time = step_times(start_year, n_steps, steps_per_year, calendar, first_step)
    coords = {"time": ("time", time), **grid.coords()}
    dims = ("time", "depth", "lat", "lon")
    data = {name: xr.DataArray(fields[name], dims=dims, attrs=ATTRS[name]) for name in VARIABLES}
    return xr.Dataset(data, coords=coords, attrs={"title": "DeepDA gridded super-observations"})


def grid_step(
    table: pd.DataFrame, grid: Grid, step_doy: float, repr_error: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Grid one step's observations (all rows, whatever their time) -> (nz, ny, nx) float32 arrays.

    The training path: ``table`` is ``ObservingNetwork.positions(...)`` plus a ``temperature``
    column (qc optional); ``step_doy`` the step's centre day of year for the seasonal cycle.
    Returns a dict with the four ``grid_profiles`` variables.
    """
    rows = _sorted_profiles(table)
    n_prof = len(rows["start"])
    fields = _superobs(grid, table, rows, np.zeros(n_prof, "i8"), np.full(n_prof, float(step_doy)), 1, repr_error)
    return {name: arr[0] for name, arr in fields.items()}


@dataclass
class ObsStep:
    """One step's super-observations, anomalies in degC, each (depth, lat, lon).

    ``anomaly`` may also be (members, depth, lat, lon) once perturbed per member.
    """

    anomaly: np.ndarray
    mask: np.ndarray  # 1 where observed
    error: np.ndarray  # super-observation error std (degC), 0 where unobserved
    step: int  # index in the period
    day_of_year: float
    original: np.ndarray | None = None  # (depth, lat, lon) the observations before perturbation

    def perturbed(self, members: int, rng: np.random.Generator) -> ObsStep:
        """Per-member observations with N(0, error) noise (member 0 unperturbed)."""
        noise = rng.standard_normal((members,) + self.mask.shape).astype("f4") * self.error
        noise[0] = 0.0
        values = (self.anomaly[None] + noise) * self.mask
        return ObsStep(values.astype("f4"), self.mask, self.error, self.step, self.day_of_year, self.anomaly)

    def unperturbed(self) -> np.ndarray:
        """The observations as observed, (depth, lat, lon), whether or not perturbed per member."""
        return self.anomaly if self.original is None else self.original


def _chunk_bounds(first_step: int, n_steps: int, chunk: int) -> list[tuple[int, int]]:
    """[c0, c1) step ranges of ``chunk`` steps covering first_step .. first_step + n_steps."""
    end = first_step + n_steps
    return [(c0, min(c0 + chunk, end)) for c0 in range(first_step, end, chunk)]


def _grid_chunk(
    rows: pd.DataFrame,
    grid: Grid,
    start_year: int,
    steps_per_year: int,
    c0: int,
    c1: int,
    repr_error: np.ndarray | None,
) -> Iterator[ObsStep]:
    """The super-observation steps c0 .. c1 - 1 of one chunk's profile rows."""
    fields = grid_profiles(rows, grid, start_year, steps_per_year, c0, c1 - c0, repr_error=repr_error)
    doy = step_day_of_year(c1 - c0, steps_per_year, c0)
    for t in range(c1 - c0):
        mask = fields["obs_mask"].values[t]
        yield ObsStep(
            np.nan_to_num(fields["obs_anomaly"].values[t]) * mask,
            mask,
            np.nan_to_num(fields["obs_error"].values[t]) * mask,
            c0 + t,
            float(doy[t]),
        )


def obs_steps(
    table: pd.DataFrame,
    grid: Grid,
    start_year: int,
    steps_per_year: int,
    first_step: int,
    n_steps: int,
    chunk: int = 73,
    repr_error: np.ndarray | None = None,
) -> Iterator[ObsStep]:
    """Grid an in-memory profile table one chunk (a year of pentads) at a time, yielding each step
    (``repr_error`` as in :func:`grid_profiles`)."""
    steps = table_steps(table["time"].to_numpy(), start_year, steps_per_year) if len(table) else np.zeros(0, int)
    if np.any(np.diff(steps) < 0):  # sort once (stable: a profile's rows share a time and stay together)
        order = np.argsort(steps, kind="stable")
        table, steps = table.iloc[order], steps[order]
    for c0, c1 in _chunk_bounds(first_step, n_steps, chunk):
        rows = table.iloc[np.searchsorted(steps, c0) : np.searchsorted(steps, c1)]
        yield from _grid_chunk(rows, grid, start_year, steps_per_year, c0, c1, repr_error)


def obs_steps_from_file(
    obs_path: str | Path,
    grid: Grid,
    start_year: int,
    steps_per_year: int,
    first_step: int,
    n_steps: int,
    chunk: int = 73,
    withheld: Callable[[pd.DataFrame], np.ndarray] | None = None,
    repr_error: np.ndarray | None = None,
) -> Iterator[ObsStep]:
    """Like :func:`obs_steps` for an observation file, read and QC'd one chunk at a time
    (:func:`engine.io.read_observation_groups`): a 40-year OSSE file never sits in memory whole.
    Rows where ``withheld(table)`` is True are left out (cross-validation)."""
    bounds = _chunk_bounds(first_step, n_steps, chunk)

    def chunk_of(times: np.ndarray) -> np.ndarray:
        return (table_steps(times, start_year, steps_per_year) - first_step) // chunk

    tables = read_observation_groups(obs_path, chunk_of, range(len(bounds)), grid=grid)
    for (c0, c1), rows in zip(bounds, tables, strict=True):
        rows = rows[~withheld(rows)] if withheld is not None else rows
        yield from _grid_chunk(rows, grid, start_year, steps_per_year, c0, c1, repr_error)


def observation_levels(
    table: pd.DataFrame,
    grid: Grid,
    start_year: int,
    steps_per_year: int,
    first_step: int,
    n_steps: int,
    repr_error: np.ndarray | None = None,
) -> pd.DataFrame:
    """Every good profile interpolated to the model levels, one row per (profile, level).

    The same values a super-observation averages (:func:`grid_profiles`), kept apart: what
    observation-space validation compares an analysis with, profile by profile. Columns:
    ``step`` (from January of ``start_year``), ``k``, ``iy``, ``ix`` (the cell), ``anomaly`` and ``error``
    (degC), ``platform``, ``profile_id``, ``lat``, ``lon``. Levels in land cells and steps
    outside ``first_step .. first_step + n_steps`` are left out. ``error`` is the
    measurement's own, with ``repr_error`` of its cell (if given) added in quadrature.
    """
    rows = _sorted_profiles(table)
    first = rows["row"][rows["start"]]
    step = table_steps(table["time"].to_numpy()[first], start_year, steps_per_year) - first_step
    doy = step_day_of_year(steps_per_year, steps_per_year)[(step + first_step) % steps_per_year]
    lat, lon = table["lat"].to_numpy()[first], table["lon"].to_numpy()[first]
    iy, ix = nearest_cell(grid, lat, lon)
    hcells, hweights = horizontal_corners(grid, lat, lon)
    lev = profile_levels(rows, grid.depth, grid.depth_bounds)
    p, k = lev["profile"].astype("i8"), lev["k"].astype("i8")
    keep = (step[p] >= 0) & (step[p] < n_steps) & grid.ocean[k, iy[p], ix[p]]
    p, k = p[keep], k[keep]
    anomaly = lev["value"][keep] - _expected(grid, hcells[:, p], hweights[:, p], k, doy[p])
    platform = table["platform"].to_numpy()[first] if "platform" in table else np.full(len(first), "unknown")
    return pd.DataFrame(
        {
            "step": step[p] + first_step,
            "k": k,
            "iy": iy[p],
            "ix": ix[p],
            "anomaly": anomaly,
            "error": np.hypot(lev["error"][keep], 0.0 if repr_error is None else repr_error[k, iy[p], ix[p]]),
            "platform": platform[p],
            "profile_id": table["profile_id"].to_numpy()[first][p],
            "lat": lat[p],
            "lon": lon[p],
        }
    )
