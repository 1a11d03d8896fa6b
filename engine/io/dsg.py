"""Profile tables as CF-1.8 discrete-sampling-geometry netCDF (featureType profile)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from engine.config import NetworkSpec
from engine.io.core import (
    InputError,
    atomic_path,
    history_line,
)
from engine.profiles import PLATFORMS, QC_GOOD, as_table, qc_summary

if TYPE_CHECKING:
    pass

# --- profile tables (observations) -------------------------------------------------------
# (DSG netCDF and CSV writers/readers, and the real-format readers, live below.)
# Imports of this section are kept here so that the section reads (and moves) as one block.


OBS_FORMATS = ("dsg", "deepda", "en4", "argo", "csv")
# Error standard deviation (degC) for observations whose file carries none: the OSSE values,
# and a cautious 0.5 for instruments we cannot identify.
DEFAULT_OBS_ERROR: dict[str, float] = {**dict(NetworkSpec().errors), "unknown": 0.5}
SOURCE_BAD_FLAGS = (b"3", b"4")  # Argo / EN4 / IOC flags: 3 probably bad, 4 bad
QC_SOURCE_BAD = 9
LEGACY_FILL = 99999.0  # Argo and EN4 fill value; older files omit the _FillValue attribute

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
}

_TIME_REFERENCE = "1950-01-01T00:00:00"  # Argo's reference; our writer keeps it
_NS = {
    "days": 86_400 * 10**9, "day": 86_400 * 10**9, "d": 86_400 * 10**9,
    "hours": 3_600 * 10**9, "hour": 3_600 * 10**9, "h": 3_600 * 10**9, "hr": 3_600 * 10**9,
    "minutes": 60 * 10**9, "minute": 60 * 10**9, "min": 60 * 10**9,
    "seconds": 10**9, "second": 10**9, "s": 10**9, "sec": 10**9,
    "milliseconds": 10**6, "ms": 10**6, "microseconds": 10**3, "us": 10**3, "nanoseconds": 1, "ns": 1,
}  # fmt: skip
_TIME_FILL = np.int64(-9223372036854775806)  # netCDF's default int64 fill, for NaT


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


def _bad_input(file: Path, problem: str, fix: str) -> InputError:
    """One line: the file, what is wrong with it, and what to do."""
    return InputError(f"{file}: {problem}; {fix}".replace("\n", " "))


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


def _time_encoding(times: np.ndarray) -> tuple[np.ndarray, str]:
    """Integer offsets from 1950 in the coarsest unit that holds every time exactly."""
    ns = times.astype("datetime64[ns]").view("i8")
    valid = ~np.isnat(times)
    offsets = ns[valid] - np.datetime64(_TIME_REFERENCE, "ns").view("i8")
    for unit in ("days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"):
        if np.all(offsets % _NS[unit] == 0):
            break
    values = np.full(len(ns), _TIME_FILL, dtype=np.int64)
    values[valid] = offsets // _NS[unit]
    return values, f"{unit} since {_TIME_REFERENCE.replace('T', ' ')}"


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
        "standard_name": "sea_water_temperature status_flag",
        "long_name": "DeepDA quality-control reason (0 good; rows are flagged, never dropped)",
        "flag_values": np.array(sorted(_QC_FLAG_MEANINGS), dtype="i1"),
        "flag_meanings": " ".join(_QC_FLAG_MEANINGS[c] for c in sorted(_QC_FLAG_MEANINGS)),
    },
}


def _dsg_dataset(table: pd.DataFrame, starts: np.ndarray, sizes: np.ndarray) -> xr.Dataset:
    """The profile table as CF-1.8 DSG variables (no global attributes)."""
    time, time_units = _time_encoding(table["time"].to_numpy()[starts])
    profile = {
        "profile_id": table["profile_id"].to_numpy()[starts],
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
    array. Times are stored as int64 in the coarsest exact unit, so reading gives back the
    same table, dtypes, NaNs and QC-flagged rows included.

    Parameters
    ----------
    table : DataFrame
        A profile table (see :mod:`engine.profiles`); rows of one profile contiguous.
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
    encoding["time"] = {"_FillValue": _TIME_FILL}
    for name in ("depth", "temperature", "obs_error", "qc"):  # the long dimension: compress (losslessly)
        encoding.setdefault(name, {}).update({"zlib": True, "complevel": 1})
    with atomic_path(path) as tmp:
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
        nc = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            _create_dsg(nc, attrs, command)
            n_prof = n_obs = 0
            for chunk in tables:
                table = as_table(chunk)
                starts, sizes = _profile_layout(table)
                ds = _dsg_dataset(table, starts, sizes)
                seconds = (table["time"].to_numpy()[starts] - np.datetime64(_TIME_REFERENCE, "ns")) // np.timedelta64(
                    1, "s"
                )
                for name in ("profile_id", "lat", "lon", "platform", "rowSize"):
                    nc.variables[name][n_prof : n_prof + len(starts)] = ds[name].values
                nc.variables["time"][n_prof : n_prof + len(starts)] = seconds.astype("i8")
                for name in ("depth", "temperature", "obs_error", "qc"):
                    nc.variables[name][n_obs : n_obs + len(table)] = ds[name].values
                n_prof, n_obs = n_prof + len(starts), n_obs + len(table)
        finally:
            nc.close()
    return n_obs


def _create_dsg(nc: Any, attrs: dict[str, Any] | None, command: str | None) -> None:
    nc.createDimension("profile", None)
    nc.createDimension("obs", None)
    types = {"profile_id": "i8", "time": "i8", "lat": "f8", "lon": "f8", "platform": "i1", "rowSize": "i4"}
    for name, dtype in types.items():
        fill = _TIME_FILL if name == "time" else None
        var = nc.createVariable(name, dtype, ("profile",), fill_value=fill)
        var.setncatts(_DSG_ATTRS[name])
    nc.variables["time"].units = f"seconds since {_TIME_REFERENCE.replace('T', ' ')}"
    for name, dtype in {"depth": "f4", "temperature": "f4", "obs_error": "f4", "qc": "i1"}.items():
        fill = None if name == "qc" else np.float32(np.nan)
        var = nc.createVariable(name, dtype, ("obs",), zlib=True, complevel=1, fill_value=fill, chunksizes=(1 << 16,))
        var.setncatts(_DSG_ATTRS[name])
    nc.setncatts(
        {
            "Conventions": "CF-1.8",
            "featureType": "profile",
            "title": "DeepDA in-situ temperature profiles",
            "history": history_line(command),
            **(attrs or {}),
        }
    )


def _open_netcdf(path: str | Path) -> tuple[Path, xr.Dataset]:
    """Open a netCDF file undecoded (we decode times, fills and chars ourselves)."""
    file = Path(path)
    if not file.exists():
        raise _bad_input(file, "file does not exist", "check the path")
    if file.is_dir():
        raise _bad_input(file, "is a folder, not a file", "give the path of an observation file")
    if file.stat().st_size == 0:
        raise _bad_input(file, "file is empty (0 bytes)", "give a complete netCDF file; re-download or re-export it")
    try:
        return file, xr.open_dataset(file, decode_cf=False, engine="netcdf4")
    except Exception as err:  # the netCDF library raises OSError, ValueError, ...
        raise _bad_input(
            file,
            f"not a readable netCDF file ({type(err).__name__})",
            "check the path, or give --format csv if it is a CSV table",
        ) from None


def _require(ds: xr.Dataset, file: Path, kind: str, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise _bad_input(
            file,
            f"lacks variable(s) {', '.join(missing)} needed in {kind} file",
            "check that --format matches the file (dsg, en4, argo or csv)",
        )


def _first_present(ds: xr.Dataset, file: Path, kind: str, names: tuple[str, ...]) -> str:
    """The first of ``names`` in the file (formats name the same quantity differently)."""
    for name in names:
        if name in ds.variables:
            return name
    raise _bad_input(
        file,
        f"has none of the variables {' / '.join(names)} needed in {kind} file",
        "check that --format matches the file (dsg, en4, argo or csv)",
    )


def _masked(var: xr.DataArray, legacy_fill: bool = False) -> np.ndarray:
    """Float values with fill values as NaN; float32 stays float32 (exact round trips)."""
    raw = np.asarray(var.values)
    out = raw.astype(np.float32 if raw.dtype == np.float32 else np.float64)
    for key in ("_FillValue", "missing_value"):
        if key in var.attrs:
            out[np.isin(raw, np.atleast_1d(var.attrs[key]))] = np.nan
    if legacy_fill:
        with np.errstate(invalid="ignore"):
            out[np.abs(out) >= LEGACY_FILL] = np.nan
    if "scale_factor" in var.attrs or "add_offset" in var.attrs:
        out = out * var.attrs.get("scale_factor", 1) + var.attrs.get("add_offset", 0)
    return out


def _decode_time(var: xr.DataArray, file: Path, legacy_fill: bool = False) -> np.ndarray:
    """CF ``<unit> since <date>`` numbers -> datetime64[ns]; exact for integers.

    Float offsets (Argo and EN4 ``JULD`` in days) are rounded to the second: the files
    carry no more precision, and rounding keeps float noise out of the times.
    """
    units = str(var.attrs.get("units", f"days since {_TIME_REFERENCE}"))
    match = re.fullmatch(r"\s*(\w+)\s+since\s+(.+?)\s*(utc|UTC|Z|GMT)?\s*", units)
    step = _NS.get(match.group(1).lower()) if match else None
    try:
        stamp = pd.Timestamp(match.group(2)) if match else None
    except ValueError:
        stamp = None
    if step is None or stamp is None:
        raise _bad_input(file, f"time units {units!r} of {var.name} are not '<unit> since <date>'", "fix the units")
    origin = (stamp.tz_convert(None) if stamp.tzinfo else stamp).as_unit("ns").value
    raw = np.asarray(var.values)
    if raw.dtype.kind in "iu":
        fill = np.isin(raw, np.atleast_1d(var.attrs.get("_FillValue", _TIME_FILL)))
        ns = origin + raw.astype(np.int64) * step
    else:
        values = _masked(var, legacy_fill).astype(np.float64)
        fill = ~np.isfinite(values)
        ns = origin + np.round(np.where(fill, 0.0, values) * (step / 1e9)).astype(np.int64) * 10**9
    return np.where(fill, np.datetime64("NaT", "ns"), ns.view("datetime64[ns]"))


def _strings(var: xr.DataArray) -> np.ndarray:
    """Char arrays (n, strlen) -> array of stripped str."""
    raw = np.asarray(var.values)
    if raw.dtype.kind == "S" and raw.dtype.itemsize == 1 and raw.ndim >= 2:
        raw = np.ascontiguousarray(raw).view(f"S{raw.shape[-1]}")[..., 0]
    if raw.dtype.kind == "S":
        return np.char.strip(np.char.decode(raw, "latin-1"))
    return np.array([str(v).strip() for v in raw.ravel()], dtype=object).reshape(raw.shape)


def _flags_bad(ds: xr.Dataset, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Where a single-character QC flag variable says 'bad' (3 or 4); all False if absent."""
    if name not in ds.variables:
        return np.zeros(shape, dtype=bool)
    raw = np.asarray(ds[name].values)
    if raw.dtype.kind in "iu":  # some writers store flags as numbers
        return np.isin(raw, (3, 4)).reshape(shape)
    return np.isin(raw.astype("S1"), SOURCE_BAD_FLAGS).reshape(shape)


