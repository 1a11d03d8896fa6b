"""First-order conservative weights from a curvilinear grid to a preset grid, by cdo ``gencon``.

cdo reads the native grid from a one-field netCDF file (2-D lat/lon with their corners) and
the target from a grid description; its SCRIP weights file comes back as plain arrays,
which :func:`engine.world.regrid.weights_matrix` turns into the sparse matrix applied to
every time chunk. Computed once per regridded run (the run itself is then cached).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from engine.errors import InputError
from engine.grid import Grid
from engine.io.nclock import NETCDF_LOCK, open_netcdf


def target_description(grid: Grid) -> str:
    """cdo's grid description of a preset's regular lon-lat grid (cell centres from 0 E)."""
    res = grid.spec.resolution
    return (
        f"gridtype = lonlat\nxsize = {len(grid.lon)}\nysize = {len(grid.lat)}\n"
        f"xfirst = {grid.lon[0]}\nxinc = {res}\nyfirst = {grid.lat[0]}\nyinc = {res}\n"
    )


def _source_file(lat: np.ndarray, lon: np.ndarray, corner_lat: np.ndarray, corner_lon: np.ndarray, path: Path) -> None:
    ds = xr.Dataset(
        {
            "v": (("y", "x"), np.ones(lat.shape, "f4"), {"coordinates": "lat lon"}),
            "lat_bnds": (("y", "x", "nv"), corner_lat),
            "lon_bnds": (("y", "x", "nv"), corner_lon),
        },
        coords={
            "lat": (("y", "x"), lat, {"units": "degrees_north", "standard_name": "latitude", "bounds": "lat_bnds"}),
            "lon": (("y", "x"), lon, {"units": "degrees_east", "standard_name": "longitude", "bounds": "lon_bnds"}),
        },
    )
    with NETCDF_LOCK:
        ds.to_netcdf(path)


def gencon_weights(
    lat: np.ndarray, lon: np.ndarray, corner_lat: np.ndarray, corner_lon: np.ndarray, grid: Grid
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source cells, destination cells, weights), 0-based flat indices, from ``cdo gencon``."""
    exe = shutil.which("cdo")
    if exe is None:
        raise InputError("curvilinear grids are regridded by cdo, which is not installed; apt-get install cdo")
    with tempfile.TemporaryDirectory(prefix="deepda-cdo-") as tmp:
        folder = Path(tmp)
        _source_file(lat, lon, corner_lat, corner_lon, folder / "source.nc")
        (folder / "target.txt").write_text(target_description(grid))
        command = [exe, "-s", f"gencon,{folder / 'target.txt'}", str(folder / "source.nc"), str(folder / "w.nc")]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise InputError(f"cdo could not compute remapping weights for the native grid ({last}); check its corners")
        with open_netcdf(folder / "w.nc") as w:
            src = w["src_address"].values.astype("i8") - 1
            dst = w["dst_address"].values.astype("i8") - 1
            weights = w["remap_matrix"].values[:, 0].astype("f8")
    return src, dst, weights
