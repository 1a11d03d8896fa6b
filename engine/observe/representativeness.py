"""Representativeness error: how far a point measurement may be from its cell's mean.

A profile samples one point at one instant; the analysis holds a cell- and step-mean. The
difference depends on depth, place and grid (DESIGN section 6): in the tropical
thermocline an isotherm heaved by ten metres moves the temperature at a fixed depth by
more than a degree, at a front an eddy's displacement does the same at the surface, and in
the abyss both are small. :func:`representativeness_error` turns the grid's own
climatology into that error (see :class:`engine.config.ObsErrorSpec`); it is shared by
every profile in a cell, so a super-observation's error never falls below it, and the
OSSE draws it the same way (:func:`shared_error_fields`) so that training sees it too.
"""

from __future__ import annotations

import numpy as np

from engine.config import ObsErrorSpec
from engine.grid import EARTH_RADIUS_M, Grid


def _vertical_gradient(temperature: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """|dT/dz| (degC/m) per cell: the mean of the one-sided gradients to the ocean levels above and below."""
    step = np.abs(np.diff(temperature, axis=0)) / np.diff(depth)[:, None, None]  # NaN where either is land
    nan = np.full((1,) + temperature.shape[1:], np.nan)
    sides = np.stack([np.concatenate([nan, step]), np.concatenate([step, nan])])
    valid = np.isfinite(sides)
    count = valid.sum(axis=0)
    return np.where(count > 0, np.where(valid, sides, 0.0).sum(axis=0) / np.maximum(count, 1), 0.0)


def _one_sided(temperature: np.ndarray, axis: int, spacing: np.ndarray, periodic: bool) -> np.ndarray:
    """|dT/dx| along ``axis`` (degC/m): the mean of the one-sided differences to ocean neighbours."""
    if periodic:
        forward = np.abs(np.roll(temperature, -1, axis) - temperature)
        backward = np.abs(temperature - np.roll(temperature, 1, axis))
    else:
        step = np.abs(np.diff(temperature, axis=axis))
        pad = np.full_like(np.take(temperature, [0], axis=axis), np.nan)
        forward = np.concatenate([step, pad], axis=axis)
        backward = np.concatenate([pad, step], axis=axis)
    sides = np.stack([forward, backward])
    valid = np.isfinite(sides)
    count = valid.sum(axis=0)
    mean = np.where(valid, sides, 0.0).sum(axis=0) / np.maximum(count, 1)
    return np.where(count > 0, mean, 0.0) / spacing


def horizontal_gradient(grid: Grid) -> np.ndarray:
    """|grad_h T| (degC/m) of the grid's climatology per cell, from ocean neighbours only."""
    temperature = np.where(grid.ocean, grid.climatology, np.nan)
    dy = np.deg2rad(grid.spec.resolution) * EARTH_RADIUS_M
    dx = dy * np.maximum(np.cos(np.deg2rad(grid.lat)), 0.05)[None, :, None]
    northward = _one_sided(temperature, 1, np.asarray(dy), periodic=False)
    eastward = _one_sided(temperature, 2, dx, periodic=True)
    return np.hypot(northward, eastward)


def vertical_gradient(grid: Grid) -> np.ndarray:
    """|dT/dz| (degC/m) of the grid's climatology per cell, from ocean neighbours only; 0 on land."""
    return _vertical_gradient(np.where(grid.ocean, grid.climatology, np.nan), grid.depth) * grid.ocean


def front_error(grid: Grid, spec: ObsErrorSpec) -> np.ndarray:
    """(nz, ny, nx) the fronts' part of the representativeness error (degC): the eddy
    displacement times the horizontal gradient, for the mesoscale share a cell averages."""
    cell_km = grid.spec.resolution * np.deg2rad(1.0) * EARTH_RADIUS_M / 1000.0
    mesoscale_share = cell_km**2 / (cell_km**2 + spec.mesoscale_km**2)
    return np.sqrt(mesoscale_share) * spec.eddy_displacement_km * 1000.0 * horizontal_gradient(grid)


def representativeness_error(grid: Grid, spec: ObsErrorSpec) -> np.ndarray:
    """(nz, ny, nx) representativeness error std (degC) of a point for its cell mean; 0 on land.

    All zeros when ``spec.representativeness`` is off.
    """
    if not spec.representativeness:
        return np.zeros(grid.shape, "f4")
    variance = (spec.heave_m * vertical_gradient(grid)) ** 2 + front_error(grid, spec) ** 2 + spec.floor**2
    return (np.sqrt(variance) * grid.ocean).astype("f4")


def shared_error_fields(
    repr_error: np.ndarray, depth: np.ndarray, vertical_scale_m: float, rng: np.random.Generator, n_steps: int
) -> np.ndarray:
    """(n_steps, nz, ny, nx) draws of the shared error: N(0, repr_error) per cell and step,
    correlated in the vertical as an AR(1) in depth with e-folding ``vertical_scale_m``
    (a heaved thermocline errs alike at neighbouring levels)."""
    nz = repr_error.shape[0]
    white = rng.standard_normal((n_steps, *repr_error.shape)).astype("f4")
    rho = np.exp(-np.diff(depth) / vertical_scale_m).astype("f4")
    for k in range(1, nz):
        white[:, k] = rho[k - 1] * white[:, k - 1] + np.sqrt(1.0 - rho[k - 1] ** 2) * white[:, k]
    return white * repr_error


def superobs_error(instrument_weight_sum: np.ndarray, repr_error: np.ndarray) -> np.ndarray:
    """A super-observation's error std: the instrument errors averaged over its profiles
    (``1 / sqrt(sum 1/e_i^2)``) plus, in quadrature, the representativeness error they share."""
    return np.sqrt(1.0 / instrument_weight_sum + np.asarray(repr_error, "f8") ** 2)
