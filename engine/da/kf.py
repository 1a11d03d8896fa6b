"""Reference Kalman filter in the model world's mode space: the accuracy ceiling (DESIGN section 10).

The model world (:mod:`engine.world.synthetic`) is linear-Gaussian in its K mode amplitudes, so a
Kalman filter on those amplitudes is (nearly) the optimal estimator of its large-scale
part. Choices, and what makes it only *nearly* optimal:

* **State**: the K amplitudes, plus (``forced=True``, the historical run) the amplitudes of
  the world's warming and volcanic patterns as two slow random walks: the filter does not
  know the forcing history, it only lets those two amplitudes drift by
  ``forced_step_std`` per step and learns them from the observations.
* **Forecast**: ``a_f = M a_a``, ``P_f = M P_a M^T + Q`` with the world's ``transition`` and
  ``noise_cov`` (identity and the random-walk variance for the forced pair). In the
  historical run the ENSO pair follows the observed index, not the linear model: model error
  the filter does not know about.
* **Observation operator**: ``H`` = the patterns at the observed cells (super-observations
  are cell values, see :mod:`engine.observe.network`).
* **Observation error**: super-observation error variance + the world's eddy covariance,
  since eddies are not in the state (representativeness noise). It is block-diagonal per
  water column with the exact vertical eddy correlation (Argo profiles see one eddy at
  every level); horizontal eddy correlation between neighbouring cells (0.002 at one cell on
  the 5 degree grid, larger on finer grids) and the eddies' temporal correlation
  (``eddy_phi`` ~ 0.5 per pentad) are ignored.
* **Update**: information form, ``P_a^-1 = P_f^-1 + H^T R^-1 H`` written as
  ``P_a = S (I + S^T H^T R^-1 H S)^-1 S^T`` with ``P_f = S S^T`` (no inverse of ``P_f``, and
  the matrix inverted has eigenvalues >= 1), so the cost is O(K^2 n_obs), never O(n_obs^3).
* **Eddies** (``estimate_eddies=True``): after the mode update, the eddy part in each
  observed column is estimated from the residual, ``e = C_e R^-1 (y - H a_a)`` (the exact
  conditional mean given the prior above), at every level of the column. Unobserved columns
  get no eddy estimate.

One deterministic filter serves every ensemble member: the covariance and the gain do not
depend on the data, so each member only keeps its own mean amplitudes (its analysis differs
when it sees perturbed observations). The ``background`` passed to :meth:`KalmanFilter.assimilate`
is used only for its shape (the member count): the filter's background is its own forecast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg

from engine.observe.gridding import ObsStep

MIN_ERROR = 1e-3  # degC: floor of the observation error std, so perfect observations stay finite


class KalmanFilter:
    """Kalman filter on pattern amplitudes, with eddies as correlated observation noise.

    Parameters
    ----------
    patterns : ndarray (K, nz, ny, nx)
        Field per unit amplitude (degC), zero on land.
    transition, noise_cov : ndarray (K, K)
        ``a[t+1] = transition @ a[t] + e``, ``e ~ N(0, noise_cov)``.
    initial_cov : ndarray (K, K)
        Covariance of the first background (mean zero: the climatology).
    eddy_std : ndarray (nz, ny, nx)
        Standard deviation of the unresolved (eddy) part, zero on land.
    eddy_vertical_corr : ndarray (nz, nz)
        Vertical correlation of the eddy part.
    estimate_eddies : bool
        Add the conditional-mean eddy estimate in observed columns (see the module notes).

    Attributes
    ----------
    mean : ndarray (members, K) or None
        Analysis amplitudes of the last step (None before the first step).
    cov : ndarray (K, K)
        Analysis covariance of the last step (the initial one before the first step).
    """

    name = "kf"

    def __init__(
        self,
        patterns: np.ndarray,
        transition: np.ndarray,
        noise_cov: np.ndarray,
        initial_cov: np.ndarray,
        eddy_std: np.ndarray,
        eddy_vertical_corr: np.ndarray,
        estimate_eddies: bool = True,
    ) -> None:
        k = len(patterns)
        if transition.shape != (k, k) or noise_cov.shape != (k, k) or initial_cov.shape != (k, k):
            raise ValueError(f"transition, noise_cov and initial_cov must be ({k}, {k}) for {k} patterns")
        self.shape = patterns.shape[1:]
        nz = self.shape[0]
        # float32 storage (the paper grid's stack is ~400 MB); gathers at observed cells go to float64
        self.patterns = np.asarray(patterns, dtype="f4").reshape(k, nz, -1)  # (K, nz, cells)
        self.transition = np.asarray(transition, dtype="f8")
        self.noise_cov = np.asarray(noise_cov, dtype="f8")
        self.initial_cov = np.asarray(initial_cov, dtype="f8")
        self.eddy_std = np.asarray(eddy_std, dtype="f8").reshape(nz, -1)
        self.eddy_vertical_corr = np.asarray(eddy_vertical_corr, dtype="f8")
        self.estimate_eddies = estimate_eddies
        self.reset()

    @classmethod
    def from_world(
        cls,
        world: Any,
        forced: bool | None = None,
        forced_initial_std: tuple[float, float] = (0.3, 0.2),
        forced_step_std: tuple[float, float] = (0.002, 0.01),
        estimate_eddies: bool = True,
    ) -> KalmanFilter:
        """The filter for a :class:`~engine.world.synthetic.ModelWorld`.

        Parameters
        ----------
        forced : bool, optional
            Add the warming and volcanic pattern amplitudes (degC at unit pattern) as random
            walks; default: when ``world.run == "historical"``.
        forced_initial_std, forced_step_std : (float, float)
            (warming, volcanic) prior std at the first step and random-walk std per step. The
            default steps let the warming amplitude move ~0.02 degC a year and the volcanic
            one ~0.1 degC in half a year, the size of the world's signals.
        """
        forced = world.run == "historical" if forced is None else forced
        patterns, transition, noise = world.patterns, world.transition, world.noise_cov
        initial = linalg.solve_discrete_lyapunov(transition, noise)  # the stationary covariance (~I)
        if forced:
            patterns = np.concatenate([patterns, world.warming_pattern[None], world.volcanic_pattern[None]])
            transition = linalg.block_diag(transition, np.eye(2))
            noise = linalg.block_diag(noise, np.diag(np.square(forced_step_std)))
            initial = linalg.block_diag(initial, np.diag(np.square(forced_initial_std)))
        return cls(
            patterns,
            transition,
            noise,
            initial,
            world.eddy_std,
            world.eddy_vertical_corr,
            estimate_eddies=estimate_eddies,
        )

    def reset(self) -> None:
        """Forget the state: the next step starts from the climatology (zero mean, initial covariance)."""
        self.mean: np.ndarray | None = None
        self.cov = self.initial_cov.copy()
        self._last_step: int | None = None

    def forecast(self, n_steps: int = 1) -> None:
        """Advance mean and covariance ``n_steps`` steps with the linear model."""
        for _ in range(n_steps):
            if self.mean is not None:
                self.mean = self.mean @ self.transition.T
            cov = self.transition @ self.cov @ self.transition.T + self.noise_cov
            self.cov = 0.5 * (cov + cov.T)

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        """Forecast to ``obs.step``, update with ``obs``; analysis anomalies shaped like ``background``.

        The first call (after :meth:`reset`, or when the member count changes) starts from the
        initial state; later calls forecast ``obs.step - previous step`` steps (at least one).
        """
        members = background.shape[0]
        if self.mean is None or self.mean.shape[0] != members:
            self.reset()
            self.mean = np.zeros((members, len(self.cov)))
        else:
            self.forecast(max(1, obs.step - self._last_step))
        self._last_step = obs.step
        eddies = self._update(obs, members)
        return self._field(eddies, members)

    def _columns(self, obs: ObsStep, members: int) -> dict[str, np.ndarray]:
        """Observed water columns: observed-level flags, values, eddy std and observation error covariance."""
        nz = self.shape[0]
        mask = obs.mask.reshape(nz, -1) > 0
        cols = np.flatnonzero(mask.any(axis=0))
        seen = mask[:, cols].T  # (ncol, nz)
        values = np.broadcast_to(obs.anomaly, (members,) + self.shape).reshape(members, nz, -1)
        y = values[:, :, cols].transpose(0, 2, 1) * seen  # (members, ncol, nz), 0 where not observed
        error = np.maximum(obs.error.reshape(nz, -1)[:, cols].T, MIN_ERROR)
        eddy = self.eddy_std[:, cols].T  # (ncol, nz), every level of the column
        s = eddy * seen
        # unobserved levels: unit variance and no coupling, with zero rows in H and y, so they drop out
        r = (
            s[:, :, None] * s[:, None, :] * self.eddy_vertical_corr
            + np.eye(nz) * np.where(seen, error**2, 1.0)[:, :, None]
        )
        h = self.patterns[:, :, cols].transpose(2, 1, 0).astype("f8") * seen[..., None]  # (ncol, nz, K)
        return {"cols": cols, "seen": seen, "y": y, "eddy": eddy, "r": r, "h": h}

    def _update(self, obs: ObsStep, members: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Information-form update of mean and covariance.

        Returns the observed columns and their eddy estimate (ncol, nz, members), or None
        (no observations, or eddies not estimated).
        """
        if not np.any(obs.mask):
            return None
        c = self._columns(obs, members)
        k = len(self.cov)
        innovation = c["y"] - np.einsum("czk,mk->mcz", c["h"], self.mean)
        chol = np.linalg.cholesky(c["r"])
        # whiten H and the innovations with the per-column Cholesky factor: R^-1 = L^-T L^-1
        white = np.linalg.solve(chol, np.concatenate([c["h"], innovation.transpose(1, 2, 0)], axis=2))
        # contiguous copies: matmul on the strided views misses BLAS (30x slower)
        hw = np.ascontiguousarray(white[..., :k]).reshape(-1, k)
        dw = np.ascontiguousarray(white[..., k:]).reshape(-1, members)
        s = np.linalg.cholesky(self.cov)
        inner = np.eye(k) + s.T @ (hw.T @ hw) @ s  # eigenvalues >= 1: well conditioned
        cov = s @ linalg.cho_solve(linalg.cho_factor(inner, lower=True), s.T)
        self.cov = 0.5 * (cov + cov.T)
        self.mean = self.mean + (dw.T @ hw) @ self.cov  # K = P_a H^T R^-1
        if not self.estimate_eddies:
            return None
        residual = (c["y"] - np.einsum("czk,mk->mcz", c["h"], self.mean)) * c["seen"]
        weights = np.linalg.solve(c["r"], residual.transpose(1, 2, 0))  # R^-1 (y - H a_a), (ncol, nz, members)
        cov_e = c["eddy"][:, :, None] * c["eddy"][:, None, :] * self.eddy_vertical_corr  # all levels of the column
        return c["cols"], cov_e @ weights

    def _field(self, eddies: tuple[np.ndarray, np.ndarray] | None, members: int) -> np.ndarray:
        """Analysis anomaly field (members, nz, ny, nx): patterns^T a (+ eddies in observed columns)."""
        k, nz = len(self.cov), self.shape[0]
        field = (self.mean.astype("f4") @ self.patterns.reshape(k, -1)).reshape(members, nz, -1)
        if eddies is not None:
            cols, values = eddies
            field[:, :, cols] += values.transpose(2, 1, 0)
        return field.reshape((members,) + self.shape).astype("f4")

    def error_std(self) -> np.ndarray:
        """(nz, ny, nx) standard deviation of the mode part's error from the current covariance (eddies excluded)."""
        k = len(self.cov)
        s = np.linalg.cholesky(self.cov)
        loadings = s.T.astype("f4") @ self.patterns.reshape(k, -1)  # (K, cells): P = S S^T
        return np.sqrt((loadings**2).sum(axis=0)).reshape(self.shape)
