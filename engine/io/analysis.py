"""Resumable, step-by-step CF-1.8 writer for assimilation output (ANALYSIS.nc).

The run writes into ``OUT.part``. Steps are kept in memory for one chunk's time block
(:data:`~engine.io.fields.CHUNK_STEPS`) and written a block at a time, so that every chunk
is compressed once; the block's data are flushed and only then counted in the
``steps_done`` attribute, with the ensemble state of its last step in ``restart_anomaly``.
Closing (Ctrl-C, a cancelled job, an error) flushes the steps held, so only a hard kill
loses them, and ``--resume`` continues from the last step counted. The finished file is
renamed to ``OUT``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

from engine.errors import InputError
from engine.io.core import check_writable
from engine.io.fields import THETAO_ATTRS, field_chunks
from engine.io.nclock import NETCDF_LOCK, locked
from engine.io.safety import clean_stale_temps, temp_sibling

FILL = np.float32(1e20)
_SAME_RUN = ("method", "running_mean_steps")  # a resumed run must continue as it was started
TIME_UNITS = "days since 1950-01-01 00:00:00"

_VARIABLES = {
    "thetao": {**THETAO_ATTRS, "long_name": "sea water potential temperature (analysis, ensemble mean)"},
    "thetao_anomaly": {
        "long_name": "potential temperature anomaly against the climatology (analysis, ensemble mean)",
        "units": "degC",
    },
    "thetao_spread": {"long_name": "ensemble standard deviation of the potential temperature", "units": "degC"},
}


def partial_path(path: str | Path) -> Path:
    """Where an unfinished run lives until it completes."""
    file = Path(path)
    return file.with_name(file.name + ".part")


def discard_partial(path: str | Path) -> None:
    """Remove an unfinished run's file, for front ends that offer no resume."""
    partial_path(path).unlink(missing_ok=True)


