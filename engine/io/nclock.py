"""One lock for the netCDF-C library, which is not thread-safe.

netCDF4-python releases the GIL inside its C calls, and xarray locks only its data reads,
not the metadata it decodes while opening a file: two threads opening files at once (the
dashboard's background tasks, a job writing an analysis) crash the process. Every open,
read and write of a netCDF file in ``engine.io`` holds this reentrant lock, and xarray is
handed it for its lazy reads.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import xarray as xr

NETCDF_LOCK = threading.RLock()

F = TypeVar("F", bound=Callable[..., Any])


def open_netcdf(path: str | Path, **kwargs: Any) -> xr.Dataset:
    """``xr.open_dataset`` under the lock, whose lazy reads take the same lock."""
    with NETCDF_LOCK:
        return xr.open_dataset(path, lock=NETCDF_LOCK, **kwargs)


def open_mfnetcdf(paths: Any, **kwargs: Any) -> xr.Dataset:
    """``xr.open_mfdataset`` under the lock (serial opening), lazy reads under it too."""
    with NETCDF_LOCK:
        return xr.open_mfdataset(paths, lock=NETCDF_LOCK, parallel=False, **kwargs)


def locked(function: F) -> F:
    """Run ``function`` holding the lock (methods that use an open ``netCDF4.Dataset``)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with NETCDF_LOCK:
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
