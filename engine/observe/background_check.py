"""The background check: flag a measurement far outside what the ocean there does.

As EN4 and ORAS5 do, each good measurement's departure from the background (here the
grid's climatology and seasonal cycle at its position and depth) is compared with the
spread expected of it: the background's own (the climatological anomaly std of the model
world), the representativeness error of its cell and its instrument error, in quadrature.
Beyond ``k`` of those the row is flagged (QC 14), kept and counted, never used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd

from engine.config import Config
from engine.grid import Grid, corner_weights
from engine.observe.network import climatology_at
from engine.observe.profiles import QC_GOOD
from engine.observe.qc import QC_BACKGROUND
from engine.observe.representativeness import representativeness_error


def day_of_year(times: np.ndarray) -> np.ndarray:
    """Fractional day of year (0 = 1 January 00:00) of datetime64 or cftime times."""
    times = np.asarray(times)
    if times.dtype.kind == "M":
        index = pd.DatetimeIndex(times)
        return (index.day_of_year - 1 + (index.hour * 3600 + index.minute * 60 + index.second) / 86400.0).to_numpy("f8")
    return np.array([t.dayofyr - 1 + (t.hour * 3600 + t.minute * 60 + t.second) / 86400.0 for t in times], "f8")


def at_points(field: np.ndarray, grid: Grid, lat: np.ndarray, lon: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """A (nz, ny, nx) field interpolated trilinearly to points, ocean corners only."""
    cells, weights = corner_weights(grid, lat, lon, depth)
    return np.einsum("cn,cn->n", weights, np.asarray(field, "f8").reshape(-1)[cells])


def expected_spread(table: pd.DataFrame, grid: Grid, background_std: np.ndarray, repr_error: np.ndarray) -> np.ndarray:
    """Each row's expected departure std (degC) from the climatology."""
    lat, lon, depth = (table[c].to_numpy("f8") for c in ("lat", "lon", "depth"))
    background = at_points(background_std, grid, lat, lon, depth)
    representativeness = at_points(repr_error, grid, lat, lon, depth)
    instrument = table["obs_error"].to_numpy("f8")
    return np.sqrt(background**2 + representativeness**2 + instrument**2)


def background_check(
    table: pd.DataFrame, grid: Grid, background_std: np.ndarray, repr_error: np.ndarray, k: float
) -> pd.DataFrame:
    """The table with good rows whose |departure| exceeds ``k`` expected spreads flagged QC 14.

    ``background_std`` (nz, ny, nx) is the climatological anomaly std, ``repr_error`` the
    cell representativeness error; ``k = 0`` checks nothing. Rows are never dropped.
    """
    good = table["qc"].to_numpy() == QC_GOOD
    if k <= 0 or not good.any():
        return table
    rows = table[good]
    lat, lon, depth = (rows[c].to_numpy("f8") for c in ("lat", "lon", "depth"))
    departure = rows["temperature"].to_numpy("f8") - climatology_at(grid, lat, lon, depth, day_of_year(rows["time"]))
    failed = np.zeros(len(table), bool)
    failed[np.flatnonzero(good)] = np.abs(departure) > k * expected_spread(rows, grid, background_std, repr_error)
    if not failed.any():
        return table
    qc = np.where(failed, QC_BACKGROUND, table["qc"].to_numpy()).astype(table["qc"].dtype)
    return table.assign(qc=qc)


def climatology_check(grid: Grid, config: Config) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The background check of ``config`` on ``grid``, against the climatology, with the
    model world's anomaly std as the background's spread (``[obs_error] background_k``)."""
    from engine.world.synthetic import ModelWorld  # the std map only: no run is simulated

    background_std = ModelWorld(grid, config.world, run="control", n_steps=1).target_std
    repr_error = representativeness_error(grid, config.obs_error)
    return functools.partial(
        background_check,
        grid=grid,
        background_std=background_std,
        repr_error=repr_error,
        k=config.obs_error.background_k,
    )
