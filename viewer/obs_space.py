"""Observation-space statistics the Validate page shows where no truth exists (real data).

Thin wrappers around :mod:`engine.realdata` and :mod:`engine.evaluate.obs_space`: one pass of
the engine's departures (O-B, O-A at each observation) gives its tables by depth, platform,
region and year, and, with the same engine sums grouped by step and by cell, the series by
month and the innovation map. Memoised on the files' (path, mtime) keys; slow (it reads the
observation file), so the page computes it with :meth:`~viewer.store.DataStore.background`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from engine.config import PRESET_NAMES, Config, preset
from engine.errors import InputError
from engine.evaluate.obs_space import add_sums, diagnostics_tables, group_sums, statistics
from engine.realdata import departure_blocks, withheld_scores
from viewer.store import DataStore, file_key, memo, steps_per_year

CURVES = {"O-B": "omb", "O-A": "oma"}


@dataclass(frozen=True)
class ObsSpace:
    """What one analysis looks like against one observation file."""

    tables: dict[str, pd.DataFrame]  # the engine's statistics by depth, platform, region, year
    monthly: pd.DataFrame  # the same statistics by month (index: month start)
    cell_sums: pd.DataFrame  # the engine's sums by (year, k, iy, ix): the innovation map
    years: tuple[int, ...]


@dataclass(frozen=True)
class Withheld:
    """Scores of the analyses that left the same profiles out, at those profiles."""

    file: Path
    methods: tuple[str, ...]
    table: pd.DataFrame  # engine.realdata.withheld_scores: RMSE by depth band, with climatology
    by_depth: dict[str, pd.DataFrame]  # method (and climatology) -> engine statistics by depth


def config_for(store: DataStore, name: str) -> Config:
    """The engine configuration of a gridded source: its grid's preset (or coarse settings on
    its grid), with the file's steps per year."""
    spec = store.grid(name).spec
    config = preset(spec.name) if spec.name in PRESET_NAMES else replace(preset("coarse"), grid=spec)
    spy = steps_per_year(store.fields(name))
    return (
        config
        if spy == config.world.steps_per_year
        else replace(config, world=replace(config.world, steps_per_year=spy))
    )


def _cell_key(deps: pd.DataFrame, shape: tuple[int, int, int, int], spy: int) -> np.ndarray:
    """One integer per departure for its (year, level, cell), to group the engine's sums by."""
    year = deps["step"].to_numpy() // spy
    index = (np.clip(year, 0, shape[0] - 1), deps["k"].to_numpy(), deps["iy"].to_numpy(), deps["ix"].to_numpy())
    return np.ravel_multi_index(index, shape)


