"""Optimal interpolation, the classical baseline (DESIGN section 10).

A local OI in the style of EN4 (Good et al. 2013, doi:10.1002/2013JC009067): a
damped-persistence background and Gaussian background-error covariances, solved locally
with the nearest observations. :func:`tune_oi` grid-searches its parameters against any
score.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from engine.grid import Grid
from engine.observe.gridding import ObsStep

EARTH_RADIUS_KM = 6371.0
MIN_ERROR = 1e-3  # degC: floor of the observation error std (as in engine.observe.gridding)


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(..., 3) points on the unit sphere: chord distances between them are exact and cheap."""
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


def length_scale(lat: np.ndarray, length_km: float, polar_length_km: float) -> np.ndarray:
    """Background-error length scale (km): ``length_km`` at the equator, ``polar_length_km`` at the poles.

    ``L = L_pole + (L_eq - L_pole) cos^2(lat)``: long scales in the tropics (equatorial
    waves), short ones at high latitudes, following the Rossby radius.
    """
    return polar_length_km + (length_km - polar_length_km) * np.cos(np.deg2rad(lat)) ** 2


def gaussian_correlation(distance2_km2: np.ndarray, l1: np.ndarray, l2: np.ndarray) -> np.ndarray:
    """Gaussian correlation with a length scale varying in space (Paciorek & Schervish 2004).

    ``(2 l1 l2 / (l1^2 + l2^2))^(3/2) exp(-d^2 / (l1^2 + l2^2))``: for ``l1 == l2 == L`` the
    usual ``exp(-d^2 / (2 L^2))``; with ``d`` the chord (a distance in 3-D space) the matrix
    stays positive definite however L varies, which a naive ``exp(-d^2 / (2 L_x L_o))``
    does not guarantee.
    """
    total = l1 * l1 + l2 * l2
    ratio = l1 * l2
    ratio *= 2.0
    ratio /= total
    # in place: this runs on (points, n, n) stacks and dominates the OI's cost
    out = np.divide(distance2_km2, total)
    np.negative(out, out=out)
    np.exp(out, out=out)
    out *= ratio * np.sqrt(ratio)
    return out


