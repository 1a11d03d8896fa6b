"""Reading CMIP6-layout ``thetao`` (one or many files per model), lazily.

:func:`open_thetao` returns one Dataset in DeepDA's conventions whatever the modeller's:
``thetao`` (time, lev, Y, X) in degC as a dask array in chunks of a few time steps, ``lev``
in metres, ``lat``/``lon`` (1-D on dims ``lat``/``lon``, or 2-D on ``y``/``x`` for a
curvilinear native grid) with their bounds where the files have them, a cftime ``time``
and ``step_of_year``. Coordinates are found by cf-xarray (standard names, units, axis
attributes, then its name heuristics), not by a table of names. What cannot be used is one
line naming the file, the problem and the fix (:class:`~engine.errors.InputError`).
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import numpy as np
import xarray as xr

from engine.errors import InputError, file_error
from engine.io.nclock import open_mfnetcdf, open_netcdf

CELSIUS = {"degc", "degree_c", "degrees_c", "deg_c", "c", "celsius", "degree_celsius", "degrees_celsius"}
KELVIN = {"k", "kelvin", "degk", "deg_k", "degree_k", "degrees_k"}
METRES = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0}
CENTIMETRES = {"cm": 0.01, "centimeter": 0.01, "centimeters": 0.01, "centimetre": 0.01, "centimetres": 0.01}
TIME_CHUNK = 6  # steps per dask chunk: a 1 degree, 60-level chunk is ~90 MB
FIX_THETAO = "give CMIP6 ocean potential temperature files (variable thetao, table Omon)"


def expand_paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files from paths, folders (their ``*.nc``) and glob patterns, each checked to exist."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    found: list[Path] = []
    for item in items:
        text = str(Path(item).expanduser())
        if any(c in text for c in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise InputError(f"{item}: no file matches this pattern; check the folder and the pattern")
            found += [Path(m) for m in matches]
        elif Path(text).is_dir():
            inside = sorted(Path(text).glob("*.nc"))
            if not inside:
                raise InputError(f"{item}: the folder holds no .nc file; give the folder of the thetao files")
            found += inside
        elif Path(text).is_file():
            found.append(Path(text))
        else:
            raise InputError(f"{item}: no such file or folder; check the path")
    if not found:
        raise InputError("no thetao files given; give a file, a folder or a pattern such as 'thetao_Omon_*.nc'")
    return list(dict.fromkeys(found))


def _time_coder() -> xr.coders.CFDatetimeCoder:
    return xr.coders.CFDatetimeCoder(use_cftime=True)


def _scan(path: Path) -> np.ndarray:
    """The decoded times of one file, after checking it has thetao on a time axis."""
    try:
        ds = open_netcdf(path, decode_times=_time_coder(), chunks={})
    except (OSError, ValueError) as err:
        raise file_error(
            path, f"cannot be read as netCDF ({type(err).__name__})", "check the file is complete"
        ) from None
    with ds:
        if "thetao" not in ds.data_vars:
            names = ", ".join(map(str, ds.data_vars)) or "none"
            raise file_error(path, f"no thetao variable (variables: {names})", FIX_THETAO)
        time = ds.cf.axes.get("T", []) or [d for d in ds["thetao"].dims if d == "time"]
        if not time:
            raise file_error(path, "thetao has no time axis", "give files of monthly or 5-day means on a time axis")
        return np.asarray(ds[time[0]].values)


def _ordered(paths: list[Path]) -> list[Path]:
    """The files in time order; one line naming two files whose times overlap."""
    spans = sorted(((times[0], times[-1], path) for path in paths for times in [_scan(path)]), key=lambda s: s[0])
    for (_, last, a), (first, _, b) in zip(spans[:-1], spans[1:], strict=True):
        if first <= last:
            raise InputError(
                f"{a.name} and {b.name} overlap in time ({first} is within both); give each period once "
                "(e.g. one ensemble member, one version)"
            )
    return [s[2] for s in spans]


def _units(da: xr.DataArray, table: dict[str, float] | set[str]) -> bool:
    return str(da.attrs.get("units", "")).strip().lower().replace(" ", "_") in table


def thetao_celsius(ds: xr.Dataset, name: str) -> xr.DataArray:
    """thetao in degC (lazily converted from K), or one line naming unknown units."""
    da = ds["thetao"]
    if _units(da, CELSIUS):
        return da.astype("f4")
    if _units(da, KELVIN):
        return (da - 273.15).astype("f4")
    units = da.attrs.get("units")
    problem = "thetao has no units attribute" if units is None else f"thetao units {units!r} are not temperature units"
    raise file_error(name, problem, "DeepDA reads thetao in degC or K; set its units attribute to 'degC' or 'K'")


def _vertical(ds: xr.Dataset, name: str) -> str:
    found = ds.cf.axes.get("Z", []) + ds.cf.coordinates.get("vertical", [])
    found = [n for n in dict.fromkeys(found) if n in ds["thetao"].dims]
    if not found:
        raise file_error(name, "thetao has no depth axis", "give 3-D thetao with a lev coordinate (axis Z, units m)")
    lev = ds[found[0]]
    if "units" not in lev.attrs:
        raise file_error(name, f"{found[0]} has no units attribute", f"set {found[0]}:units to 'm' or 'cm'")
    if not (_units(lev, METRES) or _units(lev, CENTIMETRES)):
        raise file_error(name, f"{found[0]} units {lev.attrs['units']!r} are not a depth", "use 'm' or 'cm'")
    return found[0]


def _horizontal(ds: xr.Dataset, name: str) -> tuple[str, str]:
    coords = ds.cf.coordinates
    if "latitude" not in coords or "longitude" not in coords:
        coords = ds.cf.guess_coord_axis().cf.coordinates
    lat, lon = coords.get("latitude", [None])[0], coords.get("longitude", [None])[0]
    if lat is None or lon is None:
        raise file_error(
            name, "no latitude/longitude coordinates found", "give lat/lon units 'degrees_north'/'degrees_east'"
        )
    return lat, lon


def _bounds(ds: xr.Dataset, coord: str) -> xr.DataArray | None:
    try:
        return ds.cf.get_bounds(coord)
    except KeyError:
        return None


def infer_steps_per_year(times: np.ndarray, calendar: str, name: str) -> int:
    """12 for monthly means, 73 (72 on a 360-day calendar) for 5-day means; one line otherwise."""
    if len(times) < 2:
        raise file_error(name, "holds a single time step", "give a control run of at least a year of means")
    days = np.array([(b - a).total_seconds() / 86400.0 for a, b in zip(times[:-1], times[1:], strict=True)])
    if np.all((days >= 27.5) & (days <= 31.5)):
        return 12
    if np.all((days >= 4.5) & (days <= 6.5)):  # a 6-day pentad holds a leap day
        return 72 if calendar == "360_day" else 73
    gap = int(np.argmax(np.abs(days - np.median(days))))
    raise file_error(
        name,
        f"time steps of {np.median(days):g} days with a jump of {days[gap]:g} days after {times[gap]}",
        "give monthly (Omon) or 5-day means without gaps",
    )


def step_of_year(times: np.ndarray, steps_per_year: int) -> np.ndarray:
    """Index of each time's step within its year (month, or 5-day period)."""
    if steps_per_year == 12:
        return np.array([t.month - 1 for t in times])
    return np.minimum(np.array([(t.dayofyr - 1) // 5 for t in times]), steps_per_year - 1)


def _standard(ds: xr.Dataset, name: str) -> xr.Dataset:
    """Rename to (time, lev, lat, lon) or (time, lev, y, x); lev in m; thetao in degC."""
    zname = _vertical(ds, name)
    lat, lon = _horizontal(ds, name)
    thetao = thetao_celsius(ds, name)
    scale = METRES.get(str(ds[zname].attrs["units"]).lower(), CENTIMETRES.get(str(ds[zname].attrs["units"]).lower()))
    curvilinear = ds[lat].ndim == 2
    ydim, xdim = ds[lat].dims if curvilinear else (ds[lat].dims[0], ds[lon].dims[0])
    ny, nx = ("y", "x") if curvilinear else ("lat", "lon")
    other = [d for d in thetao.dims if d not in ("time", zname, ydim, xdim)]
    if other:
        thetao = thetao.isel({d: 0 for d in other}, drop=True)
    thetao = thetao.transpose("time", zname, ydim, xdim).drop_vars(
        [c for c in thetao.coords if c not in (zname, "time", lat, lon)]
    )
    out = xr.Dataset({"thetao": thetao}).rename({zname: "lev", ydim: ny, xdim: nx})
    out = out.rename({k: v for k, v in ((lat, "lat"), (lon, "lon")) if k in out.variables and k != v})
    out = out.assign_coords(lev=("lev", ds[zname].values.astype("f8") * scale, {"units": "m", "positive": "down"}))
    for coord, target in ((lat, "lat_bnds"), (lon, "lon_bnds")):
        bounds = _bounds(ds, coord)
        if bounds is not None:
            dims = (ny, nx, "vertex") if curvilinear else (ny if coord == lat else nx, "bound")
            out[target] = (dims, bounds.values.astype("f8"))
    out["lon"] = out["lon"] % 360.0
    if not curvilinear:
        out = out.sortby("lon").sortby("lat")
    return out


def model_name(attrs: dict, file: Path) -> str:
    """The model's CMIP6 ``source_id``, else the third field of a CMIP6 file name
    (``thetao_Omon_CESM2_piControl_...``), else the file's stem."""
    parts = file.stem.split("_")
    return str(attrs.get("source_id") or (parts[2] if len(parts) > 3 else file.stem))


def open_thetao(paths: str | Path | Sequence[str | Path], chunk: int = TIME_CHUNK) -> xr.Dataset:
    """One model's ``thetao`` from one or many CMIP6-layout files, lazily (dask).

    Returns a Dataset with ``thetao`` (time, lev, lat, lon) or (time, lev, y, x) in degC,
    float32, NaN where the model has land; ``lev`` in m; ``lat``/``lon`` (and
    ``lat_bnds``/``lon_bnds`` when the files have bounds); ``step_of_year``; attributes
    ``steps_per_year``, ``calendar``, ``source_id``, ``curvilinear`` and ``files``.
    """
    files = _ordered(expand_paths(paths))
    name = files[0] if len(files) == 1 else f"{files[0].name} (and {len(files) - 1} more)"
    try:
        ds = open_mfnetcdf(
            files, combine="nested", concat_dim="time", data_vars="minimal", coords="minimal", compat="override",
            join="override", chunks={"time": chunk}, decode_times=_time_coder(),
        )  # fmt: skip
    except ValueError as err:
        problem = f"the files do not join along time ({str(err).splitlines()[0]})"
        raise file_error(name, problem, "give one model's files, all on one grid and levels") from None
    out = _standard(ds, str(name))
    times = out["time"].values
    calendar = getattr(times[0], "calendar", "standard") if len(times) else "standard"
    spy = infer_steps_per_year(times, calendar, str(name))
    out = out.assign_coords(step_of_year=("time", step_of_year(times, spy)))
    out.attrs = {
        "steps_per_year": spy,
        "calendar": calendar,
        "source_id": model_name(ds.attrs, files[0]),
        "curvilinear": int(out["lat"].ndim == 2),
        "files": [str(f.resolve()) for f in files],
        "lev_bounds": int("lev_bnds" in ds or _bounds(ds, _vertical(ds, str(name))) is not None),
    }
    return out
