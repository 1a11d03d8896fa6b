"""Profile tables as CF-1.8 discrete-sampling-geometry netCDF (featureType profile)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from engine.config import NetworkSpec
from engine.errors import file_error
from engine.io.core import (
    atomic_path,
    history_line,
)
from engine.io.nclock import NETCDF_LOCK
from engine.io.netcdf_decode import (
    _TIME_FILL,
    _TIME_REFERENCE,
    _cf_integers,
    _decode_time,
    _find_dsg,
    _masked,
    _open_netcdf,
    _strings,
    _time_encoding,
    damaged_guard,
)
from engine.observe.profiles import PLATFORMS, QC_GOOD, as_table

# The CSV files live in engine.io.csvfiles, the EN4 / Argo readers in engine.io.realformats
# and the cheap profile-dimension readers in engine.io.profile_index.


OBS_FORMATS = ("dsg", "deepda", "en4", "argo", "wod", "csv")
# Error standard deviation (degC) for observations whose file carries none: the OSSE values,
# and a cautious 0.5 for instruments we cannot identify.
DEFAULT_OBS_ERROR: dict[str, float] = {**dict(NetworkSpec().errors), "unknown": 0.5}
QC_SOURCE_BAD = 9
_APPEND_CACHE_BYTES = 1 << 20  # four 64k-row chunks of float32

_QC_FLAG_MEANINGS = {
    0: "good",
    1: "missing_value",
    2: "temperature_out_of_range",
    3: "temperature_looks_like_kelvin",
    4: "impossible_position",
    5: "negative_depth",
    6: "deeper_than_sea_floor",
    7: "time_outside_period",
    8: "duplicate",
    9: "flagged_bad_in_source_file",
    10: "non_finite_value",
    11: "deeper_than_deepest_ocean",
    12: "obs_error_not_positive",
    13: "unreadable_value_in_source_file",
    14: "failed_background_check",
}


# Instrument words (INST_REFERENCE, PROJECT_NAME, free text) -> platform; first match wins.
_PLATFORM_PATTERNS = (
    ("argo", r"ARGO|FLOAT|\bPFL\b|APEX|PROVOR|ARVOR|\bSOLO|PALACE|NINJA|NAVIS|DEEP ?ARVOR"),
    ("xbt", r"XBT|\bMBT\b|BATHYTHERMOGRAPH"),
    ("ctd", r"CTD|BOTTLE|\bOSD\b|HYDROCAST|GLIDER|\bGLD\b"),
    ("mooring", r"MOOR|\bMRB\b|\bTAO\b|TRITON|PIRATA|\bRAMA\b"),
    ("sst", r"\bSST\b|SATELLITE"),
    ("unknown", r"UNKNOWN"),
)


def classify_platform(text: str, wmo_type: str | int | None = None) -> str:
    """Map an instrument description and/or a WMO instrument code (table 1770) to a platform.

    Examples: ``"XBT: T7 (SIPPICAN)"`` -> xbt, ``"ARGO PROFILING FLOAT"`` -> argo,
    WMO ``042`` -> xbt, ``830`` -> ctd, ``846`` -> argo, ``820`` (thermistor chain) -> mooring.
    """
    upper = str(text).upper()
    for platform, pattern in _PLATFORM_PATTERNS:
        if re.search(pattern, upper):
            return platform
    try:
        code = int(str(wmo_type).strip())
    except ValueError:
        return "unknown"
    if 1 <= code <= 252 or code in (401, 800):  # XBT probes; mechanical BT
        return "xbt"
    if 700 <= code <= 799 or code in (810, 830):  # XCTD, hydrocast bottles, CTD
        return "ctd"
    if code == 820:  # thermistor chain: the moored arrays
        return "mooring"
    if code == 831 or 840 <= code <= 899:  # profiling floats
        return "argo"
    return "unknown"


def default_obs_error(platform: pd.Series | np.ndarray, override: float | dict[str, float] | None = None) -> np.ndarray:
    """Observation error per row from its platform: :data:`DEFAULT_OBS_ERROR` or ``override``."""
    if override is not None and not isinstance(override, dict):
        return np.full(len(platform), float(override), dtype=np.float32)
    table = {**DEFAULT_OBS_ERROR, **(override or {})}
    names = pd.Series(np.asarray(platform, dtype=object)).fillna("unknown")
    return names.map(lambda p: table.get(p, table["unknown"])).to_numpy(dtype=np.float32)


# --- CF DSG netCDF (featureType profile, contiguous ragged array) -------------------------


def _profile_layout(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Start row and size of each profile, checking that the table fits a ragged array.

    Raises
    ------
    ValueError
        If a profile's rows are not contiguous or its time, position or platform vary.
    """
    ids = table["profile_id"].to_numpy()
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    if len(np.unique(ids[starts])) != len(starts):
        raise ValueError("profile table rows are not contiguous per profile_id; sort it by profile_id (stably) first")
    sizes = np.diff(np.r_[starts, len(ids)])
    first = np.repeat(starts, sizes)
    keys = {
        "time": table["time"].to_numpy().view("i8"),
        "lat": table["lat"].to_numpy(),
        "lon": table["lon"].to_numpy(),
        "platform": table["platform"].cat.codes.to_numpy(),
    }
    for name, values in keys.items():
        same = (values == values[first]) | (pd.isna(values) & pd.isna(values[first]))
        if not same.all():
            bad = ids[np.flatnonzero(~same)[0]]
            raise ValueError(f"profile {bad} has more than one {name}; a profile has one time, position and platform")
    return starts, sizes