class OptimalInterpolation:
    """Local optimal interpolation, EN4 style, on each level independently.

    Background: the previous analysis damped toward zero anomaly (climatology),
    ``x_b = exp(-step_days / memory_days) * x_a(previous)``. Background-error covariance
    between points i, j of one level::

        B_ij = s_i s_j [(1 - f) C(d_ij; L_i, L_j) + f delta_ij]

    with ``s = background_scale * background_std``, ``C`` the Gaussian of
    :func:`gaussian_correlation` on chord distance, ``L`` from :func:`length_scale`, and ``f``
    (``small_scale_fraction``) a share of variance with no horizontal correlation (eddies
    unresolved by the grid: a super-observation then corrects its own cell more than its
    neighbours). Levels are independent (no vertical covariance): profiles observe most
    levels at once, and it keeps each solve small. Each ocean point uses its ``n_obs`` nearest
    super-observations of its level (``scipy.spatial.cKDTree`` on unit-sphere coordinates)
    within ``cutoff`` length scales; observation error variance ``obs.error**2``. All points
    of a level are solved at once (stacked ``n_obs x n_obs`` systems): ~0.2 s for a coarse
    Argo-era step (15,000 super-observations) on one CPU core.

    The defaults were picked with :func:`tune_oi` on held-out coarse control years seen by the
    2010 network (docs/experiments.md). In the model
    world the patterns keep their scale in km at all latitudes, so the best polar length is
    not shorter than the equatorial one; with real observations a shorter polar scale (e.g.
    ``polar_length_km=400``, after Rossby-radius arguments) is the usual choice.

    Parameters
    ----------
    grid : Grid
    background_std : ndarray (nz,) or (nz, ny, nx)
        Climatological anomaly std (degC), e.g. a control run's per level; scaled by
        ``background_scale`` to give the background-error std.
    length_km, polar_length_km : float
        Gaussian length scale (km, the ``sigma`` of ``exp(-d^2 / 2 L^2)``) at the equator and
        at the poles.
    memory_days : float
        E-folding time of the background's damping toward climatology.
    background_scale, small_scale_fraction : float
        See above.
    n_obs : int
        Observations per local solve.
    step_days : float
        Length of a step (a pentad).
    cutoff : float
        Observations farther than ``cutoff * max(length_km, polar_length_km)`` are not used.
    """

    name = "oi"

    def __init__(
        self,
        grid: Grid,
        background_std: np.ndarray,
        length_km: float = 2000.0,
        polar_length_km: float = 3000.0,
        memory_days: float = 90.0,
        background_scale: float = 0.6,
        small_scale_fraction: float = 0.4,
        n_obs: int = 16,
        step_days: float = 5.0,
        cutoff: float = 3.5,
    ) -> None:
        if not 0.0 <= small_scale_fraction < 1.0:
            raise ValueError("small_scale_fraction must lie in [0, 1)")
        if min(length_km, polar_length_km, memory_days, step_days) <= 0 or n_obs < 1:
            raise ValueError("length scales, memory and step must be positive and n_obs at least 1")
        self.grid = grid
        self.length_km, self.polar_length_km = float(length_km), float(polar_length_km)
        self.memory_days, self.step_days = float(memory_days), float(step_days)
        self.small_scale_fraction, self.n_obs = float(small_scale_fraction), int(n_obs)
        nz = grid.shape[0]
        std = np.asarray(background_std, dtype="f8")
        std = np.broadcast_to(std.reshape(nz, 1, 1) if std.ndim == 1 else std, grid.shape)
        self.sigma = (background_scale * std * grid.ocean).reshape(nz, -1)  # background-error std
        lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
        self._xyz = unit_vectors(lat, lon).reshape(-1, 3)
        self._length = length_scale(lat, length_km, polar_length_km).reshape(-1)
        self._cutoff_chord = cutoff * max(length_km, polar_length_km) / EARTH_RADIUS_KM
        self._ocean = [np.flatnonzero(grid.ocean[k].reshape(-1)) for k in range(nz)]
        self._xyz32, self._length32 = self._xyz.astype("f4"), self._length.astype("f4")

    @classmethod
    def for_grid(cls, grid: Grid, config: Any, **params: Any) -> OptimalInterpolation:
        """The OI with the default (tuned) parameters and the model world's anomaly std as ``background_std``.

        ``config`` is an :class:`engine.config.Config` (its ``world`` spec sets the std
        map: the world is built to have realistic magnitudes, section 5, so it serves for
        real observations too); ``params`` override the constructor's defaults.
        """
        from engine.world.synthetic import ModelWorld  # the std map only: patterns are cheap, no run is simulated

        world = ModelWorld(grid, config.world, run="control", n_steps=1)
        return cls(grid, world.target_std, **params)

    @property
    def damping(self) -> float:
        """Factor applied to the previous analysis each step."""
        return math.exp(-self.step_days / self.memory_days)

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        """Analysis (members, nz, ny, nx): damped background + local OI increments, zero on land."""
        members, nz = background.shape[0], self.grid.shape[0]
        xb = (self.damping * np.asarray(background, dtype="f8")).reshape(members, nz, -1)
        y = np.broadcast_to(obs.anomaly, background.shape).reshape(members, nz, -1)
        mask, error = obs.mask.reshape(nz, -1) > 0, obs.error.reshape(nz, -1)
        analysis = xb.copy()
        for k in range(nz):  # levels are independent; everything inside a level is batched
            cells = np.flatnonzero(mask[k])
            points = self._ocean[k]
            if len(cells) == 0 or len(points) == 0:
                continue
            weights, neighbours = self.weights(k, points, cells, error[k, cells])
            innovation = y[:, k, cells] - xb[:, k, cells]  # (members, n_obs at this level)
            analysis[:, k, points] += np.einsum("pj,mpj->mp", weights, innovation[:, neighbours])
        return (analysis.reshape(background.shape) * self.grid.ocean).astype("f4")

    def weights(
        self, level: int, points: np.ndarray, cells: np.ndarray, error: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """OI weights ``B_xo (B_oo + R)^-1`` of each point's nearest observations at one level.

        Parameters
        ----------
        level : int
        points, cells : ndarray of int
            Flat (lat, lon) indices of the analysed points and of the observed cells.
        error : ndarray
            Observation error std at ``cells``.

        Returns
        -------
        weights : ndarray (n_points, n) float64
            Zero for neighbours beyond the cutoff.
        neighbours : ndarray (n_points, n) int
            Indices into ``cells``.
        """
        n = min(self.n_obs, len(cells))
        chord, idx = cKDTree(self._xyz[cells]).query(self._xyz[points], k=n, distance_upper_bound=self._cutoff_chord)
        chord, idx = chord.reshape(len(points), n), idx.reshape(len(points), n)
        valid = idx < len(cells)  # the tree marks missing neighbours with index len(cells)
        idx = np.where(valid, idx, 0)
        near = cells[idx]  # (points, n) flat cells of the neighbours
        # the (points, n, n) stacks are float32 (twice as fast; weights good to ~1e-4), the solve float64
        xyz = self._xyz32[near]
        d2 = xyz @ xyz.transpose(0, 2, 1)  # squared chord = 2 - 2 cos(angle) on the unit sphere
        d2 *= -2.0
        d2 += 2.0
        np.maximum(d2, 0.0, out=d2)
        d2 *= np.float32(EARTH_RADIUS_KM**2)
        l_o = self._length32[near]
        c = gaussian_correlation(d2, l_o[:, :, None], l_o[:, None, :])
        f = self.small_scale_fraction
        if f > 0:
            c *= np.float32(1.0 - f)
            c += np.float32(f) * (near[:, :, None] == near[:, None, :])
        sigma_o = self.sigma[level, near] * valid  # 0 for missing neighbours: no covariance
        a = sigma_o[:, :, None] * sigma_o[:, None, :]
        a *= c
        diagonal = np.arange(n)
        a[:, diagonal, diagonal] += np.where(valid, np.maximum(error[idx], MIN_ERROR) ** 2, 1.0)  # missing: decoupled
        d2_xo = np.where(valid, chord, 0.0) ** 2 * EARTH_RADIUS_KM**2
        c_xo = (1.0 - f) * gaussian_correlation(d2_xo, self._length[points][:, None], self._length[near])
        c_xo += f * (near == points[:, None])
        b = self.sigma[level, points][:, None] * sigma_o * c_xo
        return np.linalg.solve(a, b[:, :, None])[:, :, 0], idx


def tune_oi(evaluate: Callable[[dict[str, Any]], float], grid_of_params: dict[str, list]) -> dict[str, Any]:
    """Grid search: the parameter set with the lowest score.

    Parameters
    ----------
    evaluate : callable
        Parameter dict -> score (lower is better), e.g. the RMSE of an OI cycled over held-out
        control years (see :func:`engine.evaluate.scoring.cycled_rmse`).
    grid_of_params : dict
        Parameter name -> candidate values; every combination is evaluated.

    Returns
    -------
    dict
        ``best`` (the parameter dict), ``score`` (its score) and ``table`` (a DataFrame, one
        row per combination with a ``score`` column, best first).
    """
    names = list(grid_of_params)
    rows = []
    for values in itertools.product(*(grid_of_params[name] for name in names)):
        params = dict(zip(names, values, strict=True))
        rows.append({**params, "score": float(evaluate(params))})
    if not rows:
        raise ValueError("grid_of_params gives no parameter set")
    table = pd.DataFrame(rows).sort_values("score", kind="stable").reset_index(drop=True)
    best = min(rows, key=lambda row: row["score"])
    return {"best": {name: best[name] for name in names}, "score": best["score"], "table": table}
