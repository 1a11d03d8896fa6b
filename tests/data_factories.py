"""Tiny observation files in real layouts (EN4, Argo, CSV) and tables/grids for the tests.

Real EN4 and Argo files cannot be downloaded here, so these writers reproduce the
layouts (dimension and variable names, char QC flags, 99999 fills, padding levels) on a
handful of hand-made profiles, each with a known defect. The module constants say what
a correct reader must find, so the tests check against them rather than re-deriving.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd

from engine.config import GridSpec
from engine.grid import Grid
from engine.observe.profiles import as_table

FILL = 99999.0
JULD_UNITS = "days since 1950-01-01 00:00:00 utc"

# --- EN4 -----------------------------------------------------------------------------------
# One dict per profile. "temp" None is a fill value at a level that has a depth.
EN4_PROFILES = [
    {  # Argo float; level 2 flagged 4 by EN4
        "inst": "ARGO PROFILING FLOAT", "wmo": "846", "lat": 10.0, "lon": -30.0, "juld": 18262.5,
        "depth": [5.0, 50.0, 100.0, 500.0], "temp": [25.0, 24.0, 20.0, 8.0], "qc": "1141",
    },
    {  # XBT; a missing temperature at 100 m
        "inst": "XBT: T7 (SIPPICAN)", "wmo": "042", "lat": -20.0, "lon": 100.0, "juld": 18263.25,
        "depth": [1.0, 10.0, 100.0, 200.0, 400.0], "temp": [28.0, 27.5, None, 15.0, 10.0], "qc": "11111",
    },
    {  # CTD; the whole profile rejected (PROFILE_POTM_QC 4)
        "inst": "CTD: TYPE UNKNOWN", "wmo": "830", "lat": 45.0, "lon": 170.0, "juld": 18264.0,
        "depth": [10.0, 20.0], "temp": [12.0, 11.0], "qc": "11", "profile_qc": "4",
    },
    {  # thermistor chain (mooring) from its WMO code only; 400 degC at 50 m
        "inst": "", "wmo": "820", "lat": 0.0, "lon": -140.0, "juld": 18265.0,
        "depth": [1.0, 50.0, 100.0], "temp": [26.0, 400.0, 20.0], "qc": "111",
    },
    {  # unidentifiable instrument; position rejected (POSITION_QC 4)
        "inst": "", "wmo": "999", "lat": 30.0, "lon": 20.0, "juld": 18266.0,
        "depth": [5.0], "temp": [15.0], "qc": "1", "position_qc": "4",
    },
]  # fmt: skip
EN4_ROWS = 15  # every level with a depth or a temperature (padding levels excluded)
EN4_PLATFORMS = ["argo", "xbt", "ctd", "mooring", "unknown"]
EN4_EXPECTED_QC = {0: 9, 1: 1, 2: 1, 9: 4}  # after run_qc
N_LEVELS_EN4 = 5


def _char_var(nc: netCDF4.Dataset, name: str, dims: tuple[str, ...], values: np.ndarray) -> None:
    var = nc.createVariable(name, "S1", dims)
    var[:] = values


def _strings(values: Iterable[str], length: int) -> np.ndarray:
    return netCDF4.stringtochar(np.array([v.ljust(length) for v in values], dtype=f"S{length}"))


def _levels(profiles: list[dict], key: str, n_levels: int, fill: float = FILL) -> np.ndarray:
    out = np.full((len(profiles), n_levels), fill, dtype="f4")
    for i, prof in enumerate(profiles):
        values = [fill if v is None else v for v in prof[key]]
        out[i, : len(values)] = values
    return out


def _level_flags(profiles: list[dict], key: str, n_levels: int) -> np.ndarray:
    out = np.full((len(profiles), n_levels), b" ", dtype="S1")
    for i, prof in enumerate(profiles):
        out[i, : len(prof[key])] = [c.encode() for c in prof[key]]
    return out


def write_en4(path: str | Path, drop: Iterable[str] = (), kelvin: bool = False) -> Path:
    """An EN.4.2.2 ``profiles`` file holding :data:`EN4_PROFILES`.

    ``drop`` leaves variables out (to test error messages); ``kelvin`` stores
    POTM_CORRECTED in Kelvin with ``units = "kelvin"`` (a units conversion test).
    """
    path, drop, profs = Path(path), set(drop), EN4_PROFILES
    n = len(profs)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("N_PROF", n)
        nc.createDimension("N_LEVELS", N_LEVELS_EN4)
        for dim, size in (("STRING4", 4), ("STRING9", 9), ("STRING64", 64)):
            nc.createDimension(dim, size)
        floats = {
            "JULD": (("N_PROF",), "f8", np.array([p["juld"] for p in profs]), JULD_UNITS),
            "LATITUDE": (("N_PROF",), "f8", np.array([p["lat"] for p in profs]), "degrees_north"),
            "LONGITUDE": (("N_PROF",), "f8", np.array([p["lon"] for p in profs]), "degrees_east"),
            "DEPH_CORRECTED": (("N_PROF", "N_LEVELS"), "f4", _levels(profs, "depth", N_LEVELS_EN4), "meters"),
            "POTM_CORRECTED": (("N_PROF", "N_LEVELS"), "f4", _levels(profs, "temp", N_LEVELS_EN4), "degree_Celsius"),
            # in-situ temperature, deliberately different: the reader must prefer POTM_CORRECTED
            "TEMP": (("N_PROF", "N_LEVELS"), "f4", _levels(profs, "temp", N_LEVELS_EN4) + 0.25, "degree_Celsius"),
        }
        if kelvin:
            potm = _levels(profs, "temp", N_LEVELS_EN4)
            floats["POTM_CORRECTED"] = (
                ("N_PROF", "N_LEVELS"),
                "f4",
                np.where(potm < FILL, potm + 273.15, FILL),
                "kelvin",
            )
        for name, (dims, dtype, values, units) in floats.items():
            if name not in drop:
                var = nc.createVariable(name, dtype, dims, fill_value=FILL)
                var.units = units
                var[:] = values
        chars = {
            "JULD_QC": (("N_PROF",), np.array([b"1"] * n)),
            "POSITION_QC": (("N_PROF",), np.array([p.get("position_qc", "1").encode() for p in profs])),
            "PROFILE_POTM_QC": (("N_PROF",), np.array([p.get("profile_qc", "1").encode() for p in profs])),
            "POTM_CORRECTED_QC": (("N_PROF", "N_LEVELS"), _level_flags(profs, "qc", N_LEVELS_EN4)),
            "DEPH_CORRECTED_QC": (("N_PROF", "N_LEVELS"), _level_flags(profs, "qc", N_LEVELS_EN4)),
            "PLATFORM_NUMBER": (("N_PROF", "STRING9"), _strings([f"P{i}" for i in range(n)], 9)),
            "INST_REFERENCE": (("N_PROF", "STRING64"), _strings([p["inst"] for p in profs], 64)),
            "WMO_INST_TYPE": (("N_PROF", "STRING4"), _strings([p["wmo"] for p in profs], 4)),
        }
        for name, (dims, values) in chars.items():
            if name not in drop:
                _char_var(nc, name, dims, values)
    return path


# --- Argo ----------------------------------------------------------------------------------
ARGO_WMO, ARGO_CYCLE = 6901234, 12
ARGO_PRES = [[5.0, 100.0, 1000.0, 2001.0], [10.0, 20.0, 30.0, FILL]]
ARGO_PRES_ADJUSTED = [[4.0, 99.0, 999.0, 2000.0], [FILL] * 4]
ARGO_TEMP = [[20.0, 15.0, 5.0, 3.0], [18.0, 17.0, 16.0, FILL]]
ARGO_TEMP_ADJUSTED = [[19.5, 14.5, 4.5, 2.5], [FILL] * 4]
ARGO_TEMP_QC = ["1111", "113 "]
ARGO_TEMP_ADJUSTED_QC = ["1411", "    "]
ARGO_LAT, ARGO_LON = [-40.0, 45.0], [60.0, -160.0]
ARGO_ROWS = 7
ARGO_SOURCE_BAD = 2  # profile 0 level 1 (adjusted QC 4), profile 1 level 2 (QC 3)


def write_argo(path: str | Path, drop: Iterable[str] = (), data_mode: str = "DR") -> Path:
    """An Argo core profile file (``D6901234_012.nc`` layout) with two profiles.

    Profile 0 is delayed-mode ('D'): its adjusted values differ from the raw ones and
    one adjusted temperature is flagged 4. Profile 1 is real-time ('R'): raw values,
    one flagged 3, and a padding level.
    """
    path, drop = Path(path), set(drop)
    with netCDF4.Dataset(path, "w") as nc:
        for dim, size in (("N_PROF", 2), ("N_LEVELS", 4), ("STRING8", 8)):
            nc.createDimension(dim, size)
        floats = {
            "JULD": (("N_PROF",), "f8", np.array([18628.25, 18638.5]), JULD_UNITS),
            "LATITUDE": (("N_PROF",), "f8", np.array(ARGO_LAT), "degree_north"),
            "LONGITUDE": (("N_PROF",), "f8", np.array(ARGO_LON), "degree_east"),
            "PRES": (("N_PROF", "N_LEVELS"), "f4", np.array(ARGO_PRES), "decibar"),
            "PRES_ADJUSTED": (("N_PROF", "N_LEVELS"), "f4", np.array(ARGO_PRES_ADJUSTED), "decibar"),
            "TEMP": (("N_PROF", "N_LEVELS"), "f4", np.array(ARGO_TEMP), "degree_Celsius"),
            "TEMP_ADJUSTED": (("N_PROF", "N_LEVELS"), "f4", np.array(ARGO_TEMP_ADJUSTED), "degree_Celsius"),
        }
        for name, (dims, dtype, values, units) in floats.items():
            if name not in drop:
                var = nc.createVariable(name, dtype, dims, fill_value=FILL if dtype == "f4" else 999999.0)
                var.units = units
                var[:] = values
        flags = {
            "TEMP_QC": ARGO_TEMP_QC,
            "TEMP_ADJUSTED_QC": ARGO_TEMP_ADJUSTED_QC,
            "PRES_QC": ["1111", "111 "],
            "PRES_ADJUSTED_QC": ["1111", "    "],
        }
        for name, rows in flags.items():
            if name not in drop:
                _char_var(nc, name, ("N_PROF", "N_LEVELS"), np.array([[c.encode() for c in r] for r in rows]))
        for name, values in (("JULD_QC", b"11"), ("POSITION_QC", b"11"), ("DATA_MODE", data_mode.encode())):
            if name not in drop:
                _char_var(nc, name, ("N_PROF",), np.array([bytes([c]) for c in values]))
        _char_var(nc, "PLATFORM_NUMBER", ("N_PROF", "STRING8"), _strings([str(ARGO_WMO)] * 2, 8))
        cycle = nc.createVariable("CYCLE_NUMBER", "i4", ("N_PROF",), fill_value=99999)
        cycle[:] = [ARGO_CYCLE, ARGO_CYCLE]
    return path


# --- CSV -----------------------------------------------------------------------------------
CSV_COLUMNS = {
    "time": "date",
    "lat": "latitude",
    "lon": "longitude",
    "depth": "depth_m",
    "temperature": "temp_c",
    "platform": "instrument",
}
# date, latitude, longitude, depth_m, temp_c, instrument, expected qc with period 1981-2020
CSV_ROWS = [
    ("2001-03-01T00:00", "10", "-30", "5", "24.0", "Argo float", 0),
    ("2001-03-01T00:00", "10", "-30", "100", "18.0", "Argo float", 0),
    ("2001-03-01T00:00", "10", "-30", "1000", "", "Argo float", 1),  # NaN temperature
    ("2001-03-01T00:00", "10", "-30", "5", "24.1", "Argo float", 8),  # duplicate of the first row
    ("2001-03-02T06:00", "-20", "100", "10", "400", "XBT", 2),  # 400 degC
    ("2001-03-02T06:00", "-20", "100", "-5", "25.0", "XBT", 5),  # negative depth
    ("2001-03-03T12:00", "30", "200", "10", "298.15", "CTD", 3),  # a profile in Kelvin
    ("2001-03-03T12:00", "30", "200", "100", "290.0", "CTD", 3),
    ("2001-03-03T12:00", "30", "200", "500", "280.0", "CTD", 3),
    ("2001-03-04T00:00", "95", "10", "10", "20.0", "TAO mooring", 4),  # latitude 95
    ("2001-03-05T00:00", "0", "400", "10", "20.0", "Argo float", 4),  # longitude 400
    ("1975-06-01T00:00", "20", "20", "10", "20.0", "Argo float", 7),  # before the period
]


def write_csv(path: str | Path, rows: list[tuple] | None = None) -> Path:
    """A user CSV (columns named as in :data:`CSV_COLUMNS`, plus a ``cruise`` column)."""
    rows = CSV_ROWS if rows is None else rows
    frame = pd.DataFrame([[*r[:6], "C1"] for r in rows], columns=[*CSV_COLUMNS.values(), "cruise"])
    frame.to_csv(path, index=False)
    return Path(path)


# --- tables and grids ----------------------------------------------------------------------


def sample_table() -> pd.DataFrame:
    """A profile table exercising every dtype corner: NaN, NaT, flagged rows, odd floats, ns times."""
    rng = np.random.default_rng(7)
    sizes = [3, 1, 4, 2, 5, 1]
    platforms = ["argo", "xbt", "ctd", "mooring", "sst", "unknown"]
    times = pd.to_datetime(
        [
            "2001-01-01T00:00:00",
            "2001-01-02T03:04:05.123456789",
            "NaT",
            "2019-12-31T23:59:59",
            "1981-06-15",
            "2020-02-29",
        ],
        format="ISO8601",
    )
    n = sum(sizes)
    table = pd.DataFrame(
        {
            "time": np.repeat(times.to_numpy(), sizes),
            "lat": np.repeat(rng.uniform(-80, 80, len(sizes)), sizes),
            "lon": np.repeat(np.r_[rng.uniform(0, 360, len(sizes) - 1), np.nextafter(360.0, 0.0)], sizes),
            "depth": np.abs(rng.normal(300, 200, n)).astype("f4"),
            "temperature": rng.normal(10, 5, n).astype("f4"),
            "platform": np.repeat(platforms, sizes),
            "obs_error": np.repeat([0.2, 0.3, 0.2, 0.2, 0.3, 0.5], sizes).astype("f4"),
            "profile_id": np.repeat([5, 3, 900_000_000_001, 7, 0, 11], sizes),
            "qc": 0,
        }
    )
    table.loc[1, "temperature"] = np.nan
    table.loc[4, "obs_error"] = np.nan
    table.loc[[2, 8], "qc"] = [9, 2]
    table.loc[6, "depth"] = np.float32(1e-7)
    return as_table(table)


def bathymetry_grid() -> Grid:
    """A 45-degree grid with three levels (10, 100, 1000 m) and known bathymetry.

    Everything is ocean to the bottom level except: the cell at lat -22.5, lon 292.5 (67.5 W)
    whose floor is 550 m (the bottom of the 100 m layer), and the land cell at
    lat 22.5, lon 22.5.
    """
    spec = GridSpec("tiny", 45.0, (10.0, 100.0, 1000.0))
    lat = -90.0 + 45.0 * (np.arange(4) + 0.5)
    lon = 45.0 * (np.arange(8) + 0.5)
    ocean = np.ones(spec.shape, dtype=bool)
    ocean[2, 1, 6] = False
    ocean[:, 2, 0] = False
    return Grid(
        spec=spec,
        lat=lat,
        lon=lon,
        depth=np.asarray(spec.depths),
        ocean=ocean,
        climatology=np.zeros(spec.shape, dtype="f4"),
        seasonal_harmonics=np.zeros((4, *spec.shape), dtype="f4"),
        source_land_fraction=np.where(ocean[0], 0.0, 1.0),
    )


def write_argo_without_profiles(path: str | Path) -> Path:
    """An Argo core profile file whose N_PROF dimension is empty (a download with nothing in it)."""
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as nc:
        nc.createDimension("N_PROF", None)
        nc.createDimension("N_LEVELS", 4)
        for name in ("JULD", "LATITUDE", "LONGITUDE"):
            nc.createVariable(name, "f8", ("N_PROF",))
        for name in ("PRES", "TEMP"):
            nc.createVariable(name, "f4", ("N_PROF", "N_LEVELS"))
    return Path(path)


# --- World Ocean Database ragged array -------------------------------------------------------
# One dict per cast, in the WOD netCDF layout (NCEI "ragged array" files, e.g. wod_ctd_2010.nc).
# "t" None is a fill; "tflag" / "zflag" are the WOD level flags (0 accepted), "pflag" the
# cast's Temperature_WODprofileflag. A cast without "t" has depths but no temperature.
WOD_CASTS = [
    {  # CTD, all accepted
        "id": 20000001, "dataset": "CTD", "lat": 5.5, "lon": -25.25, "days": 88000.5,
        "z": [2.0, 50.0, 200.0, 1000.0], "t": [27.5, 25.0, 12.0, 5.0], "tflag": [0, 0, 0, 0], "zflag": [0, 0, 0, 0],
    },
    {  # XBT; level 2 failed WOD's gradient check (3), a fill at the bottom level
        "id": 20000002, "dataset": "XBT", "lat": -12.0, "lon": 100.0, "days": 88001.25,
        "z": [1.0, 10.0, 100.0, 300.0, 700.0], "t": [28.0, 27.0, 35.0, 15.0, None], "tflag": [0, 0, 3, 0, 0],
        "zflag": [0, 0, 0, 0, 0],
    },
    {  # Argo float (WOD's PFL); the whole temperature profile rejected (profile flag 2)
        "id": 20000003, "dataset": "profiling float", "lat": 30.0, "lon": -40.0, "days": 88002.0, "pflag": 2,
        "z": [5.0, 100.0, 1500.0], "t": [22.0, 18.0, 4.0], "tflag": [0, 0, 0], "zflag": [0, 0, 0],
    },
    {  # TAO mooring; the 100 m depth flagged (duplicate or inversion of depths, z_WODflag 1)
        "id": 20000004, "dataset": "moored buoy", "lat": 0.0, "lon": -140.0, "days": 88003.0,
        "z": [1.0, 100.0], "t": [26.0, 20.0], "tflag": [0, 0], "zflag": [0, 1],
    },
    {  # bottle cast with salinity only: depths, no temperature (Temperature_row_size fill)
        "id": 20000005, "dataset": "bottle/rossette/net", "lat": 40.0, "lon": 10.0, "days": 88004.0,
        "z": [0.0, 10.0, 20.0],
    },
    {  # drifting buoy: not a DeepDA platform
        "id": 20000006, "dataset": "drifting buoy", "lat": -50.0, "lon": 60.0, "days": 88005.5,
        "z": [0.5], "t": [6.0], "tflag": [0], "zflag": [0],
    },
]  # fmt: skip
WOD_ROWS = 15  # temperature values (the bottle cast has none)
WOD_PLATFORMS = {20000001: "ctd", 20000002: "xbt", 20000003: "argo", 20000004: "mooring", 20000006: "unknown"}
WOD_EXPECTED_QC = {0: 9, 1: 1, 9: 5}  # after run_qc: a fill (1), WOD-flagged levels and casts (9)
WOD_FILL = 9.96921e36  # netCDF's default float fill, as NCEI writes it
WOD_SHORT_FILL = 32767


def write_wod(path: str | Path, drop: Iterable[str] = (), casts: list[dict] | None = None) -> Path:
    """A World Ocean Database ragged-array file holding :data:`WOD_CASTS` (or ``casts``),
    with the variable names, dimensions, fills and char strings of NCEI's netCDF."""
    path, drop, casts = Path(path), set(drop), WOD_CASTS if casts is None else casts
    z = np.array([v for c in casts for v in c["z"]], dtype="f4")
    temp = np.array([WOD_FILL if v is None else v for c in casts for v in c.get("t", [])], dtype="f4")
    with netCDF4.Dataset(path, "w") as nc:
        nc.setncatts({"Conventions": "CF-1.6", "featureType": "Profile", "project": "World Ocean Database"})
        for dim, size in (("casts", len(casts)), ("z_obs", len(z)), ("Temperature_obs", len(temp)), ("strnlen", 170)):
            nc.createDimension(dim, size)
        per_cast = {
            "wod_unique_cast": ("i4", [c["id"] for c in casts], None, {"cf_role": "profile_id"}),
            "lat": ("f4", [c["lat"] for c in casts], None, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("f4", [c["lon"] for c in casts], None, {"standard_name": "longitude", "units": "degrees_east"}),
            "time": ("f8", [c["days"] for c in casts], None, {"standard_name": "time", "units": "days since 1770-01-01 00:00:00"}),
            "z_row_size": ("i2", [len(c["z"]) for c in casts], None, {"sample_dimension": "z_obs"}),
            "Temperature_row_size": (
                "i2", [len(c["t"]) if "t" in c else WOD_SHORT_FILL for c in casts], WOD_SHORT_FILL,
                {"sample_dimension": "Temperature_obs"},
            ),
            "Temperature_WODprofileflag": ("i2", [c.get("pflag", 0) for c in casts], WOD_SHORT_FILL, {"flag_definitions": "WODfp"}),
        }  # fmt: skip
        for name, (dtype, values, fill, attrs) in per_cast.items():
            if name not in drop:
                var = nc.createVariable(name, dtype, ("casts",), fill_value=fill)
                var.setncatts(attrs)
                var[:] = np.array(values, dtype=dtype)
        for name, dims, values, attrs in (
            ("z", ("z_obs",), z, {"standard_name": "depth", "units": "m", "positive": "down"}),
            ("z_WODflag", ("z_obs",), [f for c in casts for f in c.get("zflag", [0] * len(c["z"]))], {}),
            (
                "Temperature",
                ("Temperature_obs",),
                temp,
                {"standard_name": "sea_water_temperature", "units": "degree_C"},
            ),
            ("Temperature_WODflag", ("Temperature_obs",), [f for c in casts for f in c.get("tflag", [])], {}),
        ):
            if name not in drop:
                dtype = "f4" if name in ("z", "Temperature") else "i2"
                var = nc.createVariable(name, dtype, dims, fill_value=WOD_FILL if dtype == "f4" else WOD_SHORT_FILL)
                var.setncatts(attrs)
                var[:] = np.asarray(values, dtype=dtype)
        if "dataset" not in drop:
            _char_var(nc, "dataset", ("casts", "strnlen"), _strings([c["dataset"] for c in casts], 170))
        flags = nc.createVariable("WODf", "i2", ())
        flags.flag_meanings = "accepted range_out inversion gradient anomaly gradient+inversion range+inversion " \
            "range+gradient range+anomaly range+inversion+gradient"  # fmt: skip
    return path