def _platform_flags(var: xr.DataArray) -> np.ndarray:
    """Platform names from a CF flag variable (codes) or a string variable."""
    if "flag_meanings" not in var.attrs:
        return np.array([classify_platform(s) for s in _strings(var)], dtype=object)
    meanings = str(var.attrs["flag_meanings"]).split()
    values = np.atleast_1d(var.attrs.get("flag_values", np.arange(len(meanings)))).tolist()
    lookup = dict(zip(values, meanings, strict=True))
    return np.array([lookup.get(int(code)) for code in np.asarray(var.values)], dtype=object)


def _find_dsg(ds: xr.Dataset, name: str, attr: str, values: tuple[str, ...] | None) -> str | None:
    """Our variable name, else the variable whose ``attr`` is one of ``values`` (any if None)."""
    if name in ds.variables:
        return name
    for key, var in ds.variables.items():
        if attr in var.attrs and (values is None or str(var.attrs[attr]) in values):
            return str(key)
    return None


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
    with ds:
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
            raise _bad_input(
                file,
                f"is not a DeepDA/CF profile file (no {', '.join(missing)} variable)",
                "give --format en4, argo or csv for other files, or write it with `deepda observe`",
            )
        return _dsg_table(_profile_subset(ds, file, roles["row_size"], roles["depth"], profiles), file, roles)


