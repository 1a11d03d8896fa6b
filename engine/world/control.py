"""Another model's control run as training data: what the trainer's samples use of a ModelWorld.

:class:`ControlRun` wraps a control run regridded to the preset grid
(:func:`engine.io.regrid_control_run`) and gives the samples the interface they use of the
synthetic world (``steps_per_year``, ``n_steps``, ``anomaly``, plus ``temperature`` and
``times``). The seasonal climatology is the run's own, one field per step of the year,
averaged over its whole years; anomalies are the run minus it. Cells the preset calls ocean
but the model has as land get zero anomaly (the climatology), and count in ``land_cells``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from engine.errors import InputError
from engine.grid import Grid


class ControlRun:
    """A regridded control run of whole years, with its own seasonal climatology.

    Parameters
    ----------
    ds : Dataset
        ``thetao`` (time, depth, lat, lon) degC on ``grid`` with ``step_of_year`` and the
        attributes ``steps_per_year``, ``source_id``, ``files``, ``regridding``.
    grid : Grid
        The preset grid the run was regridded to.
    name : str
        The model's name (default the files' ``source_id``).
    """

    run = "control"

    def __init__(self, ds: xr.Dataset, grid: Grid, name: str | None = None) -> None:
        self.ds, self.grid = ds, grid
        self.name = name or str(ds.attrs["source_id"])
        self.steps_per_year = int(ds.attrs["steps_per_year"])
        self.calendar = str(ds.attrs.get("calendar", "noleap"))
        spy, total = self.steps_per_year, ds.sizes["time"]
        first = int(ds["step_of_year"].values[0]) if total else 0
        self._offset = (spy - first) % spy  # a partial first year is left out
        self.n_steps = (total - self._offset) // spy * spy
        if self.n_steps < spy:
            raise InputError(
                f"control run {self.name} has {total} steps, under one whole year of {spy}; give at least a year"
            )
        self.start_year = int(ds["time"].values[self._offset].year)
        self.ocean = grid.ocean & (ds["ocean"].values > 0) if "ocean" in ds else grid.ocean
        self.land_cells = int((grid.ocean & ~self.ocean).sum())
        self.climatology = self._climatology()

    @property
    def years(self) -> int:
        return self.n_steps // self.steps_per_year

    def _raw(self, start: int, stop: int) -> np.ndarray:
        if not 0 <= start <= stop <= self.n_steps:
            raise ValueError(f"steps {start}:{stop} are outside the run (0:{self.n_steps})")
        return np.asarray(self.ds["thetao"][self._offset + start : self._offset + stop].values, dtype="f4")

    def _climatology(self) -> np.ndarray:
        """(steps_per_year, depth, lat, lon) mean of each step of the year, read a year at a time."""
        spy = self.steps_per_year
        total = np.zeros((spy,) + self.grid.shape)
        for year in range(self.years):
            total += np.nan_to_num(self._raw(year * spy, (year + 1) * spy))
        return (total / self.years * self.ocean).astype("f4")

    def anomaly(self, start: int, stop: int) -> np.ndarray:
        """(t, depth, lat, lon) float32 the run minus its climatology, zero where either grid has land."""
        values = self._raw(start, stop) - self.climatology[np.arange(start, stop) % self.steps_per_year]
        return np.where(self.ocean[None], np.nan_to_num(values), 0.0).astype("f4")

    def temperature(self, start: int, stop: int) -> np.ndarray:
        """(t, depth, lat, lon) float32 degC, NaN on land."""
        values = self._raw(start, stop)
        values[:, ~self.ocean] = np.nan
        return values

    def times(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = self.n_steps if stop is None else stop
        return self.ds["time"].values[self._offset + start : self._offset + stop]

    def provenance(self) -> dict[str, Any]:
        """The model, its files and how they were regridded, for the checkpoint."""
        return {
            "model": self.name, "files": list(self.ds.attrs["files"]), "years": self.years,
            "steps_per_year": self.steps_per_year, "calendar": self.calendar,
            "regridding": str(self.ds.attrs.get("regridding", "")), "native_grid": str(self.ds.attrs.get("native_grid", "")),
            "model_land_cells": self.land_cells,
        }  # fmt: skip
