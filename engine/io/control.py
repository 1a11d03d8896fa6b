"""A model's control run regridded to a preset grid, streamed in time chunks and cached.

:func:`regrid_control_run` reads ``thetao`` lazily (:func:`engine.io.cmip.open_thetao`),
and for each chunk of a few time steps interpolates to the preset's levels and remaps
conservatively to its grid (:mod:`engine.world.regrid`), appending to a netCDF file; memory
is one chunk whatever the run's length. The file is cached under the cache folder, keyed by
the source files (paths, sizes, modification times) and the preset grid, so a second
training run opens it without regridding again (:func:`open_control_run`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cftime
import dask
import netCDF4
import numpy as np
import xarray as xr

from engine.errors import file_error
from engine.grid import Grid
from engine.io.cmip import open_thetao
from engine.io.core import cache_dir, history_line
from engine.io.nclock import NETCDF_LOCK, locked, open_netcdf
from engine.io.safety import clean_stale_temps, temp_sibling
from engine.memory import release_freed
from engine.world import regrid

REGRID_VERSION = 1  # part of the cache key: a change of method regrids again
TIME_UNITS = "days since 0001-01-01 00:00:00"


def cache_key(files: list[str], grid: Grid) -> str:
    """sha256 of the source files' paths, sizes and modification times and the preset grid."""
    stats = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    spec = grid.spec
    text = json.dumps({"files": stats, "grid": [spec.name, spec.resolution, list(spec.depths)], "v": REGRID_VERSION})
    return hashlib.sha256(text.encode()).hexdigest()


def _horizontal(ds: xr.Dataset, grid: Grid) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """The horizontal regridding of one chunk, and its description for provenance."""
    if not ds.attrs["curvilinear"]:
        lat, lon = ds["lat"].values, ds["lon"].values
        method = f"xarray-regrid {version('xarray-regrid')} conservative (cell edges midway between centres)"
        return (lambda v: regrid.regrid_rectilinear(v, lat, lon, grid)), method
    from engine.io.cdo import gencon_weights

    lat, lon = ds["lat"].values.astype("f8"), ds["lon"].values.astype("f8")
    if "lat_bnds" in ds and "lon_bnds" in ds:
        corner_lat, corner_lon, corners = ds["lat_bnds"].values, ds["lon_bnds"].values, "the files' cell corners"
    else:
        corner_lat, corner_lon = regrid.corners_from_centres(lat, lon)
        corners = "corners midway between centres"
    src, dst, weights = gencon_weights(lat, lon, corner_lat, corner_lon, grid)
    matrix = regrid.weights_matrix(src, dst, weights, lat.size, len(grid.lat) * len(grid.lon))
    return (lambda v: regrid.regrid_sparse(v, matrix, grid)), f"cdo gencon weights ({corners}), applied per chunk"


@locked
def _create(path: Path, grid: Grid, attrs: dict[str, Any], chunk: int) -> netCDF4.Dataset:
    nc = netCDF4.Dataset(path, "w")
    nz, ny, nx = grid.shape
    for name, size in (("time", None), ("depth", nz), ("lat", ny), ("lon", nx)):
        nc.createDimension(name, size)
    for name, values, units in (("depth", grid.depth, "m"), ("lat", grid.lat, "degrees_north"),
                                ("lon", grid.lon, "degrees_east")):  # fmt: skip
        var = nc.createVariable(name, "f8", (name,))
        var[:], var.units = values, units
    time = nc.createVariable("time", "f8", ("time",))
    time.units, time.calendar, time.standard_name = TIME_UNITS, attrs["calendar"], "time"
    nc.createVariable("step_of_year", "i2", ("time",))
    var = nc.createVariable(
        "thetao", "f4", ("time", "depth", "lat", "lon"), fill_value=np.float32(1e20), chunksizes=(chunk, nz, ny, nx)
    )
    var.units, var.standard_name = "degC", "sea_water_potential_temperature"
    nc.setncatts({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in attrs.items()})
    return nc