def _profile_subset(ds: xr.Dataset, file: Path, row_size: str, depth: str, profiles: slice | None) -> xr.Dataset:
    """The (lazy) dataset cut to the profiles in ``profiles`` and their observation rows."""
    sizes = np.asarray(ds[row_size].values).astype(np.int64)
    n_obs = ds.sizes[ds[depth].dims[0]]
    if sizes.sum() != n_obs:
        problem = f"rowSize adds up to {sizes.sum()} but there are {n_obs} observations"
        raise _bad_input(file, problem, "the file is damaged; write it again")
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


_HEADER_VARIABLES = ("profile_id", "time", "lat", "lon", "platform", "rowSize")


def _open_deepda_dsg(path: str | Path, names: tuple[str, ...]) -> tuple[Path, xr.Dataset]:
    """Open a DeepDA DSG file undecoded and lazily (only what is indexed later is read).

    Raises
    ------
    InputError
        Missing or unreadable file, or one without the DeepDA variables ``names``.
    """
    file = Path(path)
    if not file.exists():
        raise InputError(f"{file} does not exist; give the path of a profile file")
    try:
        ds = xr.open_dataset(file, decode_cf=False, engine="netcdf4")
    except Exception:  # the netCDF library raises OSError, ValueError, ...
        raise InputError(f"{file} is not a readable netCDF file; give a DeepDA profile file") from None
    missing = [name for name in names if name not in ds.variables]
    if missing:
        ds.close()
        raise InputError(
            f"{file} is not a DeepDA profile (DSG) file: no {', '.join(missing)}; "
            "convert it with 'deepda observe --read'"
        )
    return file, ds