def observation_space(store: DataStore, analysis: str, obs: str) -> ObsSpace:
    """O-B and O-A of the analysis at every good observation of ``obs`` (engine statistics)."""
    a_path, o_path = store.source(analysis).path, store.source(obs).path

    def compute() -> ObsSpace:
        config = config_for(store, analysis)
        blocks, first_year, grid = departure_blocks(a_path, o_path, config)
        spy = config.world.steps_per_year
        n_years = -(-len(store.times(analysis)) // spy)
        shape = (n_years, *grid.shape)
        extra: dict[str, pd.DataFrame | None] = {"step": None, "cell": None}

        def tapped() -> Iterator[pd.DataFrame]:
            for deps in blocks:
                if len(deps):
                    cells = deps.assign(cell=_cell_key(deps, shape, spy))
                    extra["step"] = add_sums(extra["step"], group_sums(deps, "step", grid.depth, spy, first_year))
                    extra["cell"] = add_sums(extra["cell"], group_sums(cells, "cell", grid.depth, spy, first_year))
                yield deps

        tables = diagnostics_tables(tapped(), grid.depth, spy, first_year)
        if not tables:  # as engine.realdata.observation_space_tables says it
            raise InputError(f"{o_path}: no good observation falls in the period of {a_path}; check both")
        times = store.times(analysis)
        steps = extra["step"]
        months = pd.DatetimeIndex(times[np.clip(steps.index.to_numpy(), 0, len(times) - 1)]).to_period("M")
        monthly = statistics(steps.groupby(months.to_timestamp()).sum())
        monthly.index = monthly.index.astype("datetime64[ns]")  # bokeh reads coarser units as plain numbers
        monthly.index.name = "time"
        return ObsSpace(tables, monthly, extra["cell"], tuple(range(first_year, first_year + n_years)))

    return memo(("obs space", file_key(a_path), file_key(o_path)), compute)


def innovation_map(
    store: DataStore, analysis: str, space: ObsSpace, depth_index: int, year: int | None, which: str = "O-B"
) -> xr.Dataset:
    """Mean O-B (or O-A) per observed cell at one level, over one year or the whole period
    (``innovation``, NaN where nothing was observed), and the departures in each (``count``)."""
    ds = store.fields(analysis)
    shape = (len(space.years), ds.sizes["depth"], ds.sizes["lat"], ds.sizes["lon"])
    sums = space.cell_sums
    year_i, k, iy, ix = np.unravel_index(sums.index.to_numpy(), shape)
    keep = (k == depth_index) & ((year_i == space.years.index(year)) if year is not None else True)
    chosen = sums[keep].groupby(iy[keep] * shape[3] + ix[keep]).sum()
    stats = statistics(chosen) if len(chosen) else pd.DataFrame(columns=["count", f"{CURVES[which]}_mean"])
    values = np.full(shape[2:], np.nan, "f8")
    counts = np.zeros(shape[2:], "i8")
    cy, cx = np.unravel_index(stats.index.to_numpy(dtype="i8"), shape[2:])
    values[cy, cx] = stats[f"{CURVES[which]}_mean"].to_numpy()
    counts[cy, cx] = stats["count"].to_numpy()
    coords = {"lat": ds["lat"].values, "lon": ds["lon"].values, "depth": float(ds["depth"].values[depth_index])}
    name = "observation minus background" if which == "O-B" else "observation minus analysis"
    return xr.Dataset(
        {
            "innovation": (("lat", "lon"), values, {"units": "degC", "long_name": f"mean {name}"}),
            "count": (("lat", "lon"), counts, {"long_name": "departures averaged"}),
        },
        coords=coords,
    )


def series(table: pd.DataFrame, index: str) -> dict[str, xr.DataArray]:
    """{"O-B RMSE": ..., "O-B mean": ..., "O-A RMSE": ..., "O-A mean": ...} of a statistics table."""
    out = {}
    for label, column in CURVES.items():
        for stat, name in (("rmse", "RMSE"), ("mean", "mean")):
            values = table[f"{column}_{stat}"].to_numpy("f8")
            out[f"{label} {name}"] = xr.DataArray(
                values, dims=index, coords={index: table.index.to_numpy()}, attrs={"units": "degC"}
            )
    return out


# --- withheld profiles --------------------------------------------------------------------------


def withheld_file(store: DataStore, analysis: str) -> Path | None:
    """The withheld observations written beside an analysis (``A.withheld.nc``), if any."""
    from engine.da.reanalysis import withheld_path  # brings torch: only from a background task

    if not store.fields(analysis).attrs.get("withheld_observations"):
        return None
    path = withheld_path(store.source(analysis).path)
    return path if path.exists() else None


def _withholding(store: DataStore, name: str) -> tuple[str, str] | None:
    """(observation file, rule) an analysis withheld by, from its attributes (not its file name)."""
    attrs = store.fields(name).attrs
    rule = str(attrs.get("withheld_observations", ""))
    return (str(attrs.get("observations", "")), rule.rpartition(", in ")[0] or rule) if rule else None


def withheld_methods(store: DataStore, analysis: str) -> list[str]:
    """The open analyses (the chosen one first) that withheld the same profiles of the same
    file on the same grid: only they may be scored on them."""
    from viewer.derive import same_grid

    rule = _withholding(store, analysis)
    if rule is None:
        return []
    others = [n for n in store.names("analysis") if n != analysis and _withholding(store, n) == rule]
    return [analysis] + [n for n in others if same_grid(store, n, analysis)]


def withheld(store: DataStore, analysis: str) -> Withheld | None:
    """The withheld-profile scores of the analyses that share the chosen one's withheld file,
    by depth band (``engine.realdata.withheld_scores``) and by level; None without a file."""
    file = withheld_file(store, analysis)
    if file is None:
        return None
    methods = withheld_methods(store, analysis)
    paths = {m: store.source(m).path for m in methods}

    def compute() -> Withheld:
        config = config_for(store, analysis)
        table = withheld_scores(paths, file, config)
        by_depth = {}
        for method, path in paths.items():
            by_depth[method], clim = _scores_by_depth(path, file, config)
            by_depth.setdefault("climatology", clim)  # the same observations for every method
        return Withheld(file, tuple(methods), table, {k: by_depth[k] for k in [*methods, "climatology"]})

    return memo(("withheld", file_key(file), tuple(file_key(p) for p in paths.values())), compute)


def _scores_by_depth(path: Path, file: Path, config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Engine statistics by depth of an analysis's O-A at the withheld observations, and of
    the climatology's (its O-A is the observed anomaly itself)."""
    blocks, first_year, grid = departure_blocks(path, file, config)
    spy, clim = config.world.steps_per_year, None

    def tapped() -> Iterator[pd.DataFrame]:
        nonlocal clim
        for deps in blocks:
            if len(deps):
                zero = deps.assign(oma=deps["anomaly"])
                clim = add_sums(clim, group_sums(zero, "depth", grid.depth, spy, first_year))
            yield deps

    tables = diagnostics_tables(tapped(), grid.depth, spy, first_year)
    if clim is None:
        raise InputError(f"{file}: no withheld observation falls in the period of {path}; check both")
    return tables["depth"], statistics(clim)
