"""The model grid: coordinates, ocean mask, climatology, weights and the step calendar.

A :class:`Grid` is derived from a :class:`~engine.config.GridSpec` and the shipped 1 degree
geography (``engine.io.load_geography``) by :func:`build_grid`, a pure function, so any
regular grid whose cell size is a multiple of half a degree works, from the tiny test
grids to the 1 degree paper grid.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import cftime
import numpy as np
import pandas as pd
import xarray as xr

from engine.config import GridSpec, preset

EARTH_RADIUS_M = 6_371_000.0
SEAWATER_RHO_CP = 1025.0 * 3990.0  # J m-3 K-1, for ocean heat content
SEASONAL_MAX_DEPTH = 1000.0  # the monthly atlas ends here; below it the seasonal cycle is 0


@dataclass(frozen=True, eq=False)
class Grid:
    """Everything fixed in space: coordinates, ocean mask, climatology and weights.

    Arrays are numpy, ordered (depth, lat, lon); lat increases northwards, lon runs
    eastwards from 0 to 360.
    """

    spec: GridSpec
    lat: np.ndarray
    lon: np.ndarray
    depth: np.ndarray
    ocean: np.ndarray  # bool (depth, lat, lon)
    climatology: np.ndarray  # annual mean temperature, degC (depth, lat, lon)
    seasonal_harmonics: np.ndarray  # (4, depth, lat, lon): cos1, sin1, cos2, sin2 in degC
    source_land_fraction: np.ndarray  # (lat, lon) land share of each cell in the 1 degree source
    deepest_floor: np.ndarray | None = None  # (lat, lon) m: the deepest 1 degree sea floor in the cell

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.ocean.shape

    @property
    def depth_bounds(self) -> np.ndarray:
        """(depth, 2) layer top and bottom in metres."""
        mids = 0.5 * (self.depth[1:] + self.depth[:-1])
        bottom = self.depth[-1] + 0.5 * (self.depth[-1] - self.depth[-2]) if len(self.depth) > 1 else 2 * self.depth[0]
        edges = np.concatenate([[0.0], mids, [bottom]])
        return np.stack([edges[:-1], edges[1:]], axis=1)

    @property
    def thickness(self) -> np.ndarray:
        bounds = self.depth_bounds
        return bounds[:, 1] - bounds[:, 0]

    @property
    def area(self) -> np.ndarray:
        """(lat, lon) cell area in m2."""
        half = np.deg2rad(self.spec.resolution) / 2.0
        lat = np.deg2rad(self.lat)
        band = np.sin(lat + half) - np.sin(lat - half)
        return np.repeat((EARTH_RADIUS_M**2 * 2 * half * band)[:, None], len(self.lon), axis=1)

    @property
    def volume(self) -> np.ndarray:
        """(depth, lat, lon) ocean cell volume in m3, zero on land."""
        return self.thickness[:, None, None] * self.area[None] * self.ocean

    def seasonal_anomaly(self, day_of_year: np.ndarray) -> np.ndarray:
        """Seasonal temperature anomaly for each day of year (a 365-day year).

        Returns an array (time, depth, lat, lon), float32.
        """
        phase = 2.0 * np.pi * np.asarray(day_of_year, dtype="f8") / 365.0
        basis = np.stack([np.cos(phase), np.sin(phase), np.cos(2 * phase), np.sin(2 * phase)], axis=1)
        flat = self.seasonal_harmonics.reshape(4, -1).astype("f8")
        out = basis[:, :1] * flat[0]
        for k in range(1, 4):  # elementwise, not a matmul: a day's value is the same in any batch of days
            out += basis[:, k : k + 1] * flat[k]
        return out.reshape((len(phase),) + self.shape).astype("f4")

    def coords(self) -> dict[str, xr.DataArray]:
        """CF coordinate variables for depth, lat and lon."""
        return {
            "depth": xr.DataArray(
                self.depth,
                dims="depth",
                attrs={
                    "standard_name": "depth",
                    "long_name": "depth below sea surface",
                    "units": "m",
                    "positive": "down",
                    "axis": "Z",
                },
            ),
            "lat": xr.DataArray(
                self.lat, dims="lat", attrs={"standard_name": "latitude", "units": "degrees_north", "axis": "Y"}
            ),
            "lon": xr.DataArray(
                self.lon, dims="lon", attrs={"standard_name": "longitude", "units": "degrees_east", "axis": "X"}
            ),
        }

    def mask(self) -> xr.DataArray:
        """Ocean mask as a CF DataArray (1 ocean, 0 land)."""
        return xr.DataArray(
            self.ocean.astype("i1"),
            dims=("depth", "lat", "lon"),
            coords=self.coords(),
            name="mask",
            attrs={
                "long_name": "ocean mask",
                "flag_values": np.array([0, 1], dtype="i1"),
                "flag_meanings": "land ocean",
            },
        )

    def weights(self) -> xr.Dataset:
        """Area and volume weights as a Dataset, for the metrics."""
        coords = self.coords()
        return xr.Dataset(
            {
                "area": xr.DataArray(
                    self.area, dims=("lat", "lon"), attrs={"units": "m2", "standard_name": "cell_area"}
                ),
                "volume": xr.DataArray(self.volume, dims=("depth", "lat", "lon"), attrs={"units": "m3"}),
                "thickness": xr.DataArray(self.thickness, dims="depth", attrs={"units": "m"}),
            },
            coords=coords,
        )


def _supersample(values: np.ndarray, factor: int) -> np.ndarray:
    """Repeat the last two axes ``factor`` times (1 degree -> 1/factor degree)."""
    return np.repeat(np.repeat(values, factor, axis=-2), factor, axis=-1)


def _block_mean(values: np.ndarray, block: int, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over block x block cells of the last two axes."""
    ny, nx = values.shape[-2:]
    shape = values.shape[:-2] + (ny // block, block, nx // block, block)
    w = np.broadcast_to(weights, values.shape).reshape(shape)
    total = w.sum(axis=(-3, -1))
    summed = (values.reshape(shape) * w).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, summed / np.where(total > 0, total, 1), np.nan)


