"""Readers for real observation files: Met Office EN4 and Argo core profile netCDF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from engine.io.dsg import (
    QC_SOURCE_BAD,
    classify_platform,
    default_obs_error,
)
from engine.io.netcdf_decode import (
    _decode_time,
    _first_present,
    _flags_bad,
    _masked,
    _open_netcdf,
    _require,
    _strings,
    damaged_guard,
)
from engine.observe.profiles import PLATFORMS, QC_GOOD, as_table

# --- real formats: EN4 and Argo profile netCDF ------------------------------------------


def _celsius(values: np.ndarray, var: xr.DataArray) -> np.ndarray:
    """Temperature in degC; converted when the file's units say Kelvin."""
    units = str(var.attrs.get("units", "")).strip().lower()
    if units in ("k", "kelvin", "degk", "deg_k", "degrees_k", "degree_kelvin", "kelvins"):
        return (values.astype(np.float64) - 273.15).astype(np.float32)
    return values.astype(np.float32)


def _levels_to_table(
    profile: dict[str, np.ndarray],
    levels: dict[str, np.ndarray],
    obs_error: float | dict[str, float] | None,
) -> pd.DataFrame:
    """(N_PROF, N_LEVELS) arrays -> profile table rows.

    ``levels`` holds depth, temperature, bad (source flag 3/4) and present. Levels not
    present (no value of any kind in the file) are padding, not measurements, and are
    skipped; every other level is a row, with NaN where a value is missing.
    """
    depth, temperature, bad, keep = levels["depth"], levels["temperature"], levels["bad"], levels["present"]
    prof, _ = np.nonzero(keep)  # row-major: each profile's levels stay together, in order
    platform = profile["platform"][prof]
    frame = pd.DataFrame(
        {
            "time": profile["time"][prof],
            "lat": profile["lat"][prof].astype(np.float64),
            "lon": profile["lon"][prof].astype(np.float64),
            "depth": depth[keep].astype(np.float32),
            "temperature": temperature[keep].astype(np.float32),
            "platform": pd.Categorical(platform, categories=PLATFORMS),
            "obs_error": default_obs_error(platform, obs_error),
            "profile_id": profile["profile_id"][prof],
            "qc": np.where(bad[keep], QC_SOURCE_BAD, QC_GOOD).astype(np.int8),
        }
    )
    return as_table(frame)


def _profile_position(ds: xr.Dataset, file: Path) -> dict[str, np.ndarray]:
    """Time, latitude and longitude per profile, with fills as NaN/NaT."""
    return {
        "time": _decode_time(ds["JULD"], file, legacy_fill=True),
        "lat": _masked(ds["LATITUDE"], legacy_fill=True).astype(np.float64),
        "lon": _masked(ds["LONGITUDE"], legacy_fill=True).astype(np.float64),
    }


