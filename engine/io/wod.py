"""Reader for the World Ocean Database's CF ragged-array netCDF (NOAA NCEI, WOD18 / WOD23).

Layout (one file holds many casts): a ``casts`` dimension with ``wod_unique_cast``,
``lat``, ``lon``, ``time`` (days since 1770), ``dataset`` (the instrument, as text) and,
per measured variable VAR, ``VAR_row_size`` (its count in each cast) and
``VAR_WODprofileflag``; measurement dimensions ``z_obs`` (``z``, depth in m, positive
down, with ``z_WODflag``) and ``Temperature_obs`` (``Temperature`` with
``Temperature_WODflag``). A cast's temperatures go with its first depths, index by index.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from engine.errors import file_error
from engine.io.dsg import QC_SOURCE_BAD, classify_platform, default_obs_error
from engine.io.netcdf_decode import _decode_time, _masked, _open_netcdf, _require, _strings, damaged_guard
from engine.io.realformats import _celsius
from engine.observe.profiles import PLATFORMS, QC_GOOD, as_table

WOD_VARIABLES = ("wod_unique_cast", "lat", "lon", "time", "z", "Temperature", "z_row_size", "Temperature_row_size")
# The WOD dataset (instrument) names, as the ``dataset`` variable spells them and as file
# names abbreviate them (``wod_PFL_2010.nc``, ``ocldb..._XBT.nc``) -> our platforms.
WOD_DATASETS = {
    "profiling float": "argo", "profling float": "argo", "pfl": "argo",
    "xbt": "xbt", "mbt": "xbt", "dbt": "xbt", "microbt": "xbt",
    "ctd": "ctd", "std": "ctd", "xctd": "ctd", "towed ctd": "ctd", "osd": "ctd",
    "bottle/rossette/net": "ctd", "bottle/rosette/net": "ctd", "ocean station data": "ctd",
    "glider": "ctd", "gld": "ctd", "uor": "ctd",
    "moored buoy": "mooring", "mrb": "mooring",
    "drifting buoy": "unknown", "drb": "unknown", "animal mounted": "unknown", "apb": "unknown",
    "bucket": "unknown", "underway/intake": "unknown", "sur": "unknown", "unknown": "unknown",
}  # fmt: skip


def looks_like_wod(names: set[str]) -> bool:
    """Whether a netCDF file's variables are a WOD ragged array (even one missing its row sizes)."""
    return "wod_unique_cast" in names or ({"z", "Temperature", "WODf"} <= names)


def wod_platform(dataset: str, fallback: str = "") -> str:
    """Our platform for a WOD dataset name (``"profiling float"``, ``"PFL"``...), else from
    the ``Platform`` text or the file name's dataset code."""
    name = dataset.strip().lower()
    if name in WOD_DATASETS:
        return WOD_DATASETS[name]
    code = re.search(r"(?:^|[_.])(PFL|XBT|MBT|CTD|OSD|MRB|DRB|GLD|APB|UOR|SUR)(?:[_.]|$)", fallback.upper())
    if code:
        return WOD_DATASETS[code.group(1).lower()]
    return classify_platform(f"{dataset} {fallback}")


def _row_sizes(ds: xr.Dataset, name: str) -> np.ndarray:
    """Counts per cast; a fill (a cast without that variable) is 0."""
    sizes = _masked(ds[name])
    return np.where(np.isfinite(sizes), sizes, 0).astype(np.int64)


def _flags(ds: xr.Dataset, name: str, size: int) -> np.ndarray:
    """Where a WOD flag variable says rejected (non-zero); fills and absent flags pass."""
    if name not in ds.variables:
        return np.zeros(size, dtype=bool)
    flags = _masked(ds[name])
    with np.errstate(invalid="ignore"):
        return np.isfinite(flags) & (flags != 0)


def _row_sizes_checked(ds: xr.Dataset, file: Path) -> tuple[np.ndarray, np.ndarray]:
    """Depths and temperatures per cast (``z_row_size``, ``Temperature_row_size``).

    Raises
    ------
    InputError
        If row sizes do not add up to the measurements, or a cast has more temperatures
        than depths (the file is damaged or not WOD).
    """
    z_rows, t_rows = _row_sizes(ds, "z_row_size"), _row_sizes(ds, "Temperature_row_size")
    for name, rows, var in (("z_row_size", z_rows, "z"), ("Temperature_row_size", t_rows, "Temperature")):
        if rows.sum() != ds[var].size:
            problem = f"{name} adds up to {rows.sum()} but there are {ds[var].size} values of {var}"
            raise file_error(file, problem, "the file is damaged; download it again")
    if (t_rows > z_rows).any():
        cast = int(np.flatnonzero(t_rows > z_rows)[0])
        raise file_error(file, f"cast {cast} has more temperatures than depths", "the file is damaged")
    return z_rows, t_rows


