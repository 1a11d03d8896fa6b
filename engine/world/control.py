"""Another model's control run as training data: what the trainer's samples use of a ModelWorld.

:class:`ControlRun` wraps a control run regridded to the preset grid
(:func:`engine.io.regrid_control_run`) and gives the samples the interface they use of the
synthetic world (``steps_per_year``, ``n_steps``, ``anomaly``, plus ``temperature`` and
``times``). The seasonal climatology is the run's own, one field per step of the year,
averaged over its whole years; anomalies are the run minus it. Cells the preset calls ocean
but the model has as land get zero anomaly (the climatology), and count in ``land_cells``.
:class:`HistoricalRun` is the same for a model's historical run as an OSSE's truth.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from engine.errors import InputError
from engine.grid import Grid, step_day_of_year, step_times


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


class HistoricalRun(ControlRun):
    """A model's historical run regridded to the preset grid, as an OSSE's truth.

    What the observing network and the scores use of a ModelWorld (``anomaly``,
    ``temperature``, ``dataset``, ``start_year``, ``n_steps``). The anomaly is against the
    grid's climatology, the one the network adds back and the scores remove, so the
    observations are the model's own temperatures. Cells the preset calls ocean but the
    model has as land hold that climatology. Steps are matched to the standard-calendar
    steps of the analyses by their index in the year.
    """

    run = "historical"

    def __init__(self, ds: xr.Dataset, grid: Grid, name: str | None = None, years: tuple[int, int] | None = None):
        super().__init__(ds, grid, name)
        self.calendar = "standard"
        first, last = self.start_year, self.start_year + self.years - 1
        if years is not None:
            if years[0] < first or years[1] > last:
                raise InputError(
                    f"the truth's run of {self.name} covers {first}-{last} in whole years, not {years[0]}-{years[1]}; "
                    f"give --period inside {first}-{last}"
                )
            self._offset += (years[0] - first) * self.steps_per_year
            self.start_year, self.n_steps = years[0], (years[1] - years[0] + 1) * self.steps_per_year

    def describe(self) -> str:
        """One line for the OSSE's summary: the model, its files and how they were regridded."""
        files = len(self.ds.attrs["files"])
        return (
            f"the historical run of {self.name} ({files} file{'s' * (files > 1)}, {self.ds.attrs.get('regridding', '')}; "
            f"{self.land_cells} ocean cells of the grid that are land in the model hold the climatology)"
        )

    def _climatology(self) -> np.ndarray:
        spy = self.steps_per_year
        seasonal = self.grid.climatology[None] + self.grid.seasonal_anomaly(step_day_of_year(spy, spy))
        return np.where(self.grid.ocean[None], seasonal, 0.0).astype("f4")

    def temperature(self, start: int, stop: int) -> np.ndarray:
        values = self.anomaly(start, stop) + self.climatology[np.arange(start, stop) % self.steps_per_year]
        values[:, ~self.grid.ocean] = np.nan
        return values

    def dataset(self, start: int, stop: int) -> xr.Dataset:
        """CF Dataset with ``thetao`` (time, depth, lat, lon) degC for steps start:stop (a world file's)."""
        from engine.world.synthetic import thetao_array

        times = step_times(self.start_year, stop - start, self.steps_per_year, "standard", first_step=start)
        thetao = thetao_array(self.grid, times, self.temperature(start, stop))
        attrs = {
            "source": f"historical run of {self.name}, regridded to the {self.grid.spec.name} grid",
            "run": "historical", "model": self.name, "model_files": json.dumps(list(self.ds.attrs["files"])),
            "regridding": str(self.ds.attrs.get("regridding", "")), "model_land_cells": self.land_cells,
            "grid": self.grid.spec.name, "steps_per_year": self.steps_per_year, "start_year": self.start_year,
            "first_step": start, "run_steps": self.n_steps, "calendar": "standard",
        }  # fmt: skip
        return xr.Dataset({"thetao": thetao}, attrs=attrs)