_DSG_ATTRS: dict[str, dict[str, Any]] = {
    "profile_id": {"cf_role": "profile_id", "long_name": "profile identifier"},
    "time": {"standard_name": "time", "long_name": "time of the profile", "calendar": "standard", "axis": "T"},
    "lat": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
    "platform": {
        "long_name": "observing platform type",
        "flag_values": np.arange(len(PLATFORMS), dtype="i1"),
        "flag_meanings": " ".join(PLATFORMS),
    },
    "rowSize": {"long_name": "number of observations in this profile", "sample_dimension": "obs"},
    "depth": {
        "standard_name": "depth",
        "long_name": "depth below sea surface",
        "units": "m",
        "positive": "down",
        "axis": "Z",
    },
    "temperature": {
        "standard_name": "sea_water_temperature",
        "long_name": "sea water temperature (in-situ or potential, as in the source)",
        "units": "degC",
        "coordinates": "time lat lon depth",
        "ancillary_variables": "obs_error qc",
    },
    "obs_error": {
        "standard_name": "sea_water_temperature standard_error",
        "long_name": "observation error standard deviation (instrument and representativeness)",
        "units": "degC",
    },
    "qc": {
        "standard_name": "quality_flag",  # the status_flag modifier is deprecated
        "long_name": "DeepDA quality-control reason (0 good; rows are flagged, never dropped)",
        "flag_values": np.array(sorted(_QC_FLAG_MEANINGS), dtype="i1"),
        "flag_meanings": " ".join(_QC_FLAG_MEANINGS[c] for c in sorted(_QC_FLAG_MEANINGS)),
    },
}


def _dsg_dataset(table: pd.DataFrame, starts: np.ndarray, sizes: np.ndarray) -> xr.Dataset:
    """The profile table as CF-1.8 DSG variables (no global attributes)."""
    time, time_units = _time_encoding(table["time"].to_numpy()[starts])
    profile = {
        "profile_id": _cf_integers(table["profile_id"].to_numpy()[starts]),
        "time": time,
        "lat": table["lat"].to_numpy()[starts],
        "lon": table["lon"].to_numpy()[starts],
        "platform": table["platform"].cat.codes.to_numpy()[starts].astype("i1"),
        "rowSize": sizes.astype("i4"),
    }
    obs = {name: table[name].to_numpy() for name in ("depth", "temperature", "obs_error", "qc")}
    variables = {name: ("profile", values, dict(_DSG_ATTRS[name])) for name, values in profile.items()}
    variables.update({name: ("obs", values, dict(_DSG_ATTRS[name])) for name, values in obs.items()})
    ds = xr.Dataset(variables)
    ds["time"].attrs["units"] = time_units
    return ds


def write_profiles(table: pd.DataFrame, path: str | Path, attrs: dict[str, Any] | None = None) -> None:
    """Write a profile table as CF-1.8 discrete-sampling-geometry netCDF (atomically).

    Layout: a ``profile`` dimension (profile_id, time, lat, lon, platform flag, rowSize)
    and an ``obs`` dimension (depth, temperature, obs_error, qc) as a contiguous ragged
    array. Times are whole numbers in the coarsest exact unit and ids whole numbers, both
    stored as float64 (exact below 2**53; CF-1.8 has no int64), so reading gives back the
    same table, dtypes, NaNs and QC-flagged rows included.

    Parameters
    ----------
    table : DataFrame
        A profile table (see :mod:`engine.observe.profiles`); rows of one profile contiguous.
    path : str or Path
        Output file; written under a temporary name and renamed on success.
    attrs : dict, optional
        Extra global attributes (title, source, ...); they override the defaults.

    Raises
    ------
    ValueError
        If the table is not in profile order (see :func:`_profile_layout`).
    InputError
        If ``path`` cannot be written.
    """
    table = as_table(table)
    starts, sizes = _profile_layout(table)
    ds = _dsg_dataset(table, starts, sizes)
    ds.attrs = {
        "Conventions": "CF-1.8",
        "featureType": "profile",
        "title": "DeepDA in-situ temperature profiles",
        "history": history_line(),
        **(attrs or {}),
    }
    encoding: dict[str, dict[str, Any]] = {
        name: {"_FillValue": None} for name in ("profile_id", "platform", "rowSize", "qc")
    }
    encoding["time"] = {"_FillValue": np.nan if ds["time"].dtype.kind == "f" else _TIME_FILL}
    for name in ("depth", "temperature", "obs_error", "qc"):  # the long dimension: compress (losslessly)
        encoding.setdefault(name, {}).update({"zlib": True, "complevel": 1})
    with atomic_path(path) as tmp, NETCDF_LOCK:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)