def _some_casts(
    ds: xr.Dataset, z_rows: np.ndarray, t_rows: np.ndarray, casts: slice | None
) -> tuple[xr.Dataset, np.ndarray, np.ndarray]:
    """The dataset (lazily) and row sizes cut to ``casts`` and their measurements."""
    if casts is None:
        return ds, z_rows, t_rows
    first, stop, _ = casts.indices(len(z_rows))
    z0, t0 = int(z_rows[:first].sum()), int(t_rows[:first].sum())
    cut = {
        ds["lat"].dims[0]: slice(first, stop),
        ds["z"].dims[0]: slice(z0, z0 + int(z_rows[first:stop].sum())),
        ds["Temperature"].dims[0]: slice(t0, t0 + int(t_rows[first:stop].sum())),
    }
    return ds.isel(cut), z_rows[first:stop], t_rows[first:stop]


def _temperature_rows(z_rows: np.ndarray, t_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each Temperature value its cast and the index of its depth in ``z``."""
    cast = np.repeat(np.arange(len(t_rows)), t_rows)
    level = np.arange(len(cast)) - np.repeat(np.cumsum(t_rows) - t_rows, t_rows)
    return cast, (np.cumsum(z_rows) - z_rows)[cast] + level


def cast_chunks(path: str | Path, rows: int) -> list[slice | None]:
    """Slices of the casts of a WOD file holding about ``rows`` temperatures each (at least
    one cast), so that a year of a WOD dataset is read a part at a time; ``[None]`` (the
    whole file) when it has no row sizes, for :func:`read_wod` to say so."""
    file, ds = _open_netcdf(path)
    with ds:
        if "Temperature_row_size" not in ds.variables:
            return [None]
        ends = np.cumsum(_row_sizes(ds, "Temperature_row_size"))
    cuts = np.searchsorted(ends, np.arange(rows, int(ends[-1]) if len(ends) else 0, rows), side="left") + 1
    bounds = np.unique(np.r_[0, cuts, len(ends)])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _platforms(ds: xr.Dataset, file: Path, n_casts: int) -> np.ndarray:
    datasets = _strings(ds["dataset"]) if "dataset" in ds.variables else np.full(n_casts, "")
    platforms = _strings(ds["Platform"]) if "Platform" in ds.variables else np.full(n_casts, "")
    lookup = {(d, p): wod_platform(d, f"{p} {file.name}") for d, p in set(zip(datasets, platforms, strict=True))}
    return np.array([lookup[(d, p)] for d, p in zip(datasets, platforms, strict=True)], dtype=object)


def read_wod(
    path: str | Path, obs_error: float | dict[str, float] | None = None, casts: slice | None = None
) -> pd.DataFrame:
    """Read a World Ocean Database ragged-array netCDF file into a profile table.

    One row per temperature value, at the depth of the same index in its cast. Levels
    with a non-zero ``Temperature_WODflag`` or ``z_WODflag``, and casts with a non-zero
    ``Temperature_WODprofileflag``, get QC code 9 (flagged bad in the source file), as
    Argo's flags 3 and 4 do. The platform comes from ``dataset`` (profiling float ->
    argo, XBT/MBT -> xbt, CTD and bottles -> ctd, moored buoy -> mooring); profile ids are
    ``wod_unique_cast``. Casts without temperature give no rows. ``casts`` reads only those
    (a slice, e.g. from :func:`cast_chunks`).

    Raises
    ------
    InputError
        Missing or unreadable file, variables (such as the row sizes) missing, or row
        sizes that do not add up, in one line with the fix.
    """
    file, whole = _open_netcdf(path)
    with whole, damaged_guard(file):
        _require(whole, file, "a WOD ragged-array", WOD_VARIABLES)
        ds, z_rows, t_rows = _some_casts(whole, *_row_sizes_checked(whole, file), casts)
        cast, z_index = _temperature_rows(z_rows, t_rows)
        n_casts = ds["lat"].size
        bad_cast = _flags(ds, "Temperature_WODprofileflag", n_casts)
        bad = (
            bad_cast[cast]
            | _flags(ds, "Temperature_WODflag", len(cast))
            | _flags(ds, "z_WODflag", ds["z"].size)[z_index]
        )
        temperature = _celsius(_masked(ds["Temperature"]), ds["Temperature"])
        platform = _platforms(ds, file, n_casts)[cast]
        frame = pd.DataFrame(
            {
                "time": _decode_time(ds["time"], file)[cast],
                "lat": _masked(ds["lat"]).astype(np.float64)[cast],
                "lon": _masked(ds["lon"]).astype(np.float64)[cast],
                "depth": _masked(ds["z"]).astype(np.float32)[z_index],
                "temperature": temperature,
                "platform": pd.Categorical(platform, categories=PLATFORMS),
                "obs_error": default_obs_error(platform, obs_error),
                "profile_id": np.asarray(ds["wod_unique_cast"].values).astype(np.int64)[cast],
                "qc": np.where(bad, QC_SOURCE_BAD, QC_GOOD).astype(np.int8),
            }
        )
    return as_table(frame)