class AnalysisWriter:
    """Write an analysis one step at a time; reopen it to resume.

    Parameters
    ----------
    path : path of the finished file
    grid : the Grid (coordinates and mask)
    times : numpy datetime64 stamps of every step of the run
    members : ensemble size (spread is written when > 1)
    attrs : global attributes (method, source, history, ...)
    resume : reopen ``path.part`` and continue after its last finished step
    save_members : also write every member's anomaly
    """

    @locked
    def __init__(
        self, path: str | Path, grid: Any, times: np.ndarray, members: int, attrs: dict[str, Any], resume: bool = False,
        save_members: bool = False,
    ) -> None:  # fmt: skip
        self.path = check_writable(path)
        self.part = partial_path(path)
        self.members, self.n_steps = members, len(times)
        self._held: dict[str, list[np.ndarray]] = {}  # the steps of the block not yet written
        self._held_from = self._held_steps = 0
        self._restart: tuple[np.ndarray, np.ndarray | None] | None = None
        clean_stale_temps(self.part)
        if resume and not self.part.exists():
            raise InputError(f"nothing to resume: {self.part} does not exist; run without --resume")
        self.nc = self._reopen(grid, times, attrs, save_members) if resume else None
        if self.nc is None:
            self.nc = self._create(grid, times, attrs, save_members)
        self._block = self.nc.variables["thetao"].chunking()[0]  # steps a chunk holds (1 in older files)

    @property
    @locked
    def save_members(self) -> bool:
        """Whether the file keeps every member (a resumed run keeps what it was started with)."""
        return "thetao_anomaly_member" in self.nc.variables

    def _reopen(self, grid: Any, times: np.ndarray, attrs: dict[str, Any], save_members: bool) -> Any:
        """The unfinished run to continue, or None when it has no finished step to keep.

        A run killed while its file was being changed can leave it unreadable, or without
        the step counter: nothing in it can be trusted, so the run starts again.
        """
        try:
            nc = netCDF4.Dataset(self.part, "a")
        except OSError:
            return None
        if "steps_done" not in nc.ncattrs() or int(nc.getncattr("steps_done")) == 0:
            nc.close()
            return None
        self.nc = nc
        self._check_compatible(grid, times, attrs, save_members)
        return nc

    def _create(self, grid: Any, times: np.ndarray, attrs: dict[str, Any], save_members: bool) -> Any:
        """A new ``.part``: built whole under a temporary name, then renamed, so that
        ``.part`` is never a half-made file (a kill at start-up leaves one to resume)."""
        tmp = temp_sibling(self.part)
        try:
            nc = netCDF4.Dataset(tmp, "w", format="NETCDF4")
            self._define(nc, grid, times, attrs, save_members)
            nc.close()
            os.replace(tmp, self.part)
        finally:
            tmp.unlink(missing_ok=True)
        return netCDF4.Dataset(self.part, "a")

    def _define(self, nc: Any, grid: Any, times: np.ndarray, attrs: dict[str, Any], save_members: bool) -> None:
        nz, ny, nx = grid.shape
        nc.createDimension("time", len(times))
        nc.createDimension("member", self.members)
        for name, coord in grid.coords().items():
            nc.createDimension(name, coord.size)
            var = nc.createVariable(name, "f8", (name,))
            var[:] = coord.values
            var.setncatts(coord.attrs)
        tvar = nc.createVariable("time", "f8", ("time",))
        tvar.setncatts({"standard_name": "time", "units": TIME_UNITS, "calendar": "standard", "axis": "T"})
        tvar[:] = netCDF4.date2num(list(times.astype("datetime64[us]").astype(object)), TIME_UNITS, "standard")
        mask = nc.createVariable("mask", "i1", ("depth", "lat", "lon"))
        mask.setncatts(
            {"long_name": "ocean mask", "flag_values": np.array([0, 1], "i1"), "flag_meanings": "land ocean"}
        )
        mask[:] = grid.ocean.astype("i1")
        names = ["thetao", "thetao_anomaly"] + (["thetao_spread"] if self.members > 1 else [])
        chunks = field_chunks(len(times), grid.shape)
        for name in names:
            var = nc.createVariable(
                name, "f4", ("time", "depth", "lat", "lon"), zlib=True, complevel=1, shuffle=True, fill_value=FILL,
                chunksizes=chunks,
            )  # fmt: skip
            var.setncatts(_VARIABLES[name])
        if save_members:
            var = nc.createVariable(
                "thetao_anomaly_member",
                "f4",
                ("member", "time", "depth", "lat", "lon"),
                zlib=True,
                complevel=1,
                shuffle=True,
                fill_value=FILL,
                chunksizes=(1, 1, nz, ny, nx),  # written a step at a time: members would not fit a block
            )
            var.setncatts({"long_name": "potential temperature anomaly of each ensemble member", "units": "degC"})
        restart = nc.createVariable("restart_anomaly", "f4", ("member", "depth", "lat", "lon"), fill_value=FILL)
        restart.setncatts(
            {"long_name": "each member's analysis anomaly at the last finished step (restart state)", "units": "degC"}
        )
        mean = nc.createVariable("restart_mean", "f4", ("depth", "lat", "lon"), fill_value=FILL)
        mean.setncatts({"long_name": "running mean of the analyses at the last finished step (restart state)",
                        "units": "degC"})  # fmt: skip
        nc.setncatts({"Conventions": "CF-1.8", **attrs, "members": self.members, "steps_done": 0})

    def _check_compatible(self, grid: Any, times: np.ndarray, attrs: dict[str, Any], save_members: bool) -> None:
        dims = self.nc.dimensions
        same = (
            dims["time"].size == len(times)
            and dims["member"].size == self.members
            and (self.save_members or not save_members)  # a resumed run goes on as started
            and tuple(dims[d].size for d in ("depth", "lat", "lon")) == grid.shape
            and all(
                str(self.nc.getncattr(k)) == str(attrs[k]) for k in _SAME_RUN if k in attrs and k in self.nc.ncattrs()
            )
        )
        if not same:
            self.nc.close()
            raise InputError(
                f"{self.part} was started with another method, period, grid, ensemble size or member saving; "
                "run without --resume, or resume with the same settings"
            )

    @property
    @locked
    def steps_done(self) -> int:
        """Steps finished: counted in the file, or held to be written with their block."""
        return int(self.nc.getncattr("steps_done")) + self._held_steps

    @locked
    def restart_state(self) -> np.ndarray:
        """Each member's anomaly after the last finished step."""
        if self._restart is not None:
            return self._restart[0]
        return np.asarray(self.nc.variables["restart_anomaly"][:].filled(0.0), dtype="f4")

    @locked
    def restart_mean(self) -> np.ndarray:
        """The running mean of the analyses after the last finished step (zero if none was kept)."""
        if self._restart is not None and self._restart[1] is not None:
            return self._restart[1]
        if "restart_mean" not in self.nc.variables:
            return np.zeros(self.nc.variables["restart_anomaly"].shape[1:], "f4")
        return np.asarray(self.nc.variables["restart_mean"][:].filled(0.0), dtype="f4")

    @locked
    def write(
        self, step: int, fields: dict[str, np.ndarray], state: np.ndarray, mean: np.ndarray | None = None
    ) -> None:
        """Take one step's fields (names as in the file) and the restart state; written and
        counted with the rest of its time block (at the block's end, the run's, or on closing)."""
        if not self._held_steps:
            self._held_from = step
        elif step != self._held_from + self._held_steps:
            raise ValueError(f"step {step} does not follow the steps held")
        for name, values in fields.items():
            if name == "thetao_anomaly_member":
                with NETCDF_LOCK:  # all members of a block would not fit in memory on a large grid
                    self.nc.variables[name][:, step] = np.nan_to_num(values, nan=FILL)
            else:
                self._held.setdefault(name, []).append(np.where(np.isfinite(values), values, FILL).astype("f4"))
        self._restart = (np.array(state, "f4"), None if mean is None else np.array(mean, "f4"))
        self._held_steps += 1
        if (step + 1) % self._block == 0 or step + 1 == self.n_steps:
            self._flush()

    @locked
    def _flush(self) -> None:
        if not self._held_steps or self._restart is None:
            return
        start, count = self._held_from, self._held_steps
        for name, steps in self._held.items():
            self.nc.variables[name][start : start + count] = np.stack(steps)
        state, mean = self._restart
        self.nc.variables["restart_anomaly"][:] = state
        if mean is not None:
            self.nc.variables["restart_mean"][:] = mean
        self.nc.sync()  # data first, then the counter: a crash never counts a half-written step
        self.nc.setncattr("steps_done", start + count)
        self.nc.sync()
        self._held, self._held_steps = {}, 0

    @locked
    def finish(self) -> Path:
        """Write what is held, close and move the finished file into place."""
        self._flush()
        self.nc.close()
        os.replace(self.part, self.path)
        return self.path

    @locked
    def close(self) -> None:
        """Write what is held and close, keeping ``.part`` for a later ``--resume``."""
        if self.nc.isopen():
            self._flush()
            self.nc.close()

    @locked
    def discard(self) -> None:
        """Close and delete ``.part`` (a run that failed before its first step)."""
        self._held, self._held_steps = {}, 0
        self.close()
        self.part.unlink(missing_ok=True)
