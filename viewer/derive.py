"""Statistics the Validate and Trends pages show, computed once per server from open files.

Thin wrappers around :mod:`engine.evaluate.metrics`: they pick the arrays from the
:class:`~viewer.store.DataStore`, align an analysis with the truth on their common time
steps, and memoise the result on the files' (path, mtime) keys.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from engine import io
from engine.evaluate import diagnostics, metrics
from engine.evaluate.regions import region_mask
from engine.grid import SEAWATER_RHO_CP
from viewer.store import DataStore, file_key, memo

SUMMARY_FILE = "osse_summary.csv"
ZJ = 1e21


def _key(store: DataStore, *names: str) -> tuple:
    return tuple(file_key(store.source(n).path) for n in names)


def same_grid(store: DataStore, a: str, b: str) -> bool:
    """Whether two gridded sources share the horizontal grid and the depth levels."""
    da, db = store.fields(a), store.fields(b)
    return all(np.array_equal(da[c].values, db[c].values) for c in ("lat", "lon", "depth"))


def aligned(
    store: DataStore, analysis: str, truth: str, variable: str = "anomaly"
) -> tuple[xr.DataArray, xr.DataArray]:
    """Analysis and truth on their common time steps (ValueError if none or grids differ)."""
    if not same_grid(store, analysis, truth):
        raise ValueError(f"{analysis} and {truth} are on different grids")
    a, t = store.data(analysis, variable), store.data(truth, variable)
    common = np.intersect1d(a["time"].values, t["time"].values)
    if not len(common):
        raise ValueError(f"{analysis} and {truth} have no time step in common")
    return a.sel(time=common), t.sel(time=common)


def weights(store: DataStore, name: str) -> xr.Dataset:
    return store.grid(name).weights()


def region(store: DataStore, name: str, region_name: str) -> xr.DataArray:
    ds = store.fields(name)
    return region_mask(region_name, ds["lat"].values, ds["lon"].values)


def rmse_by_depth(store: DataStore, analysis: str, truth: str) -> xr.DataArray:
    """Area-weighted RMSE of the analysis against the truth at each depth, pooled over time."""

    def compute() -> xr.DataArray:
        a, t = aligned(store, analysis, truth)
        return metrics.rmse_by_depth(a, t, weights(store, truth)).load()

    return memo(("rmse_depth", _key(store, analysis, truth)), compute)


def background_rmse_by_depth(store: DataStore, analysis: str, truth: str) -> xr.DataArray:
    """RMSE by depth of the background (the previous step's analysis) against the truth."""

    def compute() -> xr.DataArray:
        a, t = aligned(store, analysis, truth)
        if a.sizes["time"] < 2:
            raise ValueError("a background needs at least two time steps")
        background = a.shift(time=1).isel(time=slice(1, None))
        return metrics.rmse_by_depth(background, t.isel(time=slice(1, None)), weights(store, truth)).load()

    return memo(("rmse_background", _key(store, analysis, truth)), compute)


def rmse_over_time(store: DataStore, analysis: str, truth: str, layer: tuple[float, float]) -> xr.DataArray:
    """Volume-weighted RMSE over a layer at each time step."""

    def compute() -> xr.DataArray:
        a, t = aligned(store, analysis, truth)
        return metrics.rmse_over_time(a, t, weights(store, truth), depth_range=layer).load()

    return memo(("rmse_time", _key(store, analysis, truth), layer), compute)


def observation_error(store: DataStore, obs: str, truth: str) -> xr.DataArray:
    """RMSE of the gridded super-observations against the truth, by depth (observed cells)."""
    from engine.osse import observation_error as osse_observation_error
    from viewer.store import steps_per_year

    def compute() -> xr.DataArray:
        ds = store.fields(truth)
        anomaly = store.data(truth, "anomaly").load()
        return osse_observation_error(store.source(obs).path, store.grid(truth), anomaly, steps_per_year(ds))

    return memo(("obs_error", _key(store, obs, truth)), compute)


def shipped_summary(folder: Path | None = None) -> pd.DataFrame | None:
    """The OSSE summary table shipped in ``assets/`` (None when absent)."""
    file = (folder or io.assets_dir()) / SUMMARY_FILE
    if not file.exists():
        return None
    return memo(("summary_csv", file_key(file)), lambda: io.read_csv_table(file))


def summary_profiles(table: pd.DataFrame, metric: str = "rmse", region_name: str = "global") -> dict[str, pd.Series]:
    """{method: RMSE by depth (index metres)} from a summary table, first era of each method."""
    rows = table[(table["metric"] == metric) & (table["region"] == region_name)]
    depth_cols = [c for c in table.columns if c.endswith(" m")]
    out = {}
    for method, group in rows.groupby("method", sort=False):
        row = group.iloc[0]
        out[str(method)] = pd.Series(
            row[depth_cols].to_numpy(dtype="f8"), index=[float(c[:-2]) for c in depth_cols], name=str(method)
        )
    return out


def summary_table(store: DataStore, analyses: list[str], truth: str) -> pd.DataFrame:
    """RMSE and bias by method, region, era and depth for the open analyses (engine.osse.summary_table)."""
    from engine.osse import summary_table as osse_summary

    usable = [a for a in analyses if same_grid(store, a, truth)]
    if not usable:
        return pd.DataFrame()

    def compute() -> pd.DataFrame:
        times = [set(store.times(a)) for a in usable]
        common = np.array(sorted(set(store.times(truth)).intersection(*times)))
        if not len(common):
            return pd.DataFrame()
        fields = {a: xr.Dataset({"thetao_anomaly": store.data(a, "anomaly")}) for a in usable}
        return osse_summary(fields, store.data(truth, "anomaly").sel(time=common), store.grid(truth))

    return memo(("summary", _key(store, *usable, truth)), compute)


# --- trends ------------------------------------------------------------------------------------


def depth_sums(store: DataStore, name: str, variable: str, region_name: str) -> xr.Dataset:
    """Per time and depth, the volume-weighted sum of ``variable`` over a region (``total``) and
    the weight of its valid cells (``weight``): one pass over the record that the layer mean,
    the heat content and the time-depth plot all derive from (a new region costs one pass per
    dataset and variable instead of one per plot: about a second for 40 years, not ten)."""

    def compute() -> xr.Dataset:
        data = store.data(name, variable)
        volume = weights(store, name)["volume"].where(region(store, name, region_name), 0.0)
        w = volume.transpose("depth", "lat", "lon").fillna(0.0).values.astype("f8")
        dims = data.dims.index("time"), data.dims.index("depth")
        totals, valid = [], []
        for start in range(0, data.sizes["time"], 73):  # a year at a time: no copy of the whole record
            block = np.moveaxis(np.asarray(data.isel(time=slice(start, start + 73)).values), dims, (0, 1))
            finite = np.isfinite(block)
            totals.append(np.einsum("tzyx,zyx->tz", np.where(finite, block, 0.0), w))
            valid.append(np.einsum("tzyx,zyx->tz", finite, w))
        coords = {"time": data["time"].values, "depth": data["depth"].values}
        dims_out = ("time", "depth")
        return xr.Dataset(
            {"total": (dims_out, np.concatenate(totals)), "weight": (dims_out, np.concatenate(valid))}, coords=coords
        )

    return memo(("depth_sums", _key(store, name), variable, region_name), compute)


def _layer_factor(store: DataStore, name: str, layer: tuple[float, float]) -> xr.DataArray:
    """The fraction of each level's thickness inside ``layer`` (partial levels count)."""
    thickness = weights(store, name)["thickness"]
    return metrics.layer_weights(thickness.to_dataset(name="thickness"), thickness, layer) / thickness


def layer_mean(store: DataStore, name: str, layer: tuple[float, float], region_name: str) -> xr.DataArray:
    """Volume-weighted mean temperature of a layer and region at each time step (degC)."""
    sums, factor = depth_sums(store, name, "absolute", region_name), _layer_factor(store, name, layer)
    mean = (sums["total"] * factor).sum("depth") / (sums["weight"] * factor).sum("depth")
    return mean.assign_attrs(units="degC", long_name=f"mean temperature {layer[0]:g}-{layer[1]:g} m")


def heat_content(store: DataStore, name: str, layer: tuple[float, float], region_name: str) -> xr.DataArray:
    """Ocean heat content anomaly of a layer (ZJ) against the grid's climatology."""
    sums, factor = depth_sums(store, name, "anomaly", region_name), _layer_factor(store, name, layer)
    ohc = SEAWATER_RHO_CP * (sums["total"] * factor).sum("depth") / ZJ
    return ohc.assign_attrs(units="ZJ", long_name=f"heat content anomaly {layer[0]:g}-{layer[1]:g} m")


def hovmoller(store: DataStore, name: str, region_name: str) -> xr.DataArray:
    """Area-weighted mean anomaly by depth and month over a region: (depth, time), degC."""
    sums = depth_sums(store, name, "anomaly", region_name)
    mean = sums["total"] / sums["weight"].where(sums["weight"] > 0)
    if mean.sizes["time"] > 36:
        mean = mean.resample(time="MS").mean()
    return mean.transpose("depth", "time").assign_attrs(units="degC")


def record_years(store: DataStore, name: str) -> float:
    """Length of a dataset's record in years (first to last step, plus one step)."""
    times = store.times(name)
    if len(times) < 2:
        return 0.0
    step = (times[-1] - times[0]) / (len(times) - 1)
    return float((times[-1] - times[0] + step) / np.timedelta64(1, "D")) / 365.25


def trend(store: DataStore, name: str, depth_index: int) -> xr.DataArray:
    """Linear trend (degC per decade) of the anomaly (no seasonal cycle) at each point of one level."""

    def compute() -> xr.DataArray:
        level = store.data(name, "anomaly").isel(depth=depth_index)
        return diagnostics.trend_map(level.assign_attrs(units="degC")).load()

    return memo(("trend", _key(store, name), depth_index), compute)


def nino34(store: DataStore, name: str) -> pd.Series:
    """Monthly Nino-3.4 index (degC) of a gridded source."""

    def compute() -> pd.Series:
        index = diagnostics.nino34(store.data(name, "anomaly").isel(depth=0), weights(store, name))
        return index.to_series().resample("MS").mean()

    return memo(("nino34", _key(store, name)), compute)


def oni() -> pd.Series:
    """The shipped NOAA CPC monthly Nino-3.4 anomaly, indexed by month start."""
    table = io.read_oni()
    return pd.Series(table["nino34_anomaly"].to_numpy(), index=table["time"].dt.to_period("M").dt.to_timestamp())


def correlation(a: pd.Series, b: pd.Series) -> float:
    """Pearson correlation over the common months (NaN with fewer than 3)."""
    joined = pd.concat([a, b], axis=1, join="inner").dropna()
    return float(joined.corr().iloc[0, 1]) if len(joined) >= 3 else float("nan")


def warm(store: DataStore, dataset: str | None, truth: str | None, layer: tuple[float, float] = (0.0, 700.0)) -> None:
    """Compute, in the caller's (background) thread, what Validate and Trends show first, so that
    the pages find it memoised; errors are left for the pages to report."""
    tasks = []
    if truth is not None:
        for name in store.names("analysis"):
            if same_grid(store, name, truth):
                tasks += [
                    lambda n=name: rmse_by_depth(store, n, truth),
                    lambda n=name: rmse_over_time(store, n, truth, layer),
                ]
        if dataset in store.names("analysis") and same_grid(store, dataset, truth):
            tasks.append(lambda: background_rmse_by_depth(store, dataset, truth))
    for name in [n for n in (dataset, truth) if n]:
        tasks += [
            lambda n=name: layer_mean(store, n, layer, "global"),
            lambda n=name: heat_content(store, n, (0.0, 700.0), "global"),
            lambda n=name: heat_content(store, n, (0.0, 2000.0), "global"),
            lambda n=name: nino34(store, n),
        ]
    if dataset is not None:
        tasks += [lambda: trend(store, dataset, 0), lambda: hovmoller(store, dataset, "global")]
    for task in tasks:
        try:
            task()
        except (ValueError, KeyError):
            continue
