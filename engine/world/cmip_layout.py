"""The synthetic world as a CMIP6 modeller would write it: other grids, K, cm, bounds, decades.

The world's patterns and eddies are built on its own preset grid (random smooth fields and
a per-cell eddy filter), so they cannot be evaluated at other coordinates: the fields on
the 1 degree and the curvilinear grid are the coarse world **interpolated** (bilinear between
ocean cell centres, linear in depth). The finer grid's land is the coarse ocean of the cell
holding a point combined with the shipped 1 degree land, so the model's own land mask is
not the preset's. Levels are the world's plus the midpoints between them (the regridding
back interpolates in depth without loss on the world's own levels).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import cftime
import numpy as np

from engine.grid import Grid, _day_of_step, horizontal_corners, nearest_cell
from engine.world.regrid import corners_from_centres, level_weights, to_levels

GRIDS = ("1deg", "curvilinear")
CURVILINEAR_SHAPE = (150, 240)  # (y, x): finer than 1.5 degree at the equator, coarser at the poles


def regular_1deg() -> tuple[np.ndarray, np.ndarray]:
    """1-D cell centres of the 1 degree grid (lat -89.5..89.5, lon 0.5..359.5)."""
    return np.arange(-89.5, 90.0, 1.0), np.arange(0.5, 360.0, 1.0)


def curvilinear(shape: tuple[int, int] = CURVILINEAR_SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """2-D centres of a stretched, sheared global grid: rows closer at the equator (as ocean
    models refine it), each row's latitude waving with longitude and each column's
    longitude drifting with latitude, so neither coordinate is 1-D."""
    ny, nx = shape
    u = -1.0 + (np.arange(ny) + 0.5) * 2.0 / ny
    i = (np.arange(nx) + 0.5) / nx
    base_lat = 88.0 * (0.55 * u + 0.45 * u**3)
    lat = base_lat[:, None] + 2.0 * np.sin(2 * np.pi * i)[None] * np.cos(0.5 * np.pi * u)[:, None]
    lon = (360.0 * i[None] + 6.0 * np.sin(np.pi * u)[:, None]) % 360.0
    return lat, np.broadcast_to(lon, lat.shape).copy()


def cmip_levels(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The world's levels and the midpoints between them (m), and their bounds (nlev, 2)."""
    levels = np.sort(np.concatenate([depth, 0.5 * (depth[1:] + depth[:-1])]))
    edges = np.concatenate([[0.0], 0.5 * (levels[1:] + levels[:-1]), [levels[-1] + 0.5 * (levels[-1] - levels[-2])]])
    return levels, np.stack([edges[:-1], edges[1:]], axis=1)


@dataclass
class Layout:
    """Where and how the world is written: the native grid's centres (and corners), levels,
    land, and the interpolation from the preset grid."""

    kind: str
    lat: np.ndarray  # 1-D (1deg) or 2-D (curvilinear)
    lon: np.ndarray
    lat_bnds: np.ndarray  # (ny, 2) or (ny, nx, 4)
    lon_bnds: np.ndarray
    lev: np.ndarray  # m
    lev_bnds: np.ndarray
    ocean: np.ndarray  # (nlev, ny, nx) bool
    cells: np.ndarray  # (4, n) bilinear corners on the preset grid
    weights: np.ndarray  # (4, n)
    nearest: np.ndarray  # (n,) flat index of the preset cell holding each point