def _interp_depth(values: np.ndarray, source_depth: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 0 from source levels to target levels (clamped)."""
    idx = np.clip(np.searchsorted(source_depth, depth) - 1, 0, len(source_depth) - 2)
    z0, z1 = source_depth[idx], source_depth[idx + 1]
    frac = np.clip((depth - z0) / (z1 - z0), 0.0, 1.0)[:, None, None]
    return values[idx] * (1 - frac) + values[idx + 1] * frac


def _regrid_seasonal(geography: xr.Dataset, lat: np.ndarray, lon: np.ndarray, depth: np.ndarray) -> np.ndarray:
    from scipy.interpolate import RegularGridInterpolator  # here, not at import: keeps the dashboard's start light

    harm = geography["seasonal_harmonics"]
    slat, slon = harm["seasonal_lat"].values, harm["seasonal_lon"].values
    values = harm.values.astype("f8")
    # periodic padding in longitude so the interpolation wraps around
    slon_p = np.concatenate([slon[-1:] - 360.0, slon, slon[:1] + 360.0])
    values = np.concatenate([values[..., -1:], values, values[..., :1]], axis=-1)
    yy, xx = np.meshgrid(np.clip(lat, slat[0], slat[-1]), lon, indexing="ij")
    horizontal = np.empty(values.shape[:2] + yy.shape)
    for h in range(values.shape[0]):
        for k in range(values.shape[1]):
            interp = RegularGridInterpolator((slat, slon_p), values[h, k])
            horizontal[h, k] = interp(np.stack([yy, xx], axis=-1))
    sdepth = harm["seasonal_depth"].values
    out = np.stack([_interp_depth(horizontal[h], sdepth, depth) for h in range(values.shape[0])])
    out[:, depth > SEASONAL_MAX_DEPTH] = 0.0
    return out


def build_grid(spec: GridSpec, geography: xr.Dataset) -> Grid:
    """Derive the grid for ``spec`` from the shipped 1 degree geography.

    The surface ocean is where less than half of the cell is land in the 1 degree mask; a
    level is ocean where the mean sea-floor depth of the cell's ocean part lies below the
    level. The climatology is the ocean-area mean of Levitus interpolated to the levels.
    """
    res = spec.resolution
    factor = 2 if (res / 0.5) % 2 else 1  # work at 0.5 degree when res is an odd multiple of 0.5
    if abs(res / (1.0 / factor) - round(res / (1.0 / factor))) > 1e-9:
        raise ValueError(f"grid resolution {res} must be a multiple of 0.5 degree")
    block = int(round(res * factor))
    land = _supersample(geography["land"].values.astype("f8"), factor)
    floor = _supersample(geography["sea_floor_depth"].values.astype("f8"), factor)
    src_lat = np.repeat(geography["lat"].values, factor)
    area = np.cos(np.deg2rad(src_lat))[:, None] * np.ones_like(land)
    ocean_area = area * (1 - land)

    land_fraction = _block_mean(land, block, area)
    mean_floor = _block_mean(floor, block, ocean_area)
    ny, nx = floor.shape[0] // block, floor.shape[1] // block
    deepest_floor = np.nan_to_num(floor).reshape(ny, block, nx, block).max(axis=(1, 3))
    depth = np.asarray(spec.depths, dtype="f8")
    surface_ocean = land_fraction < 0.5
    ocean = surface_ocean[None] & (np.nan_to_num(mean_floor)[None] > depth[:, None, None])
    ocean[0] = surface_ocean  # every surface-ocean cell has at least its top level

    clim_src = geography["thetao_clim"]
    levels = _interp_depth(clim_src.values.astype("f8"), clim_src["source_depth"].values, depth)
    levels = _supersample(levels, factor)
    clim_ocean = _block_mean(levels, block, ocean_area)
    clim_all = _block_mean(levels, block, area)
    climatology = np.where(np.isnan(clim_ocean), clim_all, clim_ocean)

    lat = -90.0 + res * (np.arange(spec.nlat) + 0.5)
    lon = res * (np.arange(spec.nlon) + 0.5)
    seasonal = _regrid_seasonal(geography, lat, lon, depth)
    return Grid(
        spec=spec,
        lat=lat,
        lon=lon,
        depth=depth,
        ocean=ocean,
        climatology=climatology.astype("f4"),
        seasonal_harmonics=seasonal.astype("f4"),
        source_land_fraction=land_fraction,
        deepest_floor=deepest_floor,
    )


def grid_spec_for(lat: np.ndarray, depth: np.ndarray, name: str = "custom") -> GridSpec:
    """The grid specification of a file's coordinates: the named preset when one fits.

    Parameters
    ----------
    lat, depth
        The file's latitude centres (regular spacing) and depth levels (m).
    name
        Name given to a grid that matches no preset.
    """
    resolution = round(float(lat[1] - lat[0]), 6)
    depths = tuple(float(z) for z in depth)
    for candidate in (preset(n).grid for n in ("coarse", "medium", "paper")):
        if candidate.resolution == resolution and candidate.depths == depths:
            return candidate
    return GridSpec(name, resolution, depths)


# --- the step calendar -------------------------------------------------------------------
# Steps are pentads (73 a year) or months (12 a year).  Historical runs use the real
# (standard) calendar, with the leap day folded into the pentad that holds it; control runs
# use model years on a 365-day (noleap) calendar, as CMIP control simulations do.


def _day_of_step(steps_per_year: int) -> np.ndarray:
    """Centre day-of-year (0-based, 365-day year) of each step in a year."""
    if steps_per_year == 12:
        starts = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30])
        lengths = np.diff(np.append(starts, 365))
        return starts + lengths / 2.0
    length = 365.0 / steps_per_year
    return (np.arange(steps_per_year) + 0.5) * length


def step_day_of_year(n_steps: int, steps_per_year: int, first_step: int = 0) -> np.ndarray:
    """Centre day-of-year of each step (for the seasonal cycle)."""
    steps = first_step + np.arange(n_steps)
    return _day_of_step(steps_per_year)[steps % steps_per_year]


def step_times(start_year: int, n_steps: int, steps_per_year: int, calendar: str, first_step: int = 0) -> np.ndarray:
    """Time stamp (step centre) of each step.

    Parameters
    ----------
    calendar : {"standard", "noleap"}
        ``standard`` gives numpy datetime64 stamps; ``noleap`` gives cftime
        ``DatetimeNoLeap`` stamps (model years, e.g. for control runs from year 1).
    """
    steps = first_step + np.arange(n_steps)
    years = start_year + steps // steps_per_year
    days = _day_of_step(steps_per_year)[steps % steps_per_year]
    if calendar == "noleap":
        origin = [cftime.DatetimeNoLeap(int(y), 1, 1) for y in years]
        return np.array([o + dt.timedelta(days=float(d)) for o, d in zip(origin, days, strict=True)])
    if calendar != "standard":
        raise ValueError(f"unknown calendar {calendar!r}; use 'standard' or 'noleap'")
    jan1 = pd.to_datetime({"year": years, "month": 1, "day": 1})
    leap = jan1.dt.is_leap_year.to_numpy() & (days >= 59)  # after 28 Feb: skip the leap day
    stamps = jan1.to_numpy() + ((days + leap) * 86400.0).astype("timedelta64[s]")
    return stamps.astype("datetime64[ns]")


def time_to_step(times: np.ndarray | pd.Series, start_year: int, steps_per_year: int) -> np.ndarray:
    """Index of the step holding each time (standard calendar); may be out of range."""
    t = pd.DatetimeIndex(pd.to_datetime(np.asarray(times)))
    doy = t.day_of_year.to_numpy() - 1
    doy = doy - (t.is_leap_year & (doy >= 59)).astype(int)  # fold 29 Feb into 28 Feb's step
    doy = np.clip(doy, 0, 364)
    if steps_per_year == 12:
        within = t.month.to_numpy() - 1
    else:
        within = np.minimum((doy * steps_per_year) // 365, steps_per_year - 1)
    return (t.year.to_numpy() - start_year) * steps_per_year + within


def nearest_cell(grid: Grid, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) index of the grid cell holding each point (lon periodic)."""
    res = grid.spec.resolution
    iy = np.clip(np.floor((np.asarray(lat) + 90.0) / res).astype(int), 0, len(grid.lat) - 1)
    ix = np.floor(np.mod(lon, 360.0) / res).astype(int) % len(grid.lon)
    return iy, ix


def horizontal_corners(grid: Grid, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 4 cell centres around each point, as flat (lat, lon) indices (4, n), and their
    bilinear weights (4, n): periodic in longitude, clamped at the poles; land not removed."""
    ny, nx = grid.shape[1:]
    res = grid.spec.resolution
    fy = (np.asarray(lat, dtype="f8") - grid.lat[0]) / res
    y0 = np.clip(np.floor(fy).astype("i8"), 0, ny - 2)
    wy = np.clip(fy - y0, 0.0, 1.0)
    fx = np.mod(np.asarray(lon, dtype="f8") - grid.lon[0], 360.0) / res
    x0 = np.floor(fx).astype("i8") % nx
    wx = fx - np.floor(fx)
    x1 = (x0 + 1) % nx
    cells = np.stack([y0 * nx + x0, y0 * nx + x1, (y0 + 1) * nx + x0, (y0 + 1) * nx + x1])
    weights = np.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx])
    return cells, weights


def corner_weights(grid: Grid, lat: np.ndarray, lon: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 8 grid points around each point and their trilinear weights, land left out.

    Bilinear between cell centres (:func:`horizontal_corners`), linear between levels
    (clamped above the top and below the bottom level). Corners that are not
    ``grid.ocean`` get weight 0 and the rest are renormalised, so a point whose nearest
    cell is ocean at its level always has weights summing to 1 (0 when no corner is ocean).

    Returns
    -------
    cells : ndarray (8, n) int64
        Flat indices into a (nz, ny, nx) field.
    weights : ndarray (8, n) float64
    """
    nz, ny, nx = grid.shape
    hcells, hweights = horizontal_corners(grid, lat, lon)
    d, depth = grid.depth, np.asarray(depth, dtype="f8")
    z0 = np.clip(np.searchsorted(d, depth, side="right") - 1, 0, max(nz - 2, 0))
    z1 = np.minimum(z0 + 1, nz - 1)
    wz = np.clip((depth - d[z0]) / np.where(z1 > z0, d[z1] - d[z0], 1.0), 0.0, 1.0) * (z1 > z0)
    cells = np.concatenate([z0 * (ny * nx) + hcells, z1 * (ny * nx) + hcells])
    weights = np.concatenate([(1.0 - wz) * hweights, wz * hweights]) * grid.ocean.reshape(-1)[cells]
    total = weights.sum(axis=0)
    return cells, weights / np.where(total > 0, total, 1.0)
