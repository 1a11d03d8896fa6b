"""Summary tables: RMSE and bias by method, region, era and depth, flattened for CSV / Markdown."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from engine.metrics import Field, Mask, Weights, _apply_mask, _present, _units_of, labelled, weighted_mean
from engine.regions import region_mask


def _era_masks(time: Field, eras) -> dict[str, Field]:
    """{label: bool over time} from None, {label: (first_year, last_year)} or boundary years."""
    years = time.dt.year
    if eras is None:
        return {"all": xr.ones_like(years, dtype=bool)}
    if isinstance(eras, Mapping):
        return {label: (years >= lo) & (years <= hi) for label, (lo, hi) in eras.items()}
    bounds = list(eras)
    pairs = itertools.pairwise(bounds)
    return {(f"{lo}" if hi - 1 == lo else f"{lo}-{hi - 1}"): (years >= lo) & (years < hi) for lo, hi in pairs}


def summarise(
    analyses: Mapping[str, Field],
    truth: Field,
    weights: Weights = None,
    eras=None,
    regions: Sequence[str] | Mapping[str, Field] = ("global",),
    mask: Mask = None,
) -> xr.Dataset:
    """RMSE and bias by (method, region, era, depth) of several analyses against the truth.

    Parameters
    ----------
    analyses : {method name: anomaly DataArray (time, depth, lat, lon)}.
    truth : the true anomaly on the same grid.
    eras : None (one era "all"), {label: (first_year, last_year)}, or boundary years
        ``[y0, y1, ..., yn]`` giving eras [y0, y1), ... labelled "y0-(y1-1)" (or "y0").
    regions : region names (see :mod:`engine.regions`) or {name: bool (lat, lon) mask}.
    mask : ocean mask (e.g. ``Grid.mask()``), applied everywhere.

    Select a method with ``ds.sel({"method": name})``: ``ds.sel(method=...)`` is taken as
    ``sel``'s own interpolation keyword and silently selects nothing.
    """
    if not isinstance(regions, Mapping):
        regions = {name: region_mask(name, truth["lat"], truth["lon"]) for name in regions}
    era_masks = _era_masks(truth["time"], eras)
    out = {"rmse": [], "bias": []}
    for estimate in analyses.values():
        diff = _apply_mask(estimate - truth, mask)
        per_method = {"rmse": [], "bias": []}
        for region in regions.values():
            d = diff.where(region.reindex_like(diff, fill_value=False))
            dims = _present(d, ("time", "lat", "lon"))
            era_d = [d.sel(time=sel) for sel in era_masks.values()]
            per_method["rmse"].append(xr.concat([np.sqrt(weighted_mean(e**2, weights, dims)) for e in era_d], "era"))
            per_method["bias"].append(xr.concat([weighted_mean(e, weights, dims) for e in era_d], "era"))
        for key in out:
            out[key].append(xr.concat(per_method[key], "region"))
    coords = {"method": list(analyses), "region": list(regions), "era": list(era_masks)}
    ds = xr.Dataset({k: xr.concat(v, "method") for k, v in out.items()}).assign_coords(coords)
    ds["rmse"] = labelled(ds["rmse"], "rmse", "root-mean-square error", _units_of(truth))
    ds["bias"] = labelled(ds["bias"], "bias", "mean error (estimate minus truth)", _units_of(truth))
    return ds.transpose("method", "region", "era", ...)


def to_table(ds: xr.Dataset, decimals: int = 3) -> pd.DataFrame:
    """Flatten a :func:`summarise` Dataset: one row per (metric, method, region, era), one
    column per depth ("10 m", ...; "value" without depth). Ready for ``to_csv`` / Markdown."""
    rows = []
    for metric, da in ds.data_vars.items():
        other = [d for d in da.dims if d != "depth"]
        da = da.transpose(*other, *(["depth"] if "depth" in da.dims else []))
        columns = [f"{z:g} m" for z in da["depth"].values] if "depth" in da.dims else ["value"]
        values = da.values.reshape(-1, len(columns))
        labels = itertools.product(*(da[d].values.tolist() for d in other))
        for key, row in zip(labels, values, strict=True):
            rows.append(
                {"metric": metric, **dict(zip(other, key, strict=True)), **dict(zip(columns, row, strict=True))}
            )
    return pd.DataFrame(rows).round(decimals)


def headline(ds: xr.Dataset, methods: list[str]) -> pd.DataFrame:
    """One row per method: RMSE 0-700 m and the claims of issue 5 (ratios, trend, ENSO)."""
    rows = []
    for name in methods:
        rmse = ds[f"rmse_depth_{name}"]
        row = {
            "method": name,
            "rmse_0_700": float(rmse.sel(depth=slice(0, 700)).mean()),
            "below_background_all_depths": bool((rmse < ds[f"rmse_background_depth_{name}"]).all()),
            "trend_ratio": float(ds[f"trend_ratio_{name}"]),
            "nino34_correlation": float(ds[f"nino34_correlation_{name}"]),
        }
        if "rmse_depth_observations" in ds:
            obs = ds["rmse_depth_observations"]
            row["below_observation_error_all_depths"] = bool((rmse < obs).where(obs.notnull(), True).all())
            if f"rmse_at_obs_depth_{name}" in ds:  # like for like: both at the observed cells
                at_obs = ds[f"rmse_at_obs_depth_{name}"]
                row["below_observation_error_at_observed_cells"] = bool((at_obs < obs).where(obs.notnull(), True).all())
        if f"spread_skill_{name}" in ds:
            row["spread_skill"] = float(ds[f"spread_skill_{name}"])
        rows.append(row)
    return pd.DataFrame(rows)


def rmse_by_depth_table(ds: xr.Dataset, methods: list[str]) -> pd.DataFrame:
    """RMSE by depth: each method, its background, and the observations."""
    columns = {}
    for name in methods:
        columns[name] = ds[f"rmse_depth_{name}"].values
        columns[f"{name} background"] = ds[f"rmse_background_depth_{name}"].values
        if f"rmse_at_obs_depth_{name}" in ds:
            columns[f"{name} at observed cells"] = ds[f"rmse_at_obs_depth_{name}"].values
    if "rmse_depth_observations" in ds:
        columns["observations"] = ds["rmse_depth_observations"].values
    table = pd.DataFrame(columns, index=pd.Index(ds["depth"].values, name="depth_m"))
    return table.round(4)


def as_markdown(table: pd.DataFrame) -> str:
    """A pipe table without the optional tabulate dependency."""
    frame = table.reset_index() if table.index.name else table
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    lines = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *lines])


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)