def _points(kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "1deg":
        lat, lon = regular_1deg()
        return np.meshgrid(lat, lon, indexing="ij")
    return curvilinear()


def make_layout(kind: str, grid: Grid, land_1deg: np.ndarray) -> Layout:
    """The layout of ``kind`` (``1deg`` or ``curvilinear``) for a world on ``grid``;
    ``land_1deg`` (180, 360) is the shipped 1 degree land mask (1 land)."""
    lat2, lon2 = _points(kind)
    lev, lev_bnds = cmip_levels(grid.depth)
    cells, weights = horizontal_corners(grid, lat2.ravel(), lon2.ravel())
    iy, ix = nearest_cell(grid, lat2.ravel(), lon2.ravel())
    nearest = iy * len(grid.lon) + ix
    fine_land = land_1deg[np.clip(np.floor(lat2 + 90).astype(int), 0, 179), np.floor(lon2).astype(int) % 360] > 0
    inside = level_weights(grid.depth, lev)
    coarse = grid.ocean.reshape(len(grid.depth), -1)[:, nearest].astype("f4")
    ocean = to_levels(coarse[None], inside)[0] > 0.999  # both levels around a point's depth are ocean
    ocean = ocean.reshape((len(lev),) + lat2.shape) & ~fine_land[None]
    if kind == "1deg":
        lat, lon = lat2[:, 0], lon2[0]
        lat_bnds = np.stack([lat - 0.5, lat + 0.5], axis=1)
        lon_bnds = np.stack([lon - 0.5, lon + 0.5], axis=1)
    else:
        lat, lon = lat2, lon2
        lat_bnds, lon_bnds = corners_from_centres(lat2, lon2)
    return Layout(kind, lat, lon, lat_bnds, lon_bnds, lev, lev_bnds, ocean, cells, weights, nearest)


def interpolate(temperature: np.ndarray, grid: Grid, layout: Layout) -> np.ndarray:
    """(t, nz, ny, nx) degC on the preset grid (NaN on land) -> (t, nlev, NY, NX) degC on the
    layout's grid: bilinear between ocean centres (the holding cell where no corner is
    ocean), linear in depth; NaN on the layout's land."""
    t, nz = temperature.shape[:2]
    flat = temperature.reshape(t, nz, -1)
    ocean = grid.ocean.reshape(nz, -1)
    corners = np.nan_to_num(flat[:, :, layout.cells])  # (t, nz, 4, n)
    w = layout.weights[None] * ocean[:, layout.cells]  # (nz, 4, n)
    total = w.sum(axis=1)
    mixed = (corners * w[None]).sum(axis=2) / np.where(total > 0, total, 1.0)[None]
    horizontal = np.where(total[None] > 0, mixed, flat[:, :, layout.nearest])
    horizontal = _keep_cell_means(horizontal, flat, layout).astype("f4")
    out = to_levels(horizontal, level_weights(grid.depth, layout.lev))
    out = out.reshape((t, len(layout.lev)) + layout.ocean.shape[1:])
    out[:, ~layout.ocean] = np.nan
    return out


def _keep_cell_means(fine: np.ndarray, coarse: np.ndarray, layout: Layout) -> np.ndarray:
    """``fine`` (t, nz, n) shifted in each preset cell so that its area mean over the cell's
    ocean points is the cell's value: the preset world is then the cell means of the finer
    one, as a coarse model's field is of a finer model's (bilinear alone smooths it)."""
    n_cells = coarse.shape[-1]
    area = np.cos(np.deg2rad(_points_lat(layout))).ravel()
    out = fine.copy()
    for k in range(fine.shape[1]):
        w = area * layout.ocean[2 * k].ravel()  # world level k is layout level 2k (midpoints between)
        weight = np.bincount(layout.nearest, w, minlength=n_cells)
        for t in range(fine.shape[0]):
            mean = np.bincount(layout.nearest, w * fine[t, k], minlength=n_cells) / np.where(weight > 0, weight, 1.0)
            out[t, k] += np.nan_to_num(coarse[t, k] - mean)[layout.nearest]
    return out


def _points_lat(layout: Layout) -> np.ndarray:
    return layout.lat if layout.lat.ndim == 2 else np.repeat(layout.lat[:, None], len(layout.lon), axis=1)


def step_bounds(start_year: int, steps: np.ndarray, steps_per_year: int, calendar: str) -> np.ndarray:
    """(n, 2) cftime start and end of each step (months, or 365/steps_per_year-day periods)."""
    if steps_per_year == 12:
        edges = np.append(np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30]), 365.0)
    else:
        edges = np.append(_day_of_step(steps_per_year) - 0.5 * 365.0 / steps_per_year, 365.0)
    out = np.empty((len(steps), 2), dtype=object)
    for n, step in enumerate(steps):
        year, within = start_year + int(step) // steps_per_year, int(step) % steps_per_year
        jan1 = cftime.datetime(year, 1, 1, calendar=calendar)
        leap = calendar == "standard" and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        for k, day in enumerate((edges[within], edges[within + 1])):
            out[n, k] = jan1 + dt.timedelta(days=float(day) + (1.0 if leap and day >= 59 else 0.0))
    return out


def decade_files(start_year: int, n_steps: int, steps_per_year: int) -> list[tuple[int, int]]:
    """Step ranges of the decade files (model years 1-10, 11-20, ... as CMIP6 splits them)."""
    ranges, step = [], 0
    while step < n_steps:
        year = start_year + step // steps_per_year
        last_year = (year - 1) // 10 * 10 + 10
        stop = min(n_steps, (last_year - start_year + 1) * steps_per_year)
        ranges.append((step, stop))
        step = stop
    return ranges
