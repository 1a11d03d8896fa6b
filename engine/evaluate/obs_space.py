"""Validation without a truth, in observation space, the way DART's ``obs_diag`` does it.

Each observation (a profile interpolated to the model levels,
:func:`engine.observe.gridding.observation_levels`) is compared with the analysis of its
step (O-A) and with the background the analysis started from (O-B: in a cycled system the
previous step's analysis). Statistics are kept as sums per group (depth, platform, region,
year) so that a 40-year run is added up a year at a time in bounded memory.

The innovation-variance ratio ``mean((O-B)^2) / mean(spread_B^2 + error^2)`` is near 1
when the system's stated background spread and observation errors are right (Desroziers
et al. 2005, doi:10.1256/qj.05.108); above 1 they are too small. It needs an ensemble (a
background spread): without one it is NaN. Desroziers' ``E[(O-A)(O-B)] = R`` gives the
observation error the departures imply (``desroziers_error``), beside the one stated
(``stated_error``, instrument and representativeness): a system that trusts observations
more than they deserve shows a Desroziers error above the stated one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

GROUPINGS = ("depth", "platform", "region", "year")
SUMS = ("count", "omb", "omb2", "oma", "oma2", "expected", "omaomb", "error2")


def latitude_band(lat: np.ndarray) -> np.ndarray:
    """'tropics' within 20 degrees of the equator, else the hemisphere's extratropics."""
    lat = np.asarray(lat)
    return np.where(np.abs(lat) <= 20.0, "tropics", np.where(lat > 0, "northern_extratropics", "southern_extratropics"))


def departures(
    levels: pd.DataFrame,
    analysis: np.ndarray,
    background: np.ndarray | None = None,
    spread: np.ndarray | None = None,
    first_step: int = 0,
) -> pd.DataFrame:
    """``levels`` with O-A (``oma``), O-B (``omb``) and the background spread at each observation.

    ``analysis``, ``background`` and ``spread`` are anomaly fields (steps, depth, lat, lon)
    for the steps ``first_step ..`` of the period; observations of other steps are left out.
    Without ``background`` only O-A is given (e.g. for observations withheld from the run).
    """
    local = levels["step"].to_numpy() - first_step
    inside = (local >= 0) & (local < len(analysis))
    rows = levels[inside]
    index = (local[inside], rows["k"].to_numpy(), rows["iy"].to_numpy(), rows["ix"].to_numpy())
    obs = rows["anomaly"].to_numpy()
    out = rows.assign(oma=obs - analysis[index])
    if background is not None:
        out["omb"] = obs - background[index]
        out["background_spread"] = spread[index] if spread is not None else np.nan
    return out


def group_sums(deps: pd.DataFrame, by: str, depth: np.ndarray, steps_per_year: int, start_year: int) -> pd.DataFrame:
    """The sums behind :func:`statistics`, per value of grouping ``by``: one of GROUPINGS, or
    any column of ``deps`` (e.g. ``step``, for statistics at a finer time than the year)."""
    if by == "depth":
        key = depth[deps["k"].to_numpy()]
    elif by == "region":
        key = latitude_band(deps["lat"].to_numpy())
    elif by == "year":
        key = start_year + deps["step"].to_numpy() // steps_per_year
    elif by == "platform":
        key = deps["platform"].to_numpy()
    elif by in deps:
        key = deps[by].to_numpy()
    else:
        raise ValueError(f"unknown grouping {by!r}; choose from {', '.join(GROUPINGS)}")
    oma = deps["oma"].to_numpy()
    omb = deps["omb"].to_numpy() if "omb" in deps else np.full(len(deps), np.nan)
    spread = deps["background_spread"].to_numpy() if "background_spread" in deps else np.full(len(deps), np.nan)
    frame = pd.DataFrame(
        {
            by: key,
            "count": 1,
            "omb": omb,
            "omb2": omb**2,
            "oma": oma,
            "oma2": oma**2,
            "expected": spread**2 + deps["error"].to_numpy() ** 2,
            "omaomb": oma * omb,
            "error2": deps["error"].to_numpy() ** 2,
        }
    )
    return frame.groupby(by).sum(min_count=1)


def add_sums(total: pd.DataFrame | None, more: pd.DataFrame) -> pd.DataFrame:
    """Two blocks' sums added (groups present in either)."""
    return more if total is None else total.add(more, fill_value=0.0)


def statistics(sums: pd.DataFrame) -> pd.DataFrame:
    """Mean, RMSE and count of O-B and O-A per group, and the innovation-variance ratio."""
    n = sums["count"]
    return pd.DataFrame(
        {
            "count": n.astype("i8"),
            "omb_mean": sums["omb"] / n,
            "omb_rmse": np.sqrt(sums["omb2"] / n),
            "oma_mean": sums["oma"] / n,
            "oma_rmse": np.sqrt(sums["oma2"] / n),
            "innovation_ratio": sums["omb2"] / sums["expected"],
            "desroziers_error": np.sqrt(np.maximum(sums["omaomb"] / n, 0.0)),
            "stated_error": np.sqrt(sums["error2"] / n),
        },
        index=sums.index,
    )


def diagnostics_tables(
    blocks: Sequence[pd.DataFrame] | object, depth: np.ndarray, steps_per_year: int, start_year: int
) -> dict[str, pd.DataFrame]:
    """Statistics by each grouping from an iterable of departure blocks (one block at a time)."""
    totals: dict[str, pd.DataFrame | None] = dict.fromkeys(GROUPINGS)
    for deps in blocks:
        if not len(deps):
            continue
        for by in GROUPINGS:
            totals[by] = add_sums(totals[by], group_sums(deps, by, depth, steps_per_year, start_year))
    return {by: statistics(total) for by, total in totals.items() if total is not None}
