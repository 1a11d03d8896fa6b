"""Low-level decoding of undecoded netCDF variables: opening, fills, CF times, chars and flags
(and the CF-1.8 encoding of whole numbers and times that the decoding reads back exactly)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from engine.errors import file_error
from engine.io.integrity import check_complete
from engine.io.nclock import open_netcdf

SOURCE_BAD_FLAGS = (b"3", b"4")  # Argo / EN4 / IOC flags: 3 probably bad, 4 bad
LEGACY_FILL = 99999.0  # Argo and EN4 fill value; older files omit the _FillValue attribute

_TIME_REFERENCE = "1950-01-01T00:00:00"  # Argo's reference; our writer keeps it
_NS = {
    "days": 86_400 * 10**9, "day": 86_400 * 10**9, "d": 86_400 * 10**9,
    "hours": 3_600 * 10**9, "hour": 3_600 * 10**9, "h": 3_600 * 10**9, "hr": 3_600 * 10**9,
    "minutes": 60 * 10**9, "minute": 60 * 10**9, "min": 60 * 10**9,
    "seconds": 10**9, "second": 10**9, "s": 10**9, "sec": 10**9,
    "milliseconds": 10**6, "ms": 10**6, "microseconds": 10**3, "us": 10**3, "nanoseconds": 1, "ns": 1,
}  # fmt: skip
_TIME_FILL = np.int64(-9223372036854775806)  # netCDF's default int64 fill, for NaT


_EXACT_IN_DOUBLE = 2**53  # integers up to this are exact in float64


def _cf_integers(values: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    """int64 values as float64 (CF-1.8 has no 64-bit integer type) when that is exact,
    NaN where ``missing``; else int64 as they are (only ids or times beyond 2**53)."""
    if not len(values) or np.abs(values[~missing] if missing is not None else values).max() < _EXACT_IN_DOUBLE:
        out = values.astype(np.float64)
        if missing is not None:
            out[missing] = np.nan
        return out
    return values


def _time_encoding(times: np.ndarray) -> tuple[np.ndarray, str]:
    """Whole offsets from 1950 in the coarsest unit that holds every time exactly, as
    float64 (NaN for NaT) unless only int64 holds them exactly (nanoseconds over decades)."""
    ns = times.astype("datetime64[ns]").view("i8")
    valid = ~np.isnat(times)
    offsets = ns[valid] - np.datetime64(_TIME_REFERENCE, "ns").view("i8")
    for unit in ("days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"):
        if np.all(offsets % _NS[unit] == 0):
            break
    values = np.full(len(ns), _TIME_FILL, dtype=np.int64)
    values[valid] = offsets // _NS[unit]
    return _cf_integers(values, ~valid), f"{unit} since {_TIME_REFERENCE.replace('T', ' ')}"


def _open_netcdf(path: str | Path) -> tuple[Path, xr.Dataset]:
    """Open a netCDF file undecoded (we decode times, fills and chars ourselves)."""
    file = Path(path)
    if not file.exists():
        raise file_error(file, "file does not exist", "check the path")
    if file.is_dir():
        raise file_error(file, "is a folder, not a file", "give the path of an observation file")
    if file.stat().st_size == 0:
        raise file_error(file, "file is empty (0 bytes)", "give a complete netCDF file; re-download or re-export it")
    check_complete(file)
    try:
        return file, open_netcdf(file, decode_cf=False, engine="netcdf4")
    except Exception as err:  # the netCDF library raises OSError, ValueError, ...
        raise file_error(
            file,
            f"not a readable netCDF file ({type(err).__name__})",
            "check the path, or give --format csv if it is a CSV table",
        ) from None


@contextlib.contextmanager
def damaged_guard(file: Path) -> Iterator[None]:
    """Turn the netCDF library's read errors (a damaged chunk, a bad checksum) into one line."""
    try:
        yield
    except (RuntimeError, OSError) as err:
        text = str(err)
        if not ("NetCDF" in text or "HDF" in text):
            raise
        problem = f"is damaged: its values cannot be read ({text.splitlines()[0][:80]})"
        raise file_error(file, problem, "download or write it again") from None


def _require(ds: xr.Dataset, file: Path, kind: str, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise file_error(
            file,
            f"lacks variable(s) {', '.join(missing)} needed in {kind} file",
            "check that --format matches the file (dsg, en4, argo, wod or csv)",
        )


def _first_present(ds: xr.Dataset, file: Path, kind: str, names: tuple[str, ...]) -> str:
    """The first of ``names`` in the file (formats name the same quantity differently)."""
    for name in names:
        if name in ds.variables:
            return name
    raise file_error(
        file,
        f"has none of the variables {' / '.join(names)} needed in {kind} file",
        "check that --format matches the file (dsg, en4, argo, wod or csv)",
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

    Float offsets that are all whole numbers (DeepDA's files) are exact; others (Argo
    and EN4 ``JULD`` in days) are rounded to the second: the files carry no more
    precision, and rounding keeps float noise out of the times.
    """
    units = str(var.attrs.get("units", f"days since {_TIME_REFERENCE}"))
    match = re.fullmatch(r"\s*(\w+)\s+since\s+(.+?)\s*(utc|UTC|Z|GMT)?\s*", units)
    step = _NS.get(match.group(1).lower()) if match else None
    try:
        stamp = pd.Timestamp(match.group(2)) if match else None
    except ValueError:
        stamp = None
    if step is None or stamp is None:
        raise file_error(file, f"time units {units!r} of {var.name} are not '<unit> since <date>'", "fix the units")
    origin = (stamp.tz_convert(None) if stamp.tzinfo else stamp).as_unit("ns").value
    raw = np.asarray(var.values)
    if raw.dtype.kind in "iu":
        fill = np.isin(raw, np.atleast_1d(var.attrs.get("_FillValue", _TIME_FILL)))
        ns = origin + raw.astype(np.int64) * step
    else:
        values = _masked(var, legacy_fill).astype(np.float64)
        fill = ~np.isfinite(values)
        whole = np.where(fill, 0.0, values)
        if np.all(whole == np.round(whole)) and np.all(np.abs(whole) < 2**53):  # DeepDA's exact whole offsets
            ns = origin + whole.astype(np.int64) * step
        else:
            ns = origin + np.round(whole * (step / 1e9)).astype(np.int64) * 10**9
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


def _find_dsg(ds: xr.Dataset, name: str, attr: str, values: tuple[str, ...] | None) -> str | None:
    """Our variable name, else the variable whose ``attr`` is one of ``values`` (any if None)."""
    if name in ds.variables:
        return name
    for key, var in ds.variables.items():
        if attr in var.attrs and (values is None or str(var.attrs[attr]) in values):
            return str(key)
    return None
