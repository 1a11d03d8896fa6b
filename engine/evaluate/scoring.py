"""OSSE scores added up one block of time steps at a time.

Scoring five 40-year coarse analyses at once holds every field and its float64
temporaries (13 GB measured); here each block (a year) is scored and let go. Every pooled
score (RMSE by depth, of the background, at the observed cells, the 100 m error map, the
spread/skill ratio, the CRPS of an ensemble whose members were saved) is kept as the two
sums of its weighted mean (:func:`engine.evaluate.metrics.weighted_sums`,
:class:`engine.skill.MeanSquares`) and divided at the end; series (RMSE over time,
layer means, heat content, Nino-3.4) are joined, and trends and correlations are taken on
the whole series. The whole period as one block is the same computation (a single
:meth:`OsseScores.add`), as :func:`engine.evaluate.summary.summarise` is for the region/era table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from engine.da.base import Method
from engine.evaluate import diagnostics, metrics
from engine.grid import Grid
from engine.observe.gridding import ObsStep
from engine.skill import MeanSquares

POOLED_DIMS = ("time", "lat", "lon")  # RMSE by depth: area-weighted, pooled over time


class Pooled:
    """A weighted mean kept as its two sums, so blocks of time can be added one by one."""

    def __init__(self) -> None:
        self.total: xr.DataArray | None = None
        self.weight: xr.DataArray | None = None

    def add(self, data: xr.DataArray, weights: metrics.Weights = None, dims: metrics.Dims = None, mask=None) -> None:
        """Add a block's ``sum(w * data)`` and ``sum(w)`` over ``dims`` (NaN skipped)."""
        total, weight = metrics.weighted_sums(data, weights, dims, mask)
        if self.total is None:
            self.total, self.weight = total, weight
        else:
            self.total, self.weight = self.total + total, self.weight + weight

    def mean(self) -> xr.DataArray:
        """The pooled weighted mean; NaN where nothing was valid."""
        return self.total / self.weight.where(self.weight > 0)


class ObservedCells:
    """RMSE by depth at each step's observed cells (area-weighted), of the super-observations
    (``observations``) and of each estimate: the like-for-like comparison of an analysis with
    the observation error."""

    def __init__(self, grid: Grid, names: Iterable[str]) -> None:
        self.area = grid.area[None] * grid.ocean
        self.squares = {name: MeanSquares() for name in ("observations", *names)}

    def add(self, obs_steps: Sequence[ObsStep], truth: np.ndarray, estimates: dict[str, np.ndarray]) -> None:
        """Add one block: its gridded ``ObsStep`` s, the truth and the estimates (time first)."""
        for t, obs in enumerate(obs_steps):
            w = self.area * obs.mask
            for name, squares in self.squares.items():
                estimate = obs.anomaly if name == "observations" else estimates[name][t]
                squares.add(np.nan_to_num(estimate - truth[t]) ** 2, w, axis=(1, 2))

    def result(self, depth: xr.DataArray) -> xr.Dataset:
        """{name: RMSE by depth} with units and long names."""
        out = {}
        for name, squares in self.squares.items():
            what = "the super-observations" if name == "observations" else f"the {name} analysis"
            attrs = {"long_name": f"root-mean-square error of {what} at the observed cells", "units": "degC"}
            out[name] = xr.DataArray(squares.rms(), dims="depth", coords={"depth": depth}, name="rmse", attrs=attrs)
        return xr.Dataset(out)


