"""Writing the synthetic world in CMIP6 layout: decade files of ``thetao`` in K, ``lev`` in cm.

The folder is written beside its final name and renamed when complete, so an interrupted
run leaves nothing under that name. The layout (grid, levels, land, interpolation) comes
from :mod:`engine.world.cmip_layout`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cftime
import netCDF4
import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.io.core import history_line
from engine.io.nclock import NETCDF_LOCK, locked
from engine.io.safety import temp_sibling
from engine.world.cmip_layout import Layout, decade_files, interpolate, step_bounds

TIME_UNITS = "days since 0001-01-01 00:00:00"
FILL = np.float32(1e20)  # the CMIP6 fill value
CHUNK = 12  # steps interpolated and written at a time


def _horizontal(nc: netCDF4.Dataset, layout: Layout) -> tuple[str, ...]:
    """Horizontal dimensions and coordinates; the dims thetao uses."""
    if layout.lat.ndim == 1:
        for name, values, bnds, units, std in (("lat", layout.lat, layout.lat_bnds, "degrees_north", "latitude"),
                                               ("lon", layout.lon, layout.lon_bnds, "degrees_east", "longitude")):  # fmt: skip
            nc.createDimension(name, len(values))
            var = nc.createVariable(name, "f8", (name,))
            var[:], var.units, var.standard_name, var.bounds = values, units, std, f"{name}_bnds"
            var.axis = "Y" if name == "lat" else "X"
            nc.createVariable(f"{name}_bnds", "f8", (name, "bnds"))[:] = bnds
        return ("lat", "lon")
    nc.createDimension("j", layout.lat.shape[0])
    nc.createDimension("i", layout.lat.shape[1])
    nc.createDimension("vertices", 4)
    for name, values, bnds, units in (("latitude", layout.lat, layout.lat_bnds, "degrees_north"),
                                      ("longitude", layout.lon, layout.lon_bnds, "degrees_east")):  # fmt: skip
        var = nc.createVariable(name, "f8", ("j", "i"))
        var[:], var.units, var.standard_name, var.bounds = values, units, name, f"vertices_{name}"
        nc.createVariable(f"vertices_{name}", "f8", ("j", "i", "vertices"))[:] = bnds
    return ("j", "i")


@locked
def _create(path: Path, layout: Layout, attrs: dict[str, Any]) -> netCDF4.Dataset:
    nc = netCDF4.Dataset(path, "w")
    nc.createDimension("time", None)
    nc.createDimension("bnds", 2)
    nc.createDimension("lev", len(layout.lev))
    time = nc.createVariable("time", "f8", ("time",))
    time.units, time.calendar, time.axis, time.bounds, time.standard_name = (
        TIME_UNITS, attrs["calendar"], "T", "time_bnds", "time"
    )  # fmt: skip
    nc.createVariable("time_bnds", "f8", ("time", "bnds"))
    lev = nc.createVariable("lev", "f8", ("lev",))
    lev[:], lev.units, lev.positive, lev.axis, lev.bounds = layout.lev * 100.0, "centimeters", "down", "Z", "lev_bnds"
    lev.standard_name = "depth"
    nc.createVariable("lev_bnds", "f8", ("lev", "bnds"))[:] = layout.lev_bnds * 100.0
    dims = _horizontal(nc, layout)
    horizontal = tuple(len(nc.dimensions[d]) for d in dims)
    var = nc.createVariable(  # deflated a map at a time, as CMOR writes CMIP6 output
        "thetao", "f4", ("time", "lev") + dims, fill_value=FILL, zlib=True, complevel=1, shuffle=True,
        chunksizes=(1, 1, *horizontal),
    )  # fmt: skip
    var.units, var.standard_name, var.missing_value = "K", "sea_water_potential_temperature", FILL
    if dims == ("j", "i"):
        var.coordinates = "latitude longitude"
    nc.setncatts(attrs)
    return nc


def _as_cftime(times: np.ndarray, calendar: str) -> np.ndarray:
    if isinstance(times[0], cftime.datetime):
        return times
    return np.array(pd.to_datetime(times).to_pydatetime())


def write_cmip_world(
    world: Any, layout: Layout, folder: str | Path, progress: Callable[[int], None] | None = None, command: str = ""
) -> list[Path]:
    """Write ``world`` (a ModelWorld) on ``layout`` as decade files in the new ``folder``."""
    out = Path(folder)
    if out.exists():
        raise InputError(f"{out} exists; choose a new folder for the CMIP-layout files")
    tmp = temp_sibling(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    spy, calendar = world.steps_per_year, world.calendar
    table, experiment = ("Omon" if spy == 12 else "O5day"), ("piControl" if world.run == "control" else "historical")
    label = "gr" if layout.kind == "1deg" else "gn"
    attrs = {
        "Conventions": "CF-1.7 CMIP-6.2", "source_id": "DeepDA-world", "experiment_id": experiment,
        "variable_id": "thetao", "table_id": table, "grid_label": label, "calendar": calendar,
        "frequency": "mon" if spy == 12 else "5day", "variant_label": "r1i1p1f1",
        "grid": f"{layout.kind} grid; fields interpolated from the {world.grid.spec.name} DeepDA world",
        "history": history_line(command), "world_seed": int(world.spec.seed),
    }  # fmt: skip
    names = []
    try:
        for first, stop in decade_files(world.start_year, world.n_steps, spy):
            span = [world.start_year + s // spy for s in (first, stop - 1)]
            months = [1 + s % spy * 12 // spy for s in (first, stop - 1)]
            name = f"thetao_{table}_DeepDA-world_{experiment}_r1i1p1f1_{label}_{span[0]:04d}{months[0]:02d}-{span[1]:04d}{months[1]:02d}.nc"
            nc = _create(tmp / name, layout, attrs)
            try:
                for a in range(first, stop, CHUNK):
                    b = min(a + CHUNK, stop)
                    kelvin = interpolate(world.temperature(a, b), world.grid, layout) + np.float32(273.15)
                    bounds = step_bounds(world.start_year, np.arange(a, b), spy, calendar)
                    centres = _as_cftime(world.times(a, b), calendar)
                    with NETCDF_LOCK:
                        nc["thetao"][a - first : b - first] = np.ma.masked_invalid(kelvin)
                        nc["time_bnds"][a - first : b - first] = cftime.date2num(bounds, TIME_UNITS, calendar)
                        nc["time"][a - first : b - first] = cftime.date2num(centres, TIME_UNITS, calendar)
                    if progress:
                        progress(b - a)
            finally:
                with NETCDF_LOCK:
                    nc.close()
            names.append(name)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out / n for n in names]