def _write(ds: xr.Dataset, grid: Grid, path: Path, chunk: int, progress: Callable[[int, int], None] | None) -> None:
    horizontal, method = _horizontal(ds, grid)
    levels = regrid.level_weights(ds["lev"].values, grid.depth)
    attrs = {
        "title": f"{ds.attrs['source_id']} thetao regridded to the DeepDA {grid.spec.name} grid",
        "source_id": ds.attrs["source_id"], "files": ds.attrs["files"], "calendar": ds.attrs["calendar"],
        "steps_per_year": int(ds.attrs["steps_per_year"]), "history": history_line(),
        "regridding": f"{method}; linear in depth from {ds.sizes['lev']} levels to {len(grid.depth)}; "
        f"ocean = the {grid.spec.name} grid's mask where the model has a value",
        "native_grid": f"{'curvilinear' if ds.attrs['curvilinear'] else 'rectilinear'} "
        f"{'x'.join(str(ds.sizes[d]) for d in ds['thetao'].dims[2:])}",
    }  # fmt: skip
    with NETCDF_LOCK:
        _create(path, grid, attrs, chunk).close()
    thetao, ocean, total = ds["thetao"], None, ds.sizes["time"]
    # one chunk in memory, no threads on shared cores; one source file open at a time (each holds
    # its chunk cache); the output reopened per chunk and the chunk's memory handed back
    # before the next one (HDF5 and the heap otherwise grow with the run's length)
    with dask.config.set(scheduler="synchronous"), xr.set_options(file_cache_maxsize=1):
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            values = horizontal(regrid.to_levels(np.asarray(thetao[start:stop].values, dtype="f4"), levels))
            if ocean is None:
                ocean = regrid.combined_ocean(values[0], grid)
            values[:, ~ocean] = np.nan
            with NETCDF_LOCK, netCDF4.Dataset(path, "a") as nc:
                nc["thetao"][start:stop] = np.ma.masked_invalid(values)
                nc["time"][start:stop] = cftime.date2num(ds["time"].values[start:stop], TIME_UNITS, attrs["calendar"])
                nc["step_of_year"][start:stop] = ds["step_of_year"].values[start:stop]
            release_freed()
            if progress:
                progress(stop - start, total)
    with NETCDF_LOCK, netCDF4.Dataset(path, "a") as nc:
        mask = nc.createVariable("ocean", "i1", ("depth", "lat", "lon"))
        mask[:], mask.long_name = ocean.astype("i1"), "ocean in both the preset grid and the model"
        nc.model_land_cells = int((grid.ocean & ~ocean).sum())


def regrid_control_run(
    paths: Any,
    grid: Grid,
    cache: str | Path | None = None,
    chunk: int = 6,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, bool]:
    """The cached regridded run of ``paths`` on ``grid`` (regridded now unless cached), and
    whether it came from the cache. ``progress`` gets (steps done now, steps in all)."""
    ds = open_thetao(paths, chunk=chunk)
    folder = Path(cache) if cache else cache_dir() / "control"
    folder.mkdir(parents=True, exist_ok=True)
    key = cache_key(ds.attrs["files"], grid)
    path = folder / f"{ds.attrs['source_id']}_{grid.spec.name}_{key[:16]}.nc"
    if path.exists():
        ds.close()
        return path, True
    clean_stale_temps(path)
    tmp = temp_sibling(path)
    try:
        _write(ds, grid, tmp, chunk, progress)
        os.replace(tmp, path)
    finally:
        ds.close()
        if tmp.exists():
            tmp.unlink()
    return path, False


def open_control_run(path: str | Path) -> xr.Dataset:
    """A regridded control run from the cache, lazily (one time slice read at a time)."""
    try:
        ds = open_netcdf(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    except OSError:
        raise file_error(path, "the cached regridded run cannot be read", "delete it to regrid again") from None
    ds.attrs["files"] = json.loads(ds.attrs["files"])
    return ds