class OsseScores:
    """Every metric of DESIGN section 10 for several analyses against the truth anomaly,
    added block by block (consecutive steps, in order).

    Parameters
    ----------
    grid : the analyses' grid (weights, ocean mask, observed-cell areas).
    names : the analyses' labels.
    with_observations : also score the super-observations and each analysis at the
        observed cells (then every :meth:`add` takes that block's ``ObsStep`` s).
    """

    def __init__(self, grid: Grid, names: Iterable[str], with_observations: bool = False) -> None:
        self.weights, self.mask = grid.weights(), grid.mask()
        self.names = list(names)
        self.pools: dict[str, Pooled] = defaultdict(Pooled)
        self.series: dict[str, list[xr.DataArray]] = defaultdict(list)
        self.last: dict[str, xr.DataArray] = {}  # each analysis's last step: the next block's first background
        self.observed = ObservedCells(grid, self.names) if with_observations else None
        self.units: str | None = None

    def add(self, analyses: dict[str, xr.Dataset], truth: xr.DataArray, obs_steps: Sequence[Any] = ()) -> None:
        """Score one block: ``analyses`` {name: Dataset with ``thetao_anomaly`` (and
        ``thetao_spread``)} on ``truth``'s times, the truth anomaly (NaN on land)."""
        self.units = self.units or truth.attrs.get("units")
        anomalies = {name: ds["thetao_anomaly"].sel(time=truth["time"]) for name, ds in analyses.items()}
        for name, est in anomalies.items():
            err2 = (est - truth) ** 2
            self._add_errors(name, est, truth, err2)
            self._add_ensemble(name, analyses[name], truth, err2)
        for name, field in {"truth": truth, **anomalies}.items():
            self.series[f"layer_mean_0_700_{name}"].append(diagnostics.layer_mean(field, self.weights, (0, 700)))
            self.series[f"ohc_0_700_{name}"].append(diagnostics.ocean_heat_content(field, self.weights, (0, 700)))
            self.series[f"ohc_0_2000_{name}"].append(diagnostics.ocean_heat_content(field, self.weights, (0, 2000)))
            self.series[f"nino34_{name}"].append(diagnostics.nino34(field, self.weights))
        if self.observed is not None:
            self.observed.add(obs_steps, truth.values, {name: est.values for name, est in anomalies.items()})

    def _add_ensemble(self, name: str, analysis: xr.Dataset, truth: xr.DataArray, err2: xr.DataArray) -> None:
        """The ensemble's scores: the spread/skill ratio (from the spread) and, when the file
        holds every member, the CRPS by depth, both pooled like the RMSE."""
        if "thetao_spread" in analysis:
            spread = analysis["thetao_spread"].sel(time=truth["time"])
            self.pools[f"spread_{name}"].add((spread**2).where(err2.notnull()), self.weights, None, self.mask)
            self.pools[f"spread_error_{name}"].add(err2, self.weights, None, self.mask)
        if "thetao_anomaly_member" in analysis:
            members = analysis["thetao_anomaly_member"].sel(time=truth["time"])
            crps = metrics.crps_ensemble(members, truth, dims=())
            self.pools[f"crps_depth_{name}"].add(crps, self.weights, POOLED_DIMS, self.mask)

    def _add_errors(self, name: str, est: xr.DataArray, truth: xr.DataArray, err2: xr.DataArray) -> None:
        self.pools[f"rmse_depth_{name}"].add(err2, self.weights, POOLED_DIMS, self.mask)
        background = est.shift(time=1)  # the previous analysis: NaN (not scored) at the very first step
        if name in self.last:
            background[0] = self.last[name].values
        self.last[name] = est.isel(time=-1).copy()
        bg_err2 = (background - truth) ** 2
        self.pools[f"rmse_background_depth_{name}"].add(bg_err2, self.weights, POOLED_DIMS, self.mask)
        self.series[f"rmse_time_{name}"].append(metrics.rmse_over_time(est, truth, self.weights, (0, 700), self.mask))
        self.pools[f"error_map_100m_{name}"].add(err2.sel(depth=100, method="nearest"), None, "time")

    def result(self) -> xr.Dataset:
        """The metrics Dataset (what ``deepda evaluate`` writes to metrics.nc)."""
        out: dict[Hashable, xr.DataArray] = {}
        for name in self.names:
            for key in (f"rmse_depth_{name}", f"rmse_background_depth_{name}", f"error_map_100m_{name}"):
                if key in self.pools:
                    rmse = np.sqrt(self.pools[key].mean())
                    out[key] = metrics.labelled(rmse, "rmse", "root-mean-square error", self.units)
            out[f"rmse_time_{name}"] = xr.concat(self.series[f"rmse_time_{name}"], "time")
            if f"crps_depth_{name}" in self.pools:
                crps = self.pools[f"crps_depth_{name}"].mean()
                out[f"crps_depth_{name}"] = metrics.labelled(
                    crps, "crps", "continuous ranked probability score", self.units
                )
            if f"spread_{name}" in self.pools:
                spread = np.sqrt(self.pools[f"spread_{name}"].mean() / self.pools[f"spread_error_{name}"].mean())
                long_name = "ensemble spread over the RMSE of the ensemble mean"
                out[f"spread_skill_{name}"] = metrics.labelled(spread, "spread_skill_ratio", long_name, "1")
        for key, parts in self.series.items():
            if not key.startswith("rmse_time_"):
                out[key] = xr.concat(parts, "time")
        for name in ("truth", *self.names):
            out[f"trend_0_700_{name}"] = diagnostics.linear_trend(out[f"layer_mean_0_700_{name}"])
        for name in self.names:
            out[f"nino34_correlation_{name}"] = metrics.correlation(out[f"nino34_{name}"], out["nino34_truth"])
            ratio = out[f"trend_0_700_{name}"] / out["trend_0_700_truth"]
            out[f"trend_ratio_{name}"] = metrics.labelled(
                ratio, "trend_ratio", "0-700 m trend over the true trend", "1"
            )
        if self.observed is not None:
            observed = self.observed.result(self.weights["depth"])
            out["rmse_depth_observations"] = observed["observations"]
            for name in self.names:
                out[f"rmse_at_obs_depth_{name}"] = observed[name]
        ds = xr.Dataset(
            {k: v.drop_vars([c for c in v.coords if c not in v.dims], errors="ignore") for k, v in out.items()}
        )
        return ds.assign_attrs(Conventions="CF-1.8", title="DeepDA OSSE metrics")


def cycled_rmse(
    method: Method,
    truth: np.ndarray,
    steps: Iterable[ObsStep],
    weights: np.ndarray | None = None,
    background: np.ndarray | None = None,
    spinup: int = 0,
) -> float:
    """RMSE (degC) of ``method`` cycled over ``steps`` (one member) against ``truth`` (T, nz, ny, nx).

    ``weights`` (nz, ny, nx), e.g. the ocean mask or cell volumes, weight the mean square;
    default: every cell equally. Steps before ``spinup`` are cycled but not scored; NaN
    when none is scored.
    """
    weights = np.ones(truth.shape[1:]) if weights is None else np.asarray(weights, dtype="f8")
    state = np.zeros((1,) + truth.shape[1:], "f4") if background is None else background
    squares = MeanSquares()
    for t, obs in enumerate(steps):
        state = method.assimilate(state, obs)
        if t >= spinup:
            squares.add((state[0] - truth[t]) ** 2, weights)
    return float(squares.rms())