def write_profiles_incremental(
    path: str | Path, tables: Iterable[pd.DataFrame], attrs: dict[str, Any] | None = None, command: str | None = None
) -> int:
    """Write profile tables chunk by chunk into one CF DSG file; returns the rows written.

    For OSSE runs too long to hold in memory (40 years of Argo is ~60 M rows). Same layout
    and attributes as :func:`write_profiles`, with both dimensions unlimited and times in
    whole seconds since 1950 (OSSE times are whole seconds). Written under a temporary name
    and renamed when complete, so an interrupted run leaves nothing behind.
    """
    import netCDF4

    with atomic_path(path) as tmp:
        with NETCDF_LOCK:
            nc = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            with NETCDF_LOCK:
                _create_dsg(nc, attrs, command)
            n_prof = n_obs = 0
            for chunk in tables:
                table = as_table(chunk)
                starts, sizes = _profile_layout(table)
                ds = _dsg_dataset(table, starts, sizes)
                times = table["time"].to_numpy()[starts]
                with np.errstate(invalid="ignore"):  # a missing time stays missing
                    seconds = (times - np.datetime64(_TIME_REFERENCE, "ns")) // np.timedelta64(1, "s")
                seconds = np.where(np.isnat(times), np.nan, seconds)
                with NETCDF_LOCK:
                    for name in ("profile_id", "lat", "lon", "platform", "rowSize"):
                        nc.variables[name][n_prof : n_prof + len(starts)] = ds[name].values
                    nc.variables["time"][n_prof : n_prof + len(starts)] = seconds.astype("f8")
                    for name in ("depth", "temperature", "obs_error", "qc"):
                        nc.variables[name][n_obs : n_obs + len(table)] = ds[name].values
                n_prof, n_obs = n_prof + len(starts), n_obs + len(table)
        finally:
            with NETCDF_LOCK:
                nc.close()
    return n_obs


def _create_dsg(nc: Any, attrs: dict[str, Any] | None, command: str | None) -> None:
    nc.createDimension("profile", None)
    nc.createDimension("obs", None)
    # float64 ids and times: CF-1.8 has no 64-bit integers; whole numbers below 2**53 are exact
    types = {"profile_id": "f8", "time": "f8", "lat": "f8", "lon": "f8", "platform": "i1", "rowSize": "i4"}
    for name, dtype in types.items():
        fill = np.nan if name == "time" else None
        var = nc.createVariable(name, dtype, ("profile",), fill_value=fill)
        var.setncatts(_DSG_ATTRS[name])
    nc.variables["time"].units = f"seconds since {_TIME_REFERENCE.replace('T', ' ')}"
    for name, dtype in {"depth": "f4", "temperature": "f4", "obs_error": "f4", "qc": "i1"}.items():
        fill = None if name == "qc" else np.float32(np.nan)
        var = nc.createVariable(name, dtype, ("obs",), zlib=True, complevel=1, fill_value=fill, chunksizes=(1 << 16,))
        var.setncatts(_DSG_ATTRS[name])
    for var in nc.variables.values():
        # rows are only appended: a few chunks of cache suffice, where netCDF's default 64 MB per
        # variable kept every chunk written in memory (RSS grew with the rows, up to 640 MB)
        var.set_var_chunk_cache(size=_APPEND_CACHE_BYTES)
    nc.setncatts(
        {
            "Conventions": "CF-1.8",
            "featureType": "profile",
            "title": "DeepDA in-situ temperature profiles",
            "history": history_line(command),
            **(attrs or {}),
        }
    )


