"""Regridding a model's native ``thetao`` to a preset grid: pure functions over arrays.

Vertically, linear interpolation to the preset's levels (none below the model's deepest
level). Horizontally, first-order conservative remapping: on a rectilinear native grid by
xarray-regrid (cell edges midway between the centres), on a curvilinear one by a sparse
matrix of cdo ``gencon`` weights (computed once per run by :mod:`engine.io.cdo`, applied
here to every time chunk). Both renormalise by the share of the target cell the model
covers with ocean, and leave a cell missing where that share is under half, as the preset
grid itself calls a cell ocean where less than half of it is land (:func:`engine.grid.build_grid`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import sparse

from engine.grid import Grid

MIN_COVER = 0.5  # the share of a target cell the model's ocean must cover


@dataclass(frozen=True)
class LevelWeights:
    """Linear interpolation from source levels to target levels (clamped at the top)."""

    lower: np.ndarray  # (nz,) index of the source level above
    upper: np.ndarray  # (nz,) index of the source level below
    frac: np.ndarray  # (nz,) weight of the level below
    inside: np.ndarray  # (nz,) bool: the target level is not deeper than the deepest source level


def level_weights(source: np.ndarray, target: np.ndarray) -> LevelWeights:
    """Weights from source levels (m, increasing) to target levels (m)."""
    source, target = np.asarray(source, "f8"), np.asarray(target, "f8")
    if len(source) == 1:
        zeros = np.zeros(len(target), "i8")
        return LevelWeights(zeros, zeros, np.zeros(len(target)), target <= source[0])
    upper = np.clip(np.searchsorted(source, target), 1, len(source) - 1)
    lower = upper - 1
    frac = np.clip((target - source[lower]) / (source[upper] - source[lower]), 0.0, 1.0)
    return LevelWeights(lower, upper, frac, target <= source[-1] + 1e-6)


def to_levels(values: np.ndarray, weights: LevelWeights) -> np.ndarray:
    """(t, nlev, ...) -> (t, nz, ...): NaN below the deepest level or next to a missing one."""
    shape = (1, -1) + (1,) * (values.ndim - 2)
    frac = weights.frac.reshape(shape).astype(values.dtype)
    out = values[:, weights.lower] * (1 - frac) + values[:, weights.upper] * frac
    out[:, ~weights.inside] = np.nan
    return out


def target_grid(grid: Grid) -> xr.Dataset:
    """The preset's cell centres as the Dataset xarray-regrid maps onto."""
    return xr.Dataset(coords={"lat": ("lat", grid.lat), "lon": ("lon", grid.lon)})


def regrid_rectilinear(values: np.ndarray, lat: np.ndarray, lon: np.ndarray, grid: Grid) -> np.ndarray:
    """(t, nz, nlat, nlon) on 1-D lat/lon (lon in [0, 360), sorted) -> (t, nz, grid lat, grid lon)."""
    import xarray_regrid  # noqa: F401  (registers the .regrid accessor; here: it is slow to import)

    da = xr.DataArray(values, dims=("time", "depth", "lat", "lon"), coords={"lat": lat, "lon": lon})
    out = da.regrid.conservative(target_grid(grid), latitude_coord="lat", skipna=True, nan_threshold=MIN_COVER)
    return np.asarray(out.transpose("time", "depth", "lat", "lon").values, dtype="f4")


def weights_matrix(src: np.ndarray, dst: np.ndarray, weights: np.ndarray, n_src: int, n_dst: int) -> sparse.csr_matrix:
    """SCRIP links (0-based source and destination cells, weights) as a (n_dst, n_src) matrix."""
    return sparse.csr_matrix((weights, (dst, src)), shape=(n_dst, n_src))


def regrid_sparse(values: np.ndarray, matrix: sparse.csr_matrix, grid: Grid) -> np.ndarray:
    """(t, nz, ny, nx) native -> (t, nz, grid lat, grid lon) with remapping weights ``matrix``,
    renormalised by the weight of the cells that hold a value."""
    t, nz = values.shape[:2]
    flat = values.reshape(t * nz, -1).T  # (n_src, t*nz)
    valid = np.isfinite(flat)
    total = matrix @ np.where(valid, flat, 0.0).astype("f8")
    cover = matrix @ valid.astype("f8")
    full = np.asarray(matrix.sum(axis=1)).ravel()[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where((cover >= MIN_COVER * full) & (cover > 0), total / cover, np.nan)
    return out.T.reshape((t, nz) + grid.shape[1:]).astype("f4")


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def corners_from_centres(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell corners (ny, nx, 4; counter-clockwise) of a 2-D grid that has no bounds: the mean
    of the four surrounding centres, on the sphere (no seam), extrapolated at the edges."""
    xyz = _unit_vectors(lat, lon)
    padded = np.pad(xyz, ((1, 1), (1, 1), (0, 0)), mode="reflect", reflect_type="odd")
    mean = 0.25 * (padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:])  # (ny+1, nx+1, 3)
    mean /= np.linalg.norm(mean, axis=-1, keepdims=True)
    clat = np.rad2deg(np.arcsin(np.clip(mean[..., 2], -1, 1)))
    clon = np.rad2deg(np.arctan2(mean[..., 1], mean[..., 0])) % 360.0
    order = [(0, 0), (0, 1), (1, 1), (1, 0)]  # (j, i), (j, i+1), (j+1, i+1), (j+1, i)
    ny, nx = lat.shape
    corner_lat = np.stack([clat[a : a + ny, b : b + nx] for a, b in order], axis=-1)
    corner_lon = np.stack([clon[a : a + ny, b : b + nx] for a, b in order], axis=-1)
    return corner_lat, corner_lon


def combined_ocean(regridded: np.ndarray, grid: Grid) -> np.ndarray:
    """The preset's ocean where the regridded model also has a value (depth, lat, lon)."""
    return grid.ocean & np.isfinite(regridded)