def profile_chunks(path: str | Path, rows: int) -> list[slice]:
    """Slices of ``N_PROF`` of an EN4 or Argo file holding about ``rows`` levels each (at
    least one profile), so that a large file can be read a part at a time."""
    file, ds = _open_netcdf(path)
    with ds:
        n_prof, n_levels = (ds.sizes.get(name, 0) for name in ("N_PROF", "N_LEVELS"))
    step = max(1, rows // max(n_levels, 1))
    return [slice(first, min(first + step, n_prof)) for first in range(0, n_prof, step)]


def _some_profiles(ds: xr.Dataset, profiles: slice | None) -> tuple[xr.Dataset, int]:
    """The dataset cut to ``profiles`` (lazily) and the index of its first profile."""
    if profiles is None or "N_PROF" not in ds.dims:
        return ds, 0
    return ds.isel(N_PROF=profiles), profiles.indices(ds.sizes["N_PROF"])[0]


def read_en4(
    path: str | Path, obs_error: float | dict[str, float] | None = None, profiles: slice | None = None
) -> pd.DataFrame:
    """Read a Met Office EN4 monthly profile file (``EN.4.2.2.f.profiles.g10.YYYYMM.nc``).

    Uses ``POTM_CORRECTED`` (potential temperature; ``TEMP`` if absent) on
    ``DEPH_CORRECTED`` (or ``DEPH_CORRTEMP`` / ``DEPH``); levels flagged 3 or 4 in
    the level QC (temperature or depth), or profiles flagged in ``PROFILE_POTM_QC``,
    ``JULD_QC`` or ``POSITION_QC``, get QC code 9 (kept and counted). The platform comes
    from ``INST_REFERENCE`` / ``PROJECT_NAME`` text, else the ``WMO_INST_TYPE`` code.
    Profile ids are the profiles' positions in the file. ``profiles`` reads only those
    (a slice of ``N_PROF``, e.g. from :func:`profile_chunks`).

    Raises
    ------
    InputError
        Missing or unreadable file, or variables missing, in one line with the fix.
    """
    file, whole = _open_netcdf(path)
    with whole, damaged_guard(file):
        ds, first = _some_profiles(whole, profiles)
        _require(ds, file, "an EN4 profile", ("JULD", "LATITUDE", "LONGITUDE"))
        temp_name = _first_present(ds, file, "an EN4 profile", ("POTM_CORRECTED", "TEMP"))
        depth_name = _first_present(ds, file, "an EN4 profile", ("DEPH_CORRECTED", "DEPH_CORRTEMP", "DEPH"))
        temperature = _celsius(_masked(ds[temp_name], legacy_fill=True), ds[temp_name])
        depth = _masked(ds[depth_name], legacy_fill=True)
        n_prof = temperature.shape[0]
        profile_flag = "PROFILE_POTM_QC" if temp_name == "POTM_CORRECTED" else "PROFILE_TEMP_QC"
        bad_profile = np.zeros(n_prof, dtype=bool)
        for name in (profile_flag, "JULD_QC", "POSITION_QC"):
            bad_profile |= _flags_bad(ds, name, (n_prof,))
        bad = bad_profile[:, None] | _flags_bad(ds, f"{temp_name}_QC", temperature.shape)
        bad |= _flags_bad(ds, f"{depth_name}_QC", temperature.shape)
        profile = _profile_position(ds, file)
        profile["platform"] = _en4_platforms(ds, n_prof)
        profile["profile_id"] = np.arange(first, first + n_prof, dtype=np.int64)
    present = np.isfinite(depth) | np.isfinite(temperature)
    levels = {"depth": depth, "temperature": temperature, "bad": bad, "present": present}
    return _levels_to_table(profile, levels, obs_error)


def _en4_platforms(ds: xr.Dataset, n_prof: int) -> np.ndarray:
    texts = [_strings(ds[n]) for n in ("INST_REFERENCE", "PROJECT_NAME") if n in ds.variables]
    text = [" ".join(parts) for parts in zip(*texts, strict=True)] if texts else [""] * n_prof
    codes = _strings(ds["WMO_INST_TYPE"]) if "WMO_INST_TYPE" in ds.variables else [""] * n_prof
    return np.array([classify_platform(t, c) for t, c in zip(text, codes, strict=True)], dtype=object)


def depth_from_pressure(pressure: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Depth (m, positive down) from sea pressure (dbar) with TEOS-10 (``gsw.z_from_p``).

    2000 dbar is about 1975 m at 45 degrees latitude.
    """
    import gsw  # TEOS-10; imported here so that only Argo reading needs it

    return -np.asarray(gsw.z_from_p(pressure, lat), dtype=np.float64)


def read_argo(
    path: str | Path, obs_error: float | dict[str, float] | None = None, profiles: slice | None = None
) -> pd.DataFrame:
    """Read an Argo core profile file (``R<WMO>_<cycle>.nc`` / ``D...``) into a profile table.

    Per profile, ``DATA_MODE`` 'A' or 'D' selects ``PRES_ADJUSTED`` / ``TEMP_ADJUSTED`` and
    their QC (a missing adjusted value stays missing: Argo marks it bad), 'R' the raw
    values. Pressure becomes depth with TEOS-10. Levels flagged 3 or 4 (temperature or
    pressure), or profiles with ``JULD_QC`` / ``POSITION_QC`` 3 or 4, get QC code 9.
    Profile ids are ``WMO * 1e6 + cycle * 100 + profile index`` when those are numbers.
    ``profiles`` reads only those (a slice of ``N_PROF``, e.g. from :func:`profile_chunks`).

    Raises
    ------
    InputError
        Missing or unreadable file, or variables missing, in one line with the fix.
    """
    file, whole = _open_netcdf(path)
    with whole, damaged_guard(file):
        ds, first = _some_profiles(whole, profiles)
        _require(ds, file, "an Argo profile", ("JULD", "LATITUDE", "LONGITUDE", "PRES", "TEMP"))
        n_prof = ds["TEMP"].shape[0]
        mode = _strings(ds["DATA_MODE"]).astype(str) if "DATA_MODE" in ds.variables else np.full(n_prof, "R")
        pres, pres_bad, pres_present = _argo_levels(ds, "PRES", mode)
        temp, temp_bad, temp_present = _argo_levels(ds, "TEMP", mode)
        bad_profile = _flags_bad(ds, "JULD_QC", (n_prof,)) | _flags_bad(ds, "POSITION_QC", (n_prof,))
        profile = _profile_position(ds, file)
        profile["platform"] = np.full(n_prof, "argo", dtype=object)
        profile["profile_id"] = _argo_ids(ds, n_prof, first)
    with np.errstate(invalid="ignore"):
        depth = depth_from_pressure(pres, profile["lat"][:, None])
    levels = {
        "depth": np.where(np.isfinite(pres), depth, np.nan),
        "temperature": temp,
        "bad": pres_bad | temp_bad | bad_profile[:, None],
        "present": pres_present | temp_present,
    }
    return _levels_to_table(profile, levels, obs_error)


def _argo_levels(ds: xr.Dataset, name: str, mode: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, bad-flag mask and presence of ``name``, adjusted where the data mode says so.

    Present means a raw or an adjusted value exists: a delayed-mode level whose adjusted
    value was removed as bad is still a measurement, and is kept (as NaN) and counted.
    """
    values = _masked(ds[name], legacy_fill=True)
    bad = _flags_bad(ds, f"{name}_QC", values.shape)
    present = np.isfinite(values)
    adjusted = np.isin(mode, ("A", "D"))
    if f"{name}_ADJUSTED" in ds.variables and adjusted.any():
        adj_values = _masked(ds[f"{name}_ADJUSTED"], legacy_fill=True)
        adj_bad = _flags_bad(ds, f"{name}_ADJUSTED_QC", values.shape)
        values = np.where(adjusted[:, None], adj_values, values)
        bad = np.where(adjusted[:, None], adj_bad, bad)
        present |= np.isfinite(adj_values)
    if name == "TEMP":
        values = _celsius(values, ds[name])
    return values, bad, present


def _argo_ids(ds: xr.Dataset, n_prof: int, first: int = 0) -> np.ndarray:
    index = np.arange(first, first + n_prof, dtype=np.int64)
    try:
        wmo = np.array([int(s) for s in _strings(ds["PLATFORM_NUMBER"])], dtype=np.int64)
        cycle = np.asarray(ds["CYCLE_NUMBER"].values).astype(np.int64)
    except (KeyError, ValueError, TypeError):  # absent or not numeric: fall back to the position
        return index
    return wmo * 1_000_000 + (cycle % 10_000) * 100 + index % 100
