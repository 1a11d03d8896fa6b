"""Climatology, anomalies and the scaling the network sees (stored inside checkpoints).

The network works on temperature anomalies (absolute minus climatology-with-seasonal-
cycle) divided by a per-level scale, so that the thermocline's 1-2 degC and the abyss's
0.1 degC both reach order one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from engine.grid import Grid, step_day_of_year, time_to_step


def climatology(grid: Grid, day_of_year: np.ndarray) -> np.ndarray:
    """Climatological temperature (annual mean + seasonal cycle), (time, depth, lat, lon)."""
    return grid.climatology[None] + grid.seasonal_anomaly(day_of_year)


def climatology_at_times(
    grid: Grid, times: np.ndarray, steps_per_year: int, isel: dict[str, Any] | None = None
) -> xr.DataArray:
    """Climatology + seasonal cycle at ``times`` (standard calendar) as a labelled array.

    ``isel`` cuts (depth, lat, lon) before the seasonal cycle is expanded over time, so a
    profile or a map at one level costs only what it shows.
    """
    coords = grid.coords()
    clim = xr.DataArray(grid.climatology, dims=("depth", "lat", "lon"), coords=coords)
    harm = xr.DataArray(grid.seasonal_harmonics, dims=("harmonic", "depth", "lat", "lon"), coords=coords)
    spatial = {k: v for k, v in (isel or {}).items() if k in ("depth", "lat", "lon")}
    clim, harm = clim.isel(spatial), harm.isel(spatial)
    year0 = int(pd.DatetimeIndex(times).year.min())
    doy = step_day_of_year(steps_per_year, steps_per_year)[time_to_step(times, year0, steps_per_year) % steps_per_year]
    phase = 2.0 * np.pi * doy / 365.0
    basis = np.stack([np.cos(phase), np.sin(phase), np.cos(2 * phase), np.sin(2 * phase)], axis=1)
    basis_da = xr.DataArray(basis, dims=("time", "harmonic"), coords={"time": times})
    return clim + xr.dot(basis_da, harm, dim="harmonic")


def _seasonal_basis(day_of_year: np.ndarray) -> np.ndarray:
    """(n, 5): the annual mean and the two seasonal harmonics the grid's climatology uses."""
    phase = 2.0 * np.pi * np.atleast_1d(np.asarray(day_of_year, dtype="f8")) / 365.0
    return np.stack([np.ones_like(phase), np.cos(phase), np.sin(phase), np.cos(2 * phase), np.sin(2 * phase)], 1)


def fit_seasonal_offset(offset: np.ndarray, steps_per_year: int) -> np.ndarray:
    """(5, depth, lat, lon) float32 least-squares mean and two harmonics of a climatology's
    departure (steps_per_year, depth, lat, lon) from the grid's: a model's climatology kept
    in a checkpoint at the size of five fields, whatever the step length."""
    basis = _seasonal_basis(step_day_of_year(steps_per_year, steps_per_year))
    coeffs, *_ = np.linalg.lstsq(basis, offset.reshape(steps_per_year, -1).astype("f8"), rcond=None)
    return coeffs.reshape((5, *offset.shape[1:])).astype("f4")


def seasonal_offset(coeffs: np.ndarray, day_of_year: float) -> np.ndarray:
    """(depth, lat, lon) the departure of :func:`fit_seasonal_offset` on ``day_of_year``."""
    return np.tensordot(_seasonal_basis(day_of_year)[0], coeffs, axes=1).astype("f4")


def to_anomaly(temperature: np.ndarray, grid: Grid, day_of_year: np.ndarray) -> np.ndarray:
    """Absolute temperature (degC) -> anomaly against the grid's climatology."""
    return (temperature - climatology(grid, day_of_year)).astype("f4")


def to_absolute(anomaly: np.ndarray, grid: Grid, day_of_year: np.ndarray) -> np.ndarray:
    """Anomaly -> absolute temperature (degC); NaN on land."""
    absolute = anomaly + climatology(grid, day_of_year)
    return np.where(grid.ocean[None], absolute, np.nan).astype("f4")


@dataclass(frozen=True)
class Normalizer:
    """Per-level scale (degC) dividing anomalies before they enter the network."""

    scale: np.ndarray  # (depth,)

    def encode(self, anomaly: np.ndarray) -> np.ndarray:
        """Anomaly in degC -> network units; broadcasts over (..., depth, lat, lon)."""
        return (anomaly / self.scale[:, None, None]).astype("f4")

    def decode(self, values: np.ndarray) -> np.ndarray:
        """Network units -> anomaly in degC."""
        return (values * self.scale[:, None, None]).astype("f4")

    def to_dict(self) -> dict[str, list[float]]:
        return {"scale": [float(s) for s in self.scale]}

    @classmethod
    def from_dict(cls, values: dict[str, list[float]]) -> Normalizer:
        return cls(np.asarray(values["scale"], dtype="f4"))


def fit_normalizer(anomalies: np.ndarray, ocean: np.ndarray, floor: float = 0.05) -> Normalizer:
    """Standard deviation of the anomalies over ocean points at each level.

    Parameters
    ----------
    anomalies : array (time, depth, lat, lon)
    ocean : bool array (depth, lat, lon)
    floor : float
        Smallest scale in degC, so an almost-still level is not blown up.
    """
    scale = np.empty(anomalies.shape[1], dtype="f4")
    for k in range(anomalies.shape[1]):
        values = anomalies[:, k][:, ocean[k]]
        scale[k] = max(float(np.sqrt(np.mean(values.astype("f8") ** 2))), floor)
    return Normalizer(scale)