def _platform_flags(var: xr.DataArray) -> np.ndarray:
    """Platform names from a CF flag variable (codes) or a string variable."""
    if "flag_meanings" not in var.attrs:
        return np.array([classify_platform(s) for s in _strings(var)], dtype=object)
    meanings = str(var.attrs["flag_meanings"]).split()
    values = np.atleast_1d(var.attrs.get("flag_values", np.arange(len(meanings)))).tolist()
    lookup = dict(zip(values, meanings, strict=True))
    return np.array([lookup.get(int(code)) for code in np.asarray(var.values)], dtype=object)


def read_profiles(path: str | Path, profiles: slice | None = None) -> pd.DataFrame:
    """Read a CF DSG profile file (contiguous ragged array) into a profile table.

    Reads what :func:`write_profiles` writes, exactly; other CF profile files work when
    their variables carry the CF ``standard_name`` / ``cf_role`` / ``sample_dimension``
    attributes. Missing ``obs_error`` takes :data:`DEFAULT_OBS_ERROR`, missing ``qc`` 0.
    ``profiles`` (a slice of profile indices, step 1) reads only those profiles and their
    rows, so a long file can be processed a year at a time.

    Raises
    ------
    InputError
        Missing or unreadable file, or variables missing, in one line with the fix.
    """
    file, ds = _open_netcdf(path)
    with ds, damaged_guard(file):
        roles = {
            "row_size": _find_dsg(ds, "rowSize", "sample_dimension", None),
            "time": _find_dsg(ds, "time", "standard_name", ("time",)),
            "lat": _find_dsg(ds, "lat", "standard_name", ("latitude",)),
            "lon": _find_dsg(ds, "lon", "standard_name", ("longitude",)),
            "depth": _find_dsg(ds, "depth", "standard_name", ("depth",)),
            "temperature": _find_dsg(
                ds, "temperature", "standard_name", ("sea_water_temperature", "sea_water_potential_temperature")
            ),
        }
        missing = [role for role, name in roles.items() if name is None]
        if missing:
            raise file_error(
                file,
                f"is not a DeepDA/CF profile file (no {', '.join(missing)} variable)",
                "give --format en4, argo, wod or csv for other files, or write it with `deepda observe`",
            )
        return _dsg_table(_profile_subset(ds, file, roles["row_size"], roles["depth"], profiles), file, roles)


def _profile_subset(ds: xr.Dataset, file: Path, row_size: str, depth: str, profiles: slice | None) -> xr.Dataset:
    """The (lazy) dataset cut to the profiles in ``profiles`` and their observation rows."""
    sizes = np.asarray(ds[row_size].values).astype(np.int64)
    n_obs = ds.sizes[ds[depth].dims[0]]
    if sizes.sum() != n_obs:
        problem = f"rowSize adds up to {sizes.sum()} but there are {n_obs} observations"
        raise file_error(file, problem, "the file is damaged; write it again")
    if profiles is None:
        return ds
    first, stop, _ = profiles.indices(len(sizes))
    start = int(sizes[:first].sum())
    rows = slice(start, start + int(sizes[first:stop].sum()))
    return ds.isel({ds[row_size].dims[0]: slice(first, stop), ds[depth].dims[0]: rows})


def _dsg_table(ds: xr.Dataset, file: Path, roles: dict[str, Any]) -> pd.DataFrame:
    """Expand the profile variables of an open DSG file to one row per observation."""
    sizes = np.asarray(ds[roles["row_size"]].values).astype(np.int64)
    depth = _masked(ds[roles["depth"]])
    id_name = _find_dsg(ds, "profile_id", "cf_role", ("profile_id",))
    ids = np.asarray(ds[id_name].values).astype(np.int64) if id_name else np.arange(len(sizes))
    platform = _platform_flags(ds["platform"]) if "platform" in ds.variables else np.full(len(sizes), "unknown")
    frame = pd.DataFrame(
        {
            "time": np.repeat(_decode_time(ds[roles["time"]], file), sizes),
            "lat": np.repeat(_masked(ds[roles["lat"]]).astype(np.float64), sizes),
            "lon": np.repeat(_masked(ds[roles["lon"]]).astype(np.float64), sizes),
            "depth": depth,
            "temperature": _masked(ds[roles["temperature"]]),
            "platform": pd.Categorical(np.repeat(platform, sizes), categories=PLATFORMS),
            "profile_id": np.repeat(ids, sizes),
        }
    )
    if "obs_error" in ds.variables:
        frame["obs_error"] = _masked(ds["obs_error"])
    else:
        frame["obs_error"] = default_obs_error(frame["platform"])
    frame["qc"] = np.asarray(ds["qc"].values) if "qc" in ds.variables else QC_GOOD
    return as_table(frame)
