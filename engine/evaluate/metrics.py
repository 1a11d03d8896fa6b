"""Verification metrics: small pure functions over xarray objects (the climate
diagnostics built on them, heat content, trends, Nino-3.4, are in :mod:`engine.evaluate.diagnostics`;
the weighted RMSE of plain arrays, which the stages before this one score with, is :mod:`engine.skill`).

Conventions (as in weatherbench2): fields are DataArrays with dims ``(time, depth, lat, lon)``
or a subset, plus ``member`` for ensembles; lat ascending, lon 0..360, depth positive down
in metres. Every mean skips NaNs and renormalises the weights over the valid points.

Parameters shared by the scores
-------------------------------
estimate, truth : DataArray
    Fields on the same grid; land is NaN (or excluded by ``mask``).
weights : Dataset, DataArray or None
    ``Grid.weights()`` (volume, area, thickness), or a plain DataArray of weights, or None
    (equal weights). The volume is used when there is one: it is zero on land, so land is
    excluded even where a field holds zeros there, and at a single level it is proportional
    to the ocean area, so horizontal means are area-weighted. A field without a depth dim
    takes the level of its scalar ``depth`` coordinate, else the top level.
dims : str or sequence of str, optional
    Dimensions to reduce; default all (a scalar score). ``()`` keeps every point.
mask : DataArray, optional
    1/True where the score is taken (ocean mask such as ``Grid.mask()``, a region mask
    from :mod:`engine.evaluate.regions`, or both combined).

Scores come back as DataArrays over the dims that are not reduced.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import xarray as xr

Field = xr.DataArray
Weights = xr.Dataset | xr.DataArray | None
Dims = str | Iterable[Hashable] | None
Mask = xr.DataArray | None
Range = tuple[float, float]


# --- weighting ------------------------------------------------------------------------------


def _dims(data: Field, dims: Dims) -> tuple[Hashable, ...]:
    if dims is None:
        return tuple(data.dims)
    return (dims,) if isinstance(dims, str) else tuple(dims)


def present_dims(data: Field, dims: Iterable[Hashable]) -> tuple[Hashable, ...]:
    return tuple(d for d in dims if d in data.dims)


def _at_levels(values: Field, data: Field) -> Field:
    """Cut a (depth, ...) array to the level of a field without a depth dim (its scalar depth
    coordinate, else the top level)."""
    if "depth" not in values.dims or "depth" in data.dims:
        return values
    values = values.sel(depth=data["depth"]) if "depth" in data.coords else values.isel(depth=0)
    return values.drop_vars("depth", errors="ignore")


def apply_mask(data: Field, mask: Mask) -> Field:
    """NaN where ``mask`` is 0/False."""
    if mask is None:
        return data
    mask = _at_levels(mask, data)
    mask = mask.reindex_like(data, fill_value=0) if set(mask.dims) <= set(data.dims) else mask
    return data.where(mask.astype(bool))


def _weights_for(weights: Weights, data: Field) -> Field | None:
    """The weight DataArray for ``data`` (volume if any, else area), aligned, NaN set to 0."""
    if weights is None:
        return None
    if isinstance(weights, xr.Dataset):
        weights = weights["volume"] if "volume" in weights else weights["area"]
    w = _at_levels(weights, data)
    shared = [d for d in w.dims if d in data.indexes and d in w.indexes]
    if shared:
        w = w.reindex({d: data.indexes[d] for d in shared}, fill_value=0.0)
    return w.fillna(0.0)


def _layer_overlap(depth: np.ndarray, depth_range: Range, thickness=None):
    """(thickness within ``depth_range``, full thickness) of each level, in metres.

    Layer edges are the cumulated ``thickness`` when given (``Grid.weights()``), else the
    midpoints between levels (the rule of ``Grid.depth_bounds``).
    """
    depth = np.asarray(depth, dtype="f8")
    if thickness is not None:
        edges = np.concatenate([[0.0], np.cumsum(thickness)])
    else:
        bottom = depth[-1] + 0.5 * (depth[-1] - depth[-2]) if depth.size > 1 else 2 * depth[0]
        edges = np.concatenate([[0.0], 0.5 * (depth[1:] + depth[:-1]), [bottom]])
    top, bot = edges[:-1], edges[1:]
    inside = np.clip(np.minimum(bot, depth_range[1]) - np.maximum(top, depth_range[0]), 0.0, None)
    return inside, bot - top


def layer_weights(weights: Weights, data: Field, depth_range: Range) -> Field:
    """Volume weights of the part of each cell inside ``depth_range`` (partial levels count).

    From the ``Grid.weights()`` Dataset, a volume DataArray (with depth), an area DataArray
    (lat, lon) or None (thickness only), aligned to ``data``'s levels.
    """
    thickness = None
    if isinstance(weights, xr.Dataset):
        thickness = weights["thickness"] if "thickness" in weights else None
        weights = weights["volume"] if "volume" in weights else weights.get("area")
    has_depth = weights is not None and "depth" in weights.dims
    depth = (thickness if thickness is not None else weights if has_depth else data)["depth"].values
    inside, full = _layer_overlap(depth, depth_range, None if thickness is None else thickness.values)
    factor = xr.DataArray(inside / full if has_depth else inside, dims="depth", coords={"depth": depth})
    w = factor if weights is None else weights * factor
    return w.reindex(depth=data["depth"].values, fill_value=0.0)


def weighted_mean(data: Field, weights: Weights = None, dims: Dims = None, mask: Mask = None) -> Field:
    """NaN-aware weighted mean of ``data`` over ``dims`` (default: all dims)."""
    dims = _dims(data, dims)
    data = apply_mask(data, mask)
    if not dims:
        return data
    w = _weights_for(weights, data)
    return data.mean(dims) if w is None else data.weighted(w).mean(dims)


def weighted_sums(data: Field, weights: Weights = None, dims: Dims = None, mask: Mask = None) -> tuple[Field, Field]:
    """The two sums of a weighted mean over ``dims``: (sum of w * data, sum of w), NaN skipped.

    Sums of successive blocks of time add up, so a mean pooled over a long period is the
    sum of the blocks' first sums over the sum of their second (:mod:`engine.evaluate.scoring`);
    ``total / weight`` is :func:`weighted_mean` where the weight is positive.
    """
    dims = _dims(data, dims)
    data = apply_mask(data, mask)
    w = _weights_for(weights, data)
    valid = data.notnull()
    if w is None:
        return data.sum(dims), valid.sum(dims).astype(float)
    # dot products, as xarray's own weighted mean: no weight array of the data's shape
    return xr.dot(data.fillna(0.0), w, dim=dims), xr.dot(valid, w, dim=dims)


# --- deterministic scores -------------------------------------------------------------------


def rmse(estimate: Field, truth: Field, weights: Weights = None, dims: Dims = None, mask: Mask = None):
    """Weighted root-mean-square error over ``dims`` (default: all dims)."""
    out = np.sqrt(weighted_mean((estimate - truth) ** 2, weights, dims, mask))
    return labelled(out, "rmse", "root-mean-square error", units_of(truth, estimate))


def bias(estimate: Field, truth: Field, weights: Weights = None, dims: Dims = None, mask: Mask = None):
    """Weighted mean error, estimate minus truth (positive: too warm)."""
    out = weighted_mean(estimate - truth, weights, dims, mask)
    return labelled(out, "bias", "mean error (estimate minus truth)", units_of(truth, estimate))


def anomaly_correlation(
    estimate: Field, truth: Field, weights: Weights = None, dims: Dims = None, mask: Mask = None, centred: bool = True
) -> Field:
    """Weighted (centred) anomaly correlation over ``dims``, on the points valid in both.

    With ``centred`` the weighted means over ``dims`` are removed first (Pearson correlation);
    otherwise the fields are taken as anomalies already (uncentred ACC).
    """
    valid = estimate.notnull() & truth.notnull()
    e, t = apply_mask(estimate.where(valid), mask), apply_mask(truth.where(valid), mask)
    if centred:
        e, t = e - weighted_mean(e, weights, dims), t - weighted_mean(t, weights, dims)
    cov = weighted_mean(e * t, weights, dims)
    acc = cov / np.sqrt(weighted_mean(e**2, weights, dims) * weighted_mean(t**2, weights, dims))
    return labelled(acc, "acc", "anomaly correlation", "1")


def correlation(a: Field, b: Field, dim: Dims = "time", weights: Weights = None) -> Field:
    """Pearson correlation of ``a`` and ``b`` along ``dim`` (e.g. two Nino-3.4 series)."""
    return labelled(anomaly_correlation(a, b, weights, dim), "correlation", "correlation coefficient", "1")


def rmse_by_depth(estimate: Field, truth: Field, weights: Weights = None, mask: Mask = None) -> Field:
    """RMSE at each depth, area-weighted over lat/lon and pooled over time."""
    return rmse(estimate, truth, weights, present_dims(estimate - truth, ("time", "lat", "lon")), mask)


def rmse_over_time(
    estimate: Field, truth: Field, weights: Weights = None, depth_range: Range = (0.0, 700.0), mask: Mask = None
) -> Field:
    """RMSE at each time, volume-weighted over the layer ``depth_range`` (m) and the globe."""
    sq = apply_mask((estimate - truth) ** 2, mask)
    w = layer_weights(weights, sq, depth_range)
    out = np.sqrt(weighted_mean(sq, w, present_dims(sq, ("depth", "lat", "lon"))))
    return labelled(out, "rmse", "root-mean-square error", units_of(truth, estimate), depth_range=list(depth_range))


def error_map(estimate: Field, truth: Field, dim: Dims = "time", kind: str = "rmse") -> Field:
    """Error at each point over ``dim``: ``kind`` = "rmse", "bias" (mean error) or "mae"."""
    diff, units = estimate - truth, units_of(truth, estimate)
    if kind == "rmse":
        return labelled(np.sqrt((diff**2).mean(dim)), "rmse", "root-mean-square error", units)
    if kind == "bias":
        return labelled(diff.mean(dim), "bias", "mean error (estimate minus truth)", units)
    if kind == "mae":
        return labelled(abs(diff).mean(dim), "mae", "mean absolute error", units)
    raise ValueError(f"unknown error kind {kind!r}; use 'rmse', 'bias' or 'mae'")


# --- ensembles ------------------------------------------------------------------------------


def spread_skill_ratio(
    ensemble: Field,
    truth: Field,
    weights: Weights = None,
    dims: Dims = None,
    mask: Mask = None,
    *,
    mean: Field | None = None,
    member_dim: str = "member",
) -> Field:
    """sqrt(weighted mean ensemble variance) / RMSE of the ensemble mean.

    ``ensemble`` holds the members (dim ``member_dim``; variance with ddof=1), or, without that
    dim, the spread (standard deviation) itself, and then ``mean`` is required. A reliable
    M-member ensemble has an expected ratio of sqrt(M / (M + 1)), not 1.
    """
    if member_dim in ensemble.dims:
        variance = ensemble.var(member_dim, ddof=1)
        mean = ensemble.mean(member_dim) if mean is None else mean
    elif mean is None:
        raise ValueError("give the ensemble mean when passing the spread instead of the members")
    else:
        variance = ensemble**2
    err2 = (mean - truth) ** 2
    variance = variance.where(err2.notnull())
    spread = np.sqrt(weighted_mean(variance, weights, dims, mask))
    ratio = spread / np.sqrt(weighted_mean(err2, weights, dims, mask))
    return labelled(ratio, "spread_skill_ratio", "ensemble spread over the RMSE of the ensemble mean", "1")


def crps_ensemble(
    members: Field,
    truth: Field,
    weights: Weights = None,
    dims: Dims = None,
    mask: Mask = None,
    member_dim: str = "member",
    fair: bool = True,
) -> Field:
    """Ensemble CRPS, weighted mean over ``dims`` (``dims=()`` gives it at each point).

    CRPS = mean_i |x_i - y| - sum_ij |x_i - x_j| / (2 M (M - 1)) (the fair, unbiased
    estimator; ``fair=False`` divides by 2 M**2). A one-member ensemble scores its absolute
    error. The pair sum uses sorted members, so memory grows linearly with M.
    """
    m = members.sizes[member_dim]
    skill = abs(members - truth).mean(member_dim, skipna=False)
    if m > 1:
        ordered = xr.apply_ufunc(np.sort, members, input_core_dims=[[member_dim]], output_core_dims=[["_rank"]])
        coefficient = xr.DataArray(2.0 * np.arange(1, m + 1) - m - 1, dims="_rank")
        pair_sum = 2.0 * (ordered * coefficient).sum("_rank", skipna=False)
        skill = skill - pair_sum / (2.0 * m * (m - 1 if fair else m))
    dims = _dims(skill, dims)
    out = weighted_mean(skill, weights, dims, mask)
    return labelled(out, "crps", "continuous ranked probability score", units_of(truth, members))


def units_of(*data: Field) -> str | None:
    """The units of the first of ``data`` that states them."""
    return next((d.attrs["units"] for d in data if "units" in getattr(d, "attrs", {})), None)


def labelled(out: Field, name: str, long_name: str, units: str | None, **extra: Any) -> Field:
    """``out`` named, with attributes of its own only.

    Arithmetic keeps the first operand's attributes, so an RMSE or a correlation would
    otherwise claim the input's ``standard_name`` (sea_water_potential_temperature) and units.
    """
    out = out.rename(name)
    out.attrs = {"long_name": long_name, **({"units": units} if units else {}), **extra}
    return out