def _header_frame(ds: xr.Dataset, file: Path) -> pd.DataFrame:
    """The profile-dimension variables of an open DeepDA DSG file, decoded as :func:`read_profiles`
    decodes them (same dtypes, NaT and NaN), so headers and full tables agree exactly."""
    return pd.DataFrame(
        {
            "profile_id": np.asarray(ds["profile_id"].values).astype(np.int64),
            "time": _decode_time(ds["time"], file),
            "lat": _masked(ds["lat"]).astype(np.float64),
            "lon": _masked(ds["lon"]).astype(np.float64),
            "platform": pd.Categorical(_platform_flags(ds["platform"]), categories=PLATFORMS),
            "rows": np.asarray(ds["rowSize"].values).astype(np.int64),
        }
    )


def read_profile_headers(path: str | Path) -> pd.DataFrame:
    """One row per profile (profile_id, time, lat, lon, platform, rows) of a DeepDA DSG file,
    reading only the profile dimension: cheap even for 40-year OSSE files."""
    file, ds = _open_deepda_dsg(path, _HEADER_VARIABLES)
    with ds:
        return _header_frame(ds, file)


def _good_per_profile(qc: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Number of rows with QC code 0 in each profile of a contiguous ragged array.

    Parameters
    ----------
    qc : ndarray
        QC code per row, profiles one after the other.
    rows : ndarray
        Rows per profile (``rowSize``); zero for an empty profile.

    Returns
    -------
    ndarray of int64
        One count per profile (0 for an empty one).
    """
    rows = np.asarray(rows, dtype=np.int64)
    ends = np.cumsum(rows)
    # Count the flagged rows (few) per profile rather than summing a per-row indicator:
    # np.add.reduceat over rowSize offsets would cast all rows (60 M in a 40-year OSSE) to
    # int64, ~0.5 GB, and needs special cases for empty profiles. side="right" skips empty
    # profiles, whose end equals the previous one.
    flagged = np.flatnonzero(np.asarray(qc) != QC_GOOD)
    owner = np.searchsorted(ends, flagged, side="right")
    return rows - np.bincount(owner, minlength=len(rows)).astype(np.int64)


def read_profile_summary(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-profile headers with good-row counts, and the QC summary, of a DeepDA DSG file.

    Reads only the profile dimension and the ``qc`` variable (not depth, temperature or
    obs_error): what a map of profile positions, counts per platform and year and a QC
    table need, at a fraction of the time and memory of :func:`read_profiles` on a long
    OSSE file.

    The QC codes are the ones stored in the file. :func:`engine.io.open_observations`
    runs :func:`engine.qc.run_qc` again on the full table, which can only add flags: rows
    the file leaves at 0 may be flagged there (e.g. OSSE temperatures below -2.5 degC, as
    OSSE files are written without QC; and always with a grid or period: the sea-floor and
    time-window checks). This summary is what the file says, not what an assimilation
    reading it with a grid will use.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`write_profiles` or :func:`write_profiles_incremental`.

    Returns
    -------
    (headers, summary)
        ``headers``: :func:`read_profile_headers` plus ``good``, the rows with QC code 0
        in each profile. ``summary``: :func:`engine.profiles.qc_summary` of the stored
        codes, equal to ``qc_summary(read_profiles(path))``.

    Raises
    ------
    InputError
        Missing or unreadable file, not a DeepDA DSG file (no ``qc`` included), or a
        ``rowSize`` that does not add up to the rows, in one line with the fix.
    """
    file, ds = _open_deepda_dsg(path, (*_HEADER_VARIABLES, "qc"))
    with ds:
        headers = _header_frame(ds, file)
        qc = np.asarray(ds["qc"].values).astype(np.int8, copy=False)  # the table's dtype
    if headers["rows"].sum() != len(qc):
        problem = f"rowSize adds up to {headers['rows'].sum()} but there are {len(qc)} observations"
        raise _bad_input(file, problem, "the file is damaged; write it again")
    headers["good"] = _good_per_profile(qc, headers["rows"].to_numpy())
    # qc_summary only looks at the qc column: a one-column frame gives the full table's summary.
    return headers, qc_summary(pd.DataFrame({"qc": qc}, copy=False))
