"""Gridded CF-1.8 netCDF fields (world and analysis files): written a chunk at a time, opened lazily."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from engine.errors import InputError, file_error
from engine.io.core import atomic_path, history_line
from engine.io.integrity import check_complete
from engine.io.nclock import NETCDF_LOCK, locked, open_netcdf

THETAO_ATTRS = {
    "standard_name": "sea_water_potential_temperature",
    "long_name": "sea water potential temperature",
    "units": "degC",
}
CHUNK_STEPS = 12  # a chunk's time block: two months of pentads, a year of months
CHUNK_TILE = (45, 90)  # at most 45 x 90 cells: a 1 degree map is 16 tiles


def field_chunks(n_time: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Chunks of a (time, depth, lat, lon) variable: a time block x one level x a tile, so
    that a map and a decades-long point series both read a few MB, whatever the period."""
    ny, nx = shape[-2:]
    tile = [math.ceil(n / math.ceil(n / most)) for n, most in zip((ny, nx), CHUNK_TILE, strict=True)]
    return max(1, min(CHUNK_STEPS, n_time)), 1, tile[0], tile[1]


def _encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        if var.dtype.kind == "f":
            enc[name] = {"zlib": True, "complevel": 1, "shuffle": True, "_FillValue": np.float32(1e20), "dtype": "f4"}
            if var.dims == ("time", "depth", "lat", "lon"):
                enc[name]["chunksizes"] = field_chunks(CHUNK_STEPS, var.shape)
    for name in ds.coords:  # CF 2.5.1: a coordinate variable has no missing values, so no _FillValue
        enc[str(name)] = {"_FillValue": None}
    if "time" in ds.coords:
        enc["time"] = {"dtype": "f8", "_FillValue": None}
        if isinstance(ds.time.values[0], np.datetime64):
            enc["time"]["units"] = "days since 1950-01-01"
            enc["time"]["calendar"] = "standard"
        else:
            enc["time"]["units"] = "days since 0001-01-01"
            enc["time"]["calendar"] = "noleap"
    return enc


def write_fields_incremental(
    path: str | Path,
    template: xr.Dataset,
    chunks: Iterator[xr.Dataset],
    n_steps: int,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write a (time, depth, lat, lon) Dataset chunk by chunk along time.

    ``template`` holds the static variables and attributes (no time dimension);
    ``chunks`` yields Datasets with a ``time`` dimension. The file is built under a
    temporary name and renamed when complete, so an interrupted or failed write leaves
    nothing at ``path``. Memory stays at one chunk.
    """
    import netCDF4

    file = Path(path)
    with atomic_path(file) as tmp:
        written = 0
        nc = None
        try:
            for chunk in chunks:
                if nc is None:
                    first = xr.merge([template, chunk], combine_attrs="override").load()
                    with NETCDF_LOCK:
                        first.to_netcdf(tmp, unlimited_dims=["time"], encoding=_encoding(first), engine="netcdf4")
                        nc = netCDF4.Dataset(tmp, "a")
                else:
                    _append(nc, chunk.load(), written)
                written += chunk.sizes["time"]
                if progress:
                    progress(chunk.sizes["time"])
        finally:
            if nc is not None:
                with NETCDF_LOCK:
                    nc.close()
        if written != n_steps:
            raise RuntimeError(f"wrote {written} of {n_steps} steps")


@locked
def _append(nc: Any, chunk: xr.Dataset, start: int) -> None:
    import netCDF4

    tvar = nc.variables["time"]
    values = chunk["time"].values
    if isinstance(values[0], np.datetime64):
        values = values.astype("datetime64[us]").astype(object)
    tvar[start : start + len(values)] = netCDF4.date2num(list(values), tvar.units, tvar.calendar)
    for name, var in chunk.data_vars.items():
        if "time" in var.dims:
            nc.variables[name][start : start + len(values)] = var.values


def open_fields(path: str | Path) -> xr.Dataset:
    """Open a gridded netCDF (world, analysis) lazily, with one clear error if unreadable."""
    file = Path(path)
    if not file.exists():
        raise InputError(f"{file} does not exist; give the path of a DeepDA netCDF file")
    if file.is_dir():
        raise InputError(f"{file} is a folder; give the path of a DeepDA netCDF file")
    check_complete(file)
    try:
        return open_netcdf(file, use_cftime=None)
    except Exception as err:
        raise InputError(f"{file} is not a readable netCDF file ({type(err).__name__}); check the path") from None


FIELD_DIMS = {"time", "depth", "lat", "lon"}


def check_fields(path: str | Path) -> None:
    """Fail with one line unless ``path`` is a gridded temperature file (``thetao`` or
    ``thetao_anomaly`` on time, depth, lat, lon: a world or an analysis)."""
    file = Path(path)
    with open_fields(file) as ds:
        if any(v in ds and set(ds[v].dims) == FIELD_DIMS for v in ("thetao", "thetao_anomaly")):
            return
        profiles = ds.attrs.get("featureType") == "profile" or "rowSize" in ds.variables
    if profiles:
        raise file_error(file, "is an observation (profile) file, not a gridded field", "give it as the observations")
    raise file_error(file, "holds no thetao on (time, depth, lat, lon)", "give a world or analysis file made by DeepDA")


def write_world(
    world: Any,
    path: str | Path,
    chunk_steps: int = 365,
    progress: Callable[[int], None] | None = None,
    command: str | None = None,
) -> None:
    """Write a model world's run to CF netCDF, ``chunk_steps`` at a time (memory: one chunk).

    ``world`` is anything with ``n_steps``, ``dataset(start, stop)`` and ``grid`` (a ModelWorld).
    """
    template = xr.Dataset({"mask": world.grid.mask()})
    description = world.dataset(0, min(1, world.n_steps)).attrs  # the world's own (title, run, seed, ...)
    title = f"DeepDA model world ({getattr(world, 'run', 'control')} run)"
    template.attrs.update({"title": title, **description, "Conventions": "CF-1.8", "history": history_line(command)})
    chunks = (world.dataset(s, min(s + chunk_steps, world.n_steps)) for s in range(0, world.n_steps, chunk_steps))
    write_fields_incremental(path, template, chunks, world.n_steps, progress)
