"""What every assimilation method shares: the gridded observations it takes
(:class:`engine.observe.gridding.ObsStep`), the :class:`Method` protocol, the first
backgrounds and :func:`cycle`, which runs any method over a period.

Every method is a small class with one ``assimilate(background, obs)`` method working on a
batch of ensemble members, the way DAPPER writes its methods (DESIGN section 8).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
from scipy.ndimage import gaussian_filter

from engine.grid import Grid
from engine.observe.gridding import ObsStep
from engine.train.normalize import to_absolute


class Method(Protocol):
    """What every assimilation method provides."""

    name: str

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        """Analysis anomalies (members, depth, lat, lon) from background anomalies of that shape."""
        ...


def initial_backgrounds(grid: Grid, members: int, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """First backgrounds centred on the climatology (zero anomaly): one member is the
    climatology; several are smooth random departures from it with the climatological
    amplitude ``scale`` (degC per level) and zero ensemble mean, so members differ."""
    states = np.zeros((members,) + grid.shape, dtype="f4")
    if members == 1:
        return states
    for m in range(members):
        noise = gaussian_filter(
            rng.standard_normal(grid.shape), sigma=(0.7, 1.5, 1.5), mode=("nearest", "nearest", "wrap")
        )
        noise /= noise.std() + 1e-12
        states[m] = noise * scale[:, None, None] * grid.ocean
    return states - states.mean(axis=0, keepdims=True)


def cycle(
    method: Method,
    steps: Iterator[ObsStep],
    background: np.ndarray,
    seed: int,
    perturb: bool = True,
) -> Iterator[tuple[ObsStep, np.ndarray]]:
    """Run ``method`` over the observation steps; yield (obs, analysis members) each step.

    ``background`` (members, depth, lat, lon) is the first background; each analysis
    becomes the next background. With several members and ``perturb``, each member sees
    its own perturbed observations, drawn from a generator seeded by (seed, step) so a
    resumed run draws exactly what the uninterrupted one would have.
    """
    members = background.shape[0]
    for obs in steps:
        seen = obs.perturbed(members, np.random.default_rng([seed, obs.step])) if perturb and members > 1 else obs
        background = method.assimilate(background, seen)
        yield obs, background


def ensemble_fields(analysis: np.ndarray, grid: Grid, day_of_year: float, save_members: bool) -> dict[str, np.ndarray]:
    """Mean anomaly, absolute temperature (NaN on land), spread and optionally members."""
    mean = analysis.mean(axis=0)
    fields = {
        "thetao_anomaly": np.where(grid.ocean, mean, np.nan),
        "thetao": to_absolute(mean[None], grid, np.array([day_of_year]))[0],
    }
    if analysis.shape[0] > 1:
        fields["thetao_spread"] = np.where(grid.ocean, analysis.std(axis=0, ddof=1), np.nan)
    if save_members:
        fields["thetao_anomaly_member"] = np.where(grid.ocean, analysis, np.nan)
    return fields


class Cancelled(Exception):
    """Raised when a run is asked to stop; the finished steps stay in ``OUT.part``."""
