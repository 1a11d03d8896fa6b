"""Real-observation workflows: an analysis checked against observations, no truth needed.

Composition only: files through :mod:`engine.io`, the observations to model levels by
:mod:`engine.observe.gridding`, the statistics by :mod:`engine.evaluate.obs_space`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import nnls

from engine import io
from engine.config import OBS_ERROR_RULES, Config, ObsErrorSpec
from engine.errors import InputError
from engine.evaluate.obs_space import departures, diagnostics_tables
from engine.grid import Grid, time_to_step
from engine.observe.gridding import observation_levels, table_steps
from engine.observe.representativeness import front_error, representativeness_error, vertical_gradient


def _analysis_period(ds: xr.Dataset, grid: Grid, steps_per_year: int, path: Path) -> tuple[int, int]:
    """First year and number of steps of an analysis file, checked against the grid."""
    if "thetao_anomaly" not in ds:
        raise InputError(f"{path}: no thetao_anomaly variable; give an analysis file written by 'deepda assimilate'")
    if ds["thetao_anomaly"].shape[1:] != grid.shape:
        raise InputError(
            f"{path}: its grid {ds['thetao_anomaly'].shape[1:]} is not the {grid.spec.name} grid {grid.shape}"
        )
    times = pd.DatetimeIndex([pd.Timestamp(str(t)) for t in ds["time"].values[:1]])
    first_year = int(times.year[0])
    if int(time_to_step(times.to_numpy(), first_year, steps_per_year)[0]) != 0:
        raise InputError(f"{path}: does not start in the first step of a year; give a DeepDA analysis file")
    return first_year, ds.sizes["time"]


def departure_blocks(
    analysis_path: str | Path, obs_path: str | Path, config: Config
) -> tuple[Iterator[pd.DataFrame], int, Grid]:
    """O-B and O-A of every observation in ``obs_path`` against the analysis, a year at a time.

    The background of a step is the analysis of the step before (a cycled analysis); the
    first step's is the climatology, with no spread. Returns the blocks, the first year and
    the grid.
    """
    grid = io.load_grid(config.grid)
    repr_error = representativeness_error(grid, config.obs_error)
    spy = config.world.steps_per_year
    ds = io.open_fields(analysis_path)
    first_year, n_steps = _analysis_period(ds, grid, spy, Path(analysis_path))
    n_blocks = -(-n_steps // spy)

    def block_of(times: np.ndarray) -> np.ndarray:
        return table_steps(times, first_year, spy) // spy

    def blocks() -> Iterator[pd.DataFrame]:
        tables = io.read_observation_groups(obs_path, block_of, range(n_blocks), grid=grid)
        previous = {"thetao_anomaly": np.zeros((1, *grid.shape), "f4"), "thetao_spread": None}
        for b, table in enumerate(tables):
            s0, s1 = b * spy, min(n_steps, (b + 1) * spy)
            fields = {
                name: np.nan_to_num(ds[name].isel(time=slice(s0, s1)).values)
                for name in ("thetao_anomaly", "thetao_spread")
                if name in ds
            }
            analysis = fields["thetao_anomaly"]
            background = np.concatenate([previous["thetao_anomaly"], analysis[:-1]])
            spread = None
            if "thetao_spread" in fields:
                first = previous["thetao_spread"]
                first = np.full((1, *grid.shape), np.nan, "f4") if first is None else first
                spread = np.concatenate([first, fields["thetao_spread"][:-1]])
            previous = {name: values[-1:] for name, values in fields.items()}
            levels = observation_levels(table, grid, first_year, spy, s0, s1 - s0, repr_error)
            yield departures(levels, analysis, background, spread, first_step=s0)

    return blocks(), first_year, grid


def observation_space_tables(
    analysis_path: str | Path, obs_path: str | Path, config: Config
) -> dict[str, pd.DataFrame]:
    """O-B and O-A mean, RMSE and count, and the innovation-variance ratio, by depth,
    platform, region and year (DART's ``obs_diag``)."""
    blocks, first_year, grid = departure_blocks(analysis_path, obs_path, config)
    tables = diagnostics_tables(blocks, grid.depth, config.world.steps_per_year, first_year)
    if not tables:
        raise InputError(f"{obs_path}: no good observation falls in the period of {analysis_path}; check both")
    return tables


DEPTH_BANDS = ((0.0, 200.0), (200.0, 700.0), (700.0, 2000.0))


def _band_sums(deps: pd.DataFrame, depth: np.ndarray) -> pd.DataFrame:
    """Squared-error sums and counts of O-A (and of the observed anomaly: climatology) per depth band."""
    z = depth[deps["k"].to_numpy()]
    labels = [f"{lo:g}-{hi:g} m" for lo, hi in DEPTH_BANDS]
    band = pd.cut(z, [b[0] for b in DEPTH_BANDS] + [DEPTH_BANDS[-1][1]], labels=labels, include_lowest=True)
    frame = pd.DataFrame({"band": band, "n": 1, "analysis": deps["oma"] ** 2, "climatology": deps["anomaly"] ** 2})
    return frame.groupby("band", observed=False).sum()


def withheld_scores(analyses: dict[str, str | Path], withheld_path: str | Path, config: Config) -> pd.DataFrame:
    """RMSE (degC) of each analysis, and of the climatology, at withheld observations, by depth band.

    Scored at each observation's own place, time and depth (interpolated to the analysis
    levels, :func:`engine.observe.gridding.observation_levels`); every analysis must have
    left those observations out. Rows are methods, columns the bands, plus the count.
    """
    rows, counts = {}, None
    for label, path in analyses.items():
        blocks, _, grid = departure_blocks(path, withheld_path, config)
        total = None
        for deps in blocks:
            if len(deps):
                sums = _band_sums(deps, grid.depth)
                total = sums if total is None else total + sums
        if total is None:
            raise InputError(f"{withheld_path}: no withheld observation falls in the period of {path}; check both")
        rows[label] = np.sqrt(total["analysis"] / total["n"])
        rows.setdefault("climatology", np.sqrt(total["climatology"] / total["n"]))
        counts = total["n"]
    table = pd.DataFrame(rows).T
    table.loc["observations"] = counts
    table.index.name = "method"
    return table


def fitted_heave(levels: pd.DataFrame) -> float:
    """The heave (m) for which ``known + heave^2 g2`` best matches ``d`` over the rows (levels:
    mean Desroziers product ``d``, mean known error variance ``known``, mean |dT/dz|^2 ``g2``),
    least squares weighted by the root of each level's ``count``, heave^2 >= 0."""
    weight = np.sqrt(levels["count"].to_numpy("f8"))
    design = levels["g2"].to_numpy("f8")[:, None] * weight[:, None]
    (heave2,), _ = nnls(design, (levels["d"] - levels["known"]).to_numpy("f8") * weight)
    return float(np.sqrt(heave2))


def fit_obs_error(analysis_path: str | Path, obs_path: str | Path, config: Config) -> tuple[ObsErrorSpec, pd.DataFrame]:
    """The [obs_error] heave that Desroziers' diagnostic finds in the departures.

    ``E[(O-A)(O-B)] = R`` per model level (Desroziers et al. 2005), with ``R`` the stated
    model: instrument error^2 + (heave_m |dT/dz|)^2 + fronts^2 + floor^2. The unknown,
    heave_m^2, is the non-negative least squares fit over the levels, each weighted by its
    count (a free floor would take up the misfit of every level alike, so it stays as set).
    One fit is one Desroziers iteration: assimilate again with the fitted errors and fit
    again until it settles. Returns the spec and the table by level.
    """
    grid = io.load_grid(config.grid)
    repr_error, gradient = representativeness_error(grid, config.obs_error), vertical_gradient(grid)
    front = front_error(grid, config.obs_error)
    blocks, _, _ = departure_blocks(analysis_path, obs_path, config)
    parts = []
    for deps in blocks:
        cells = (deps["k"].to_numpy(), deps["iy"].to_numpy(), deps["ix"].to_numpy())
        instrument2 = np.maximum(deps["error"].to_numpy() ** 2 - repr_error[cells].astype("f8") ** 2, 0.0)
        known = instrument2 + front[cells] ** 2 + config.obs_error.floor**2
        parts.append(
            pd.DataFrame({"k": cells[0], "d": deps["oma"] * deps["omb"], "known": known, "g2": gradient[cells] ** 2})
        )
    if not parts or not sum(len(p) for p in parts):
        raise InputError(f"{obs_path}: no good observation falls in the period of {analysis_path}; check both")
    levels = (
        pd.concat(parts)
        .groupby("k")
        .agg(count=("d", "size"), d=("d", "mean"), known=("known", "mean"), g2=("g2", "mean"))
    )
    fitted = replace(config.obs_error, heave_m=min(fitted_heave(levels), float(OBS_ERROR_RULES["heave_m"].hi)))
    levels = levels.assign(
        depth=grid.depth[levels.index],
        desroziers_error=np.sqrt(np.maximum(levels["d"], 0.0)),
        stated_error=np.sqrt(levels["known"] + config.obs_error.heave_m**2 * levels["g2"]),
        fitted_error=np.sqrt(levels["known"] + fitted.heave_m**2 * levels["g2"]),
    )
    return fitted, levels[["depth", "count", "desroziers_error", "stated_error", "fitted_error"]].reset_index(drop=True)
