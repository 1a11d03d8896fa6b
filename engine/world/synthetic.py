"""The synthetic model world: control and historical runs (DESIGN section 5).

The temperature anomaly is the sum of

* **modes**: ``patterns[k] * a_k(t)`` for K smooth 3-D patterns whose amplitudes follow a
  linear inverse model ``a[t+1] = transition @ a[t] + noise``, ``noise ~ N(0, noise_cov)``.
  Modes 0 and 1 are the ENSO pair (a damped rotation); the others are independent AR(1)
  processes. Every amplitude has unit stationary variance, so the stationary covariance of
  ``a`` is the identity and the mode variance at a point is ``sum_k patterns[k]**2``.
* **eddies**: small-scale noise ``eddy_std * g`` where ``g`` is a unit-variance field,
  AR(1) in time with coefficient ``eddy_phi``, independent of the modes, with a separable
  correlation (see :class:`ModelWorld`), so a Kalman filter can treat it as
  observation-like (representativeness) noise.
* **forced** (historical run only): a linear warming trend and volcanic cooling dips.

Fields are computed lazily from the amplitudes: a slice costs time proportional to its
length (plus a short eddy spin-up) and never materialises the run; every step gets the
same values whichever slice it is asked in (eddy noise is seeded per step).
The patterns come from :mod:`engine.world.patterns`, the modes' dynamics from
:mod:`engine.world.modes`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr
from scipy import linalg, ndimage

from engine.config import WorldSpec
from engine.grid import Grid, step_day_of_year, step_times
from engine.memory import check_fits, world_bytes
from engine.world import patterns as wp
from engine.world.modes import lim_dynamics, oni_amplitudes

RUN_CODES = {"control": 0, "historical": 1}  # part of every random seed
NINO34_BOX = ((-5.0, 5.0), (190.0, 240.0))  # 5S-5N, 170W-120W
ERUPTIONS = {"El Chichon": 1982.0 + 93.0 / 365.0, "Pinatubo": 1991.0 + 165.0 / 365.0}  # 4 Apr 1982, 15 Jun 1991
VOLCANIC_PEAK_YEARS = 0.6  # cooling peaks this long after the eruption, mostly gone ~2.5 years later
VOLCANIC_EFOLD_M = 100.0
EDDY_EFOLD_M = 300.0  # depth decay of the eddy standard deviation
EDDY_VERTICAL_SCALE_M = 150.0  # exponential vertical correlation scale of the eddies
EDDY_SPINUP_TOLERANCE = 1e-9  # spin-up until phi**n is below this (slice consistency)
_AMPLITUDE_STREAM, _EDDY_STREAM, _PATTERN_STREAM = 7, 11, 101


def thetao_array(grid: Grid, times: np.ndarray, temperature: np.ndarray) -> xr.DataArray:
    """A world file's ``thetao`` (time, depth, lat, lon) degC with its CF coordinates."""
    coords = grid.coords()
    coords["time"] = xr.DataArray(
        times, dims="time", attrs={"standard_name": "time", "long_name": "step centre", "axis": "T"}
    )
    attrs = {
        "standard_name": "sea_water_potential_temperature",
        "long_name": "sea water potential temperature",
        "units": "degC",
    }
    return xr.DataArray(temperature, dims=("time", "depth", "lat", "lon"), coords=coords, attrs=attrs)


