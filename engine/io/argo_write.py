"""Argo GDAC profile files written from a profile table, and copies of real ones as new
floats: the folders of many Argo files that ``deepda bench reading`` reads (no download)."""

from __future__ import annotations

import shutil
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd

from engine.io.core import atomic_path
from engine.io.nclock import NETCDF_LOCK
from engine.io.netcdf_decode import LEGACY_FILL

_JULD_UNITS = "days since 1950-01-01 00:00:00 UTC"


def _char_rows(values: list[str], width: int) -> np.ndarray:
    return netCDF4.stringtochar(np.array([v.ljust(width)[:width] for v in values], dtype=f"S{width}"))


def _levels(table: pd.DataFrame, column: str, sizes: np.ndarray, width: int) -> np.ndarray:
    """A column as (N_PROF, N_LEVELS), padded with Argo's 99999 fill."""
    out = np.full((len(sizes), width), LEGACY_FILL, dtype=np.float32)
    prof = np.repeat(np.arange(len(sizes)), sizes)
    level = np.arange(len(prof)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    values = table[column].to_numpy(np.float32)
    out[prof, level] = np.where(np.isfinite(values), values, LEGACY_FILL)
    return out


def write_argo_profiles(table: pd.DataFrame, path: str | Path, wmo: int) -> None:
    """One float's profiles (rows of each profile contiguous) as an Argo core multi-profile
    file (``<WMO>_prof.nc`` layout: N_PROF x N_LEVELS, real-time mode, QC flags 1), with
    pressure from depth by TEOS-10, so that :func:`engine.io.read_argo` reads it back."""
    import gsw

    ids = table["profile_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    sizes = np.diff(np.r_[starts, len(ids)])
    first = table.iloc[starts]
    pres = table.assign(depth=gsw.p_from_z(-table["depth"].to_numpy("f8"), table["lat"].to_numpy("f8")))
    days = (first["time"].to_numpy() - np.datetime64("1950-01-01", "ns")) / np.timedelta64(1, "D")
    with atomic_path(path) as tmp, NETCDF_LOCK, netCDF4.Dataset(tmp, "w", format="NETCDF3_CLASSIC") as nc:
        for dim, size in (("N_PROF", len(starts)), ("N_LEVELS", int(sizes.max())), ("STRING8", 8)):
            nc.createDimension(dim, size)
        for name, values in (("JULD", days), ("LATITUDE", first["lat"]), ("LONGITUDE", first["lon"])):
            var = nc.createVariable(name, "f8", ("N_PROF",), fill_value=999999.0)
            var[:] = np.asarray(values, "f8")
        nc["JULD"].units = _JULD_UNITS
        for name, column in (("PRES", "depth"), ("TEMP", "temperature")):
            var = nc.createVariable(name, "f4", ("N_PROF", "N_LEVELS"), fill_value=np.float32(LEGACY_FILL))
            values = _levels(pres if name == "PRES" else table, column, sizes, int(sizes.max()))
            var[:] = values
            nc.createVariable(f"{name}_QC", "S1", ("N_PROF", "N_LEVELS"))[:] = np.where(
                values < LEGACY_FILL, b"1", b" "
            )
        for name in ("JULD_QC", "POSITION_QC", "DATA_MODE"):
            nc.createVariable(name, "S1", ("N_PROF",))[:] = np.full(len(starts), b"R" if name == "DATA_MODE" else b"1")
        nc.createVariable("PLATFORM_NUMBER", "S1", ("N_PROF", "STRING8"))[:] = _char_rows([str(wmo)] * len(starts), 8)
        nc.createVariable("CYCLE_NUMBER", "i4", ("N_PROF",))[:] = np.arange(1, len(starts) + 1)


def copy_argo_as_new_float(source: str | Path, out: str | Path, wmo: int, days: float) -> None:
    """A real Argo profile file copied with PLATFORM_NUMBER ``wmo`` and its times moved by
    ``days``: new profiles (not duplicates) with the real file's levels, values and flags."""
    with atomic_path(out) as tmp:
        shutil.copyfile(source, tmp)
        Path(tmp).chmod(0o644)
        with NETCDF_LOCK, netCDF4.Dataset(tmp, "a") as nc:
            nc.set_auto_mask(False)
            number = nc["PLATFORM_NUMBER"]
            number[:] = _char_rows([str(wmo)] * number.shape[0], number.shape[1])
            juld = nc["JULD"][:]
            nc["JULD"][:] = np.where(np.abs(juld) < LEGACY_FILL, juld + days, juld)


def write_synthetic_argo_folder(folder: Path, floats: int, seed: int = 0) -> None:
    """``floats`` Argo multi-profile files (36 ten-daily profiles of 100 levels to 2000 dbar in
    the tropical Atlantic, 2010) and, for every fourth float, a single-profile file repeating
    its first cycle, as GDAC downloads do."""
    rng = np.random.default_rng(seed)
    depth = np.geomspace(5.0, 1975.0, 100)
    for f in range(floats):
        wmo = 6_900_000 + f
        lat = np.clip(rng.uniform(-8, 8) + np.cumsum(rng.normal(0, 0.2, 36)), -12, 12)
        lon = rng.uniform(-35, -15) + np.cumsum(rng.normal(0, 0.2, 36))  # at sea, off Brazil and Africa
        times = np.datetime64("2010-01-05T03:00", "ns") + np.arange(36) * np.timedelta64(10, "D")
        table = pd.DataFrame(
            {
                "time": np.repeat(times, len(depth)),
                "lat": np.repeat(lat, len(depth)),
                "lon": np.repeat(lon, len(depth)),
                "depth": np.tile(depth, 36),
                "temperature": np.tile(2 + 26 * np.exp(-depth / 300), 36) + rng.normal(0, 0.2, 36 * len(depth)),
                "profile_id": np.repeat(np.arange(36), len(depth)),
            }
        )
        write_argo_profiles(table, folder / f"{wmo}_prof.nc", wmo)
        if f % 4 == 0:
            write_argo_profiles(table.iloc[: len(depth)], folder / f"R{wmo}_001.nc", wmo)
