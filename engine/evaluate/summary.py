"""Summary tables: RMSE and bias by method, region, era and depth, flattened for CSV / Markdown."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from engine.evaluate.metrics import Field, Mask, Weights, apply_mask, labelled, present_dims, units_of
from engine.evaluate.regions import region_mask
from engine.evaluate.scoring import Pooled


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
    regions : region names (see :mod:`engine.evaluate.regions`) or {name: bool (lat, lon) mask}.
    mask : ocean mask (e.g. ``Grid.mask()``), applied everywhere.

    Select a method with ``ds.sel({"method": name})``: ``ds.sel(method=...)`` is taken as
    ``sel``'s own interpolation keyword and silently selects nothing. A long period can be
    summarised a block of time at a time with :class:`RegionEraScores`.
    """
    scores = RegionEraScores(list(analyses), truth["lat"], truth["lon"], weights, eras, regions, mask)
    scores.add(analyses, truth)
    return scores.result()


class RegionEraScores:
    """:func:`summarise` added up one block of time steps at a time (pooled sums)."""

    def __init__(
        self,
        methods: Sequence[str],
        lat: Field,
        lon: Field,
        weights: Weights = None,
        eras=None,
        regions: Sequence[str] | Mapping[str, Field] = ("global",),
        mask: Mask = None,
    ) -> None:
        if not isinstance(regions, Mapping):
            regions = {name: region_mask(name, lat, lon) for name in regions}
        self.methods, self.regions, self.eras = list(methods), dict(regions), eras
        self.weights, self.mask, self.units = weights, mask, None
        no_times = xr.DataArray(pd.DatetimeIndex([]), dims="time")  # era labels do not depend on the times
        self.era_labels = list(_era_masks(no_times, eras))
        self.pools: dict[tuple, Pooled] = defaultdict(Pooled)

    def add(self, analyses: Mapping[str, Field], truth: Field) -> None:
        """Add one block: each analysis and the truth on the same times."""
        self.units = self.units or units_of(truth)
        era_masks = _era_masks(truth["time"], self.eras)
        for method in self.methods:
            diff = apply_mask(analyses[method] - truth, self.mask)
            for region, inside in self.regions.items():
                d = diff.where(inside.reindex_like(diff, fill_value=False))
                dims = present_dims(d, ("time", "lat", "lon"))
                for era, in_era in era_masks.items():
                    e = d.sel(time=in_era)
                    self.pools["rmse", method, region, era].add(e**2, self.weights, dims)
                    self.pools["bias", method, region, era].add(e, self.weights, dims)

    def result(self) -> xr.Dataset:
        """The :func:`summarise` Dataset; NaN for an era no block reached."""
        out = {}
        for metric in ("rmse", "bias"):
            per_method = []
            for method in self.methods:
                per_region = []
                for region in self.regions:
                    eras = [self._mean(metric, method, region, era) for era in self.era_labels]
                    per_region.append(xr.concat(eras, "era"))
                per_method.append(xr.concat(per_region, "region"))
            out[metric] = xr.concat(per_method, "method")
        coords = {"method": self.methods, "region": list(self.regions), "era": self.era_labels}
        ds = xr.Dataset(out).assign_coords(coords)
        ds["rmse"] = labelled(ds["rmse"], "rmse", "root-mean-square error", self.units)
        ds["bias"] = labelled(ds["bias"], "bias", "mean error (estimate minus truth)", self.units)
        return ds.transpose("method", "region", "era", ...)

    def _mean(self, metric: str, method: str, region: str, era: str) -> Field:
        mean = self.pools[metric, method, region, era].mean()
        return np.sqrt(mean) if metric == "rmse" else mean


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
        if f"crps_depth_{name}" in ds:
            row["crps_0_700"] = float(ds[f"crps_depth_{name}"].sel(depth=slice(0, 700)).mean())
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