class ModelWorld:
    """A seeded synthetic ocean: control (noleap model years) or historical (1981-2020) run.

    Attributes
    ----------
    patterns : ndarray (K, nz, ny, nx) float32
        Mode patterns (degC per unit amplitude), zero on land; 0 and 1 are the ENSO pair.
    transition, noise_cov : ndarray (K, K)
        ``a[t+1] = transition @ a[t] + e``, ``e ~ N(0, noise_cov)``; stationary covariance I.
    memories_days : ndarray (K,)
        E-folding time of each mode (the ENSO pair: its damping time).
    eddy_phi : float
        Lag-one autocorrelation of the eddy part.
    eddy_std : ndarray (nz, ny, nx) float32
        Standard deviation of the eddy part, zero on land.
    eddy_sigma_cells : float
        Width (grid cells, both directions) of the Gaussian filter that makes the eddy field.
    eddy_correlation_1d : ndarray
        Horizontal eddy correlation at lags 0, 1, ... cells along one axis (0 beyond).
    eddy_vertical_corr : ndarray (nz, nz)
        Vertical eddy correlation ``exp(-|z1 - z2| / 150 m)``.
    target_std : ndarray (nz, ny, nx)
        Stationary std of the total anomaly (modes + eddies), which the patterns reproduce.
    thermocline_depth : ndarray (ny, nx)
        Thermocline depth (m) from the climatology, where subsurface variance peaks.
    warming_pattern, volcanic_pattern : ndarray (nz, ny, nx) float32
        Forced-response patterns, area mean 1 at the top level (historical run).

    Notes
    -----
    Eddy covariance model (exact: the noise is drawn on rows padded beyond the poles)::

        cov(e(t, z1, j1, i1), e(t + l, z2, j2, i2)) = eddy_std[z1, j1, i1] * eddy_std[z2, j2, i2]
            * eddy_phi**|l| * eddy_vertical_corr[z1, z2]
            * eddy_correlation_1d[|j1 - j2|] * eddy_correlation_1d[|i1 - i2| (periodic)]

    The horizontal scale is fixed in cells (``eddy_length_km / 2`` at the equator), so it
    shrinks in km towards the poles like the Rossby radius does.
    """

    def __init__(
        self,
        grid: Grid,
        spec: WorldSpec,
        run: str = "control",
        n_steps: int | None = None,
        start_year: int | None = None,
        oni: pd.DataFrame | None = None,
    ) -> None:
        if run not in RUN_CODES:
            raise ValueError(f"unknown run {run!r}; use 'control' or 'historical'")
        self.grid, self.spec, self.run = grid, spec, run
        self.steps_per_year = spec.steps_per_year
        self.step_days = 365.0 / spec.steps_per_year
        if run == "control":
            if n_steps is None:
                raise ValueError("a control run needs n_steps")
            self.calendar = "noleap"
            self.start_year = spec.control_start_year if start_year is None else start_year
        else:
            if oni is None:
                raise ValueError("the historical run needs the ENSO index: pass oni=engine.io.read_oni()")
            self.calendar = "standard"
            self.start_year = spec.historical_start_year if start_year is None else start_year
            if n_steps is None:
                n_steps = (spec.historical_end_year - self.start_year + 1) * spec.steps_per_year
        if n_steps <= 0:
            raise ValueError(f"n_steps must be positive, got {n_steps}")
        self.n_steps = int(n_steps)
        years = self.n_steps / spec.steps_per_year
        check_fits(
            world_bytes(grid.shape, spec.n_modes, self.n_steps),
            f"a {run} run of {years:.10g} years ({self.n_steps} steps) on the {grid.spec.name} grid",
            "ask for fewer years, or fewer world.n_modes",
        )
        self._oni = oni
        self._run_code = RUN_CODES[run]
        self._amplitudes: np.ndarray | None = None
        self._build()

    # --- construction -------------------------------------------------------------------

    def _build(self) -> None:
        """Patterns, dynamics and eddy statistics: deterministic in (grid, spec)."""
        grid, spec = self.grid, self.spec
        if spec.n_modes < 3:
            raise ValueError("n_modes must be at least 3 (the ENSO pair and one more)")
        rng = np.random.default_rng([spec.seed, _PATTERN_STREAM])
        self.transition, self.noise_cov, self.memories_days = lim_dynamics(spec, self.step_days, rng)
        ztc = wp.thermocline_depth(grid)
        wbc = wp.boundary_current_map(grid)
        design = wp.target_std(grid, ztc, wbc)
        eddy_std = wp.eddy_std_map(grid, design, wbc, spec.eddy_variance_fraction, EDDY_EFOLD_M)
        self._build_eddy_statistics()
        self._nino_box = wp.box_weights(grid, *NINO34_BOX)
        background = wp.background_patterns(
            rng,
            grid,
            ztc,
            spec.n_modes - 2,
            (spec.max_length_km, spec.min_length_km),
            (spec.min_efold_m, spec.max_efold_m),
        )
        patterns, target = wp.scale_modes(
            wp.enso_patterns(grid, ztc),
            background,
            (design, spec.enso_nino34_std),
            eddy_std,
            self._nino_box,
            self._eddy_box_variance(eddy_std[0], self._nino_box),
        )
        self.patterns = patterns
        self.target_std = target * grid.ocean
        self.eddy_std = eddy_std.astype("f4")
        self.thermocline_depth = ztc
        self.warming_pattern = wp.warming_pattern(grid, spec.warming_efold_m).astype("f4")
        self.volcanic_pattern = wp.volcanic_pattern(grid, VOLCANIC_EFOLD_M).astype("f4")

    def _build_eddy_statistics(self) -> None:
        tau_days = 5.0 * self.spec.eddy_memory_pentads
        self.eddy_phi = float(math.exp(-self.step_days / tau_days))
        self._eddy_spinup = (
            min(int(math.ceil(math.log(EDDY_SPINUP_TOLERANCE) / math.log(self.eddy_phi))), 2000)
            if self.eddy_phi > EDDY_SPINUP_TOLERANCE
            else 0
        )
        self.eddy_sigma_cells = 0.5 * self.spec.eddy_length_km / (wp.KM_PER_DEG * self.grid.spec.resolution)
        self.eddy_correlation_1d, per_axis = wp.gaussian_noise_statistics(self.eddy_sigma_cells)
        self._eddy_norm = per_axis**2  # variance of filtered white noise (lat and lon): divided out
        self._eddy_pad = len(self.eddy_correlation_1d) // 2  # noise rows beyond the poles: every row has unit variance
        z = self.grid.depth
        self.eddy_vertical_corr = np.exp(-np.abs(z[:, None] - z[None, :]) / EDDY_VERTICAL_SCALE_M)
        # lower-triangular: level 0 is the first independent draw, so the top level alone is cheap
        self._eddy_chol = np.linalg.cholesky(self.eddy_vertical_corr).astype("f4")

    def _eddy_box_variance(self, std_top: np.ndarray, box: np.ndarray) -> float:
        """Variance of the box mean of the top-level eddy field.

        The filter is a symmetric convolution, so the variance is the filtered (zero-padded)
        weights' sum of squares.
        """
        pad = self._eddy_pad
        smoothed = self._filter(np.pad(box * std_top, ((pad, pad), (0, 0))))
        return float((smoothed**2).sum() / self._eddy_norm)

    def _filter(self, fields: np.ndarray) -> np.ndarray:
        """Gaussian filter over the last two axes (lat zero beyond the padded edge, lon periodic)."""
        sigma = (0.0,) * (fields.ndim - 2) + (self.eddy_sigma_cells,) * 2
        modes = ("constant",) * (fields.ndim - 1) + ("wrap",)
        return ndimage.gaussian_filter(fields, sigma, mode=modes, truncate=4.0)

    # --- time ---------------------------------------------------------------------------

    def _check(self, start: int, stop: int | None) -> tuple[int, int]:
        stop = self.n_steps if stop is None else stop
        if not 0 <= start <= stop <= self.n_steps:
            raise ValueError(f"steps {start}:{stop} are outside the run (0:{self.n_steps})")
        return int(start), int(stop)

    def times(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Centre time of steps ``start:stop`` (datetime64 or cftime noleap)."""
        start, stop = self._check(start, stop)
        return step_times(self.start_year, stop - start, self.steps_per_year, self.calendar, first_step=start)

    def _decimal_years(self, start: int, stop: int) -> np.ndarray:
        steps = np.arange(start, stop)
        day = step_day_of_year(stop - start, self.steps_per_year, first_step=start)
        return self.start_year + steps // self.steps_per_year + day / 365.0

    # --- amplitudes and forcing ---------------------------------------------------------

    def amplitudes(self) -> np.ndarray:
        """(n_steps, K) float64 mode amplitudes for the whole run (computed once, cached).

        Started from a draw of the stationary distribution, so there is no spin-up drift. In
        the historical run the ENSO pair follows the observed Nino-3.4 index instead.
        """
        if self._amplitudes is None:
            rng = np.random.default_rng([self.spec.seed, self._run_code, _AMPLITUDE_STREAM])
            a = self._simulate(rng)
            if self.run == "historical":
                n = (self.patterns[:2, 0] * self._nino_box).sum(axis=(1, 2))
                a[:, :2] = oni_amplitudes(self._oni, self.times(), float(n[0]), float(n[1]))
            a.flags.writeable = False
            self._amplitudes = a
        return self._amplitudes

    def _simulate(self, rng: np.random.Generator) -> np.ndarray:
        k = len(self.transition)
        stationary = linalg.solve_discrete_lyapunov(self.transition, self.noise_cov)
        shocks = rng.standard_normal((self.n_steps, k)) @ np.linalg.cholesky(self.noise_cov).T
        a = np.empty((self.n_steps, k))
        a[0] = np.linalg.cholesky(stationary) @ rng.standard_normal(k)
        transition_t = self.transition.T
        for t in range(1, self.n_steps):
            a[t] = a[t - 1] @ transition_t + shocks[t]
        return a

    def _forcing_series(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Trend (degC at unit pattern) and volcanic (degC, negative) time series."""
        years = self._decimal_years(start, stop)
        if self.run == "control":
            return np.zeros_like(years), np.zeros_like(years)
        spec = self.spec
        reference = 0.5 * (spec.historical_start_year + spec.historical_end_year + 1)
        trend = spec.surface_warming_per_decade * (years - reference) / 10.0
        volcanic = np.zeros_like(years)
        for when in ERUPTIONS.values():
            x = np.clip((years - when) / VOLCANIC_PEAK_YEARS, 0.0, None)
            volcanic -= spec.volcanic_cooling * x * np.exp(1.0 - x)  # peak 1 at x = 1
        return trend, volcanic

    def forced(self, start: int, stop: int) -> np.ndarray:
        """(t, nz, ny, nx) float32 deterministic trend + volcanic part; zeros for control.

        The trend is linear, zero at the middle of the configured historical period; its area
        mean at the top level is exactly ``surface_warming_per_decade``.
        """
        start, stop = self._check(start, stop)
        trend, volcanic = self._forcing_series(start, stop)
        out = trend.astype("f4")[:, None, None, None] * self.warming_pattern[None]
        out += volcanic.astype("f4")[:, None, None, None] * self.volcanic_pattern[None]
        return out

    # --- eddies -------------------------------------------------------------------------

    def _innovations(self, first: int, last: int, top_only: bool) -> np.ndarray:
        """Unit-variance, spatially correlated eddy innovations for steps first:last."""
        nz, (ny, nx), pad = (1 if top_only else self.grid.shape[0]), self.grid.shape[1:], self._eddy_pad
        shape = (nz, ny + 2 * pad, nx)
        buf = np.empty((last - first,) + shape, dtype="f4")
        for i, step in enumerate(range(first, last)):
            # a generator per step: any slice sees the same noise (the top level is the prefix)
            rng = np.random.default_rng([self.spec.seed, self._run_code, _EDDY_STREAM, step])
            buf[i] = rng.standard_normal(shape, dtype=np.float32)
        buf = np.ascontiguousarray(self._filter(buf)[:, :, pad : pad + ny])
        buf *= np.float32(1.0 / math.sqrt(self._eddy_norm))
        if not top_only:
            buf = np.matmul(self._eddy_chol, buf.reshape(len(buf), nz, -1)).reshape(buf.shape)
        return buf

    def _eddies(self, start: int, stop: int, top_only: bool = False) -> np.ndarray:
        """(t, nz or 1, ny, nx) float32 eddy part, spun up from ``start - spin-up``."""
        nz = 1 if top_only else self.grid.shape[0]
        out = np.empty((stop - start, nz) + self.grid.shape[1:], dtype="f4")
        if stop == start:
            return out
        phi, innovation_scale = np.float32(self.eddy_phi), np.float32(math.sqrt(1.0 - self.eddy_phi**2))
        first = max(0, start - self._eddy_spinup)
        block = max(1, min(64, int(4e6 // out[0].size)))
        state = None
        for b0 in range(first, stop, block):
            eta = self._innovations(b0, min(stop, b0 + block), top_only)
            for i, step in enumerate(range(b0, b0 + len(eta))):
                # the first step is a draw of the stationary distribution (unit variance)
                state = eta[i] if state is None else phi * state + innovation_scale * eta[i]
                if step >= start:
                    out[step - start] = state
        out *= self.eddy_std[:nz][None]
        return out

    # --- fields -------------------------------------------------------------------------

    def anomaly(self, start: int, stop: int) -> np.ndarray:
        """(t, nz, ny, nx) float32 anomaly: modes + eddies (+ forced part), zero on land."""
        start, stop = self._check(start, stop)
        a = self.amplitudes()[start:stop].astype("f4")
        out = self._eddies(start, stop)
        flat = self.patterns.reshape(len(self.patterns), -1)
        for t, amplitudes in enumerate(a):  # a step at a time: BLAS sums a block by its shape
            out[t] += (amplitudes @ flat).reshape(out.shape[1:])
        if self.run == "historical":
            out += self.forced(start, stop)
        return out

    def temperature(self, start: int, stop: int) -> np.ndarray:
        """(t, nz, ny, nx) float32 potential temperature (degC): climatology + seasonal + anomaly, NaN on land."""
        start, stop = self._check(start, stop)
        out = self.anomaly(start, stop)
        out += self.grid.climatology[None]
        out += self.grid.seasonal_anomaly(step_day_of_year(stop - start, self.steps_per_year, first_step=start))
        out[:, ~self.grid.ocean] = np.nan
        return out

    def nino34(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Area-mean anomaly at the top level over 5S-5N, 170W-120W (degC), float64."""
        start, stop = self._check(start, stop)
        box = self._nino_box
        modes = self.amplitudes()[start:stop] @ (self.patterns[:, 0] * box).sum(axis=(1, 2), dtype="f8")
        eddies = (self._eddies(start, stop, top_only=True)[:, 0] * box).sum(axis=(1, 2), dtype="f8")
        trend, volcanic = self._forcing_series(start, stop)
        forced = trend * (self.warming_pattern[0] * box).sum() + volcanic * (self.volcanic_pattern[0] * box).sum()
        return modes + eddies + forced

    def dataset(self, start: int, stop: int) -> xr.Dataset:
        """CF Dataset with ``thetao`` (time, depth, lat, lon) in degC for steps start:stop."""
        start, stop = self._check(start, stop)
        thetao = thetao_array(self.grid, self.times(start, stop), self.temperature(start, stop))
        spec = self.spec
        attrs = {
            "Conventions": "CF-1.8",
            "title": f"DeepDA synthetic model world, {self.run} run",
            "source": "DeepDA linear-inverse-model world (modes + AR(1) eddies"
            + (" + forced warming and volcanic cooling)" if self.run == "historical" else ")"),
            "run": self.run,
            "grid": self.grid.spec.name,
            "seed": spec.seed,
            "n_modes": spec.n_modes,
            "steps_per_year": self.steps_per_year,
            "start_year": self.start_year,
            "first_step": start,
            "run_steps": self.n_steps,
            "calendar": self.calendar,
        }
        if self.run == "historical":
            attrs["surface_warming_per_decade"] = spec.surface_warming_per_decade
            attrs["enso_forcing"] = "ENSO pair driven by the observed NOAA CPC Nino-3.4 index (ONI)"
        return xr.Dataset({"thetao": thetao}, attrs=attrs)
