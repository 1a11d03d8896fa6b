"""Cycling assimilation: background = previous analysis, analysis = method(background, obs).

Every method (DeepDA here, the baselines in ``engine.baselines``) is a small class with
one ``assimilate(background, obs)`` method working on a batch of ensemble members, the
way DAPPER writes its methods. :func:`cycle` runs any of them over a period, with
ensembles from perturbed initial backgrounds and perturbed observations (DESIGN
section 8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import gaussian_filter

from engine.checkpoint import Checkpoint
from engine.grid import Grid, step_day_of_year
from engine.gridding import grid_profiles, table_steps


@dataclass
class ObsStep:
    """One step's super-observations, anomalies in degC, each (depth, lat, lon).

    ``anomaly`` may also be (members, depth, lat, lon) once perturbed per member.
    """

    anomaly: np.ndarray
    mask: np.ndarray  # 1 where observed
    error: np.ndarray  # super-observation error std (degC), 0 where unobserved
    step: int  # index in the period
    day_of_year: float

    def perturbed(self, members: int, rng: np.random.Generator) -> ObsStep:
        """Per-member observations with N(0, error) noise (member 0 unperturbed)."""
        noise = rng.standard_normal((members,) + self.mask.shape).astype("f4") * self.error
        noise[0] = 0.0
        values = (self.anomaly[None] + noise) * self.mask
        return ObsStep(values.astype("f4"), self.mask, self.error, self.step, self.day_of_year)


class Method(Protocol):
    """What every assimilation method provides."""

    name: str

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        """Analysis anomalies (members, depth, lat, lon) from background anomalies of that shape."""
        ...


class DeepDA:
    """The trained generator as an assimilation method."""

    name = "deepda"

    def __init__(self, checkpoint: Checkpoint, grid: Grid, device: str | torch.device = "cpu") -> None:
        checkpoint.check_grid(grid)
        self.generator = checkpoint.generator.to(device).eval()
        self.normalizer = checkpoint.normalizer
        self.device = torch.device(device)
        self.ocean = torch.from_numpy(grid.ocean.astype("f4"))[None, None].to(self.device)

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(values, dtype="f4"))[:, None].to(self.device)

    @torch.inference_mode()
    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        members = background.shape[0]
        values = np.broadcast_to(obs.anomaly, background.shape)
        mask = np.broadcast_to(obs.mask, background.shape)
        bg = self._tensor(self.normalizer.encode(background))
        ob = self._tensor(self.normalizer.encode(values) * mask)
        out = self.generator(bg, ob, self._tensor(mask), self.ocean.expand(members, -1, -1, -1, -1))
        return self.normalizer.decode(out[:, 0].float().cpu().numpy())


class Climatology:
    """Zero anomaly whatever is observed: the floor every method must beat."""

    name = "climatology"

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        return np.zeros_like(background)


class Persistence:
    """Observed cells take the observation; the others keep their last value."""

    name = "persistence"

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        return np.where(obs.mask > 0, obs.anomaly, background).astype("f4")


def initial_backgrounds(grid: Grid, members: int, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Member 0 starts from climatology (zero anomaly); the others from smooth random states
    with the climatological amplitude ``scale`` (degC per level), so members differ."""
    states = np.zeros((members,) + grid.shape, dtype="f4")
    for m in range(1, members):
        noise = gaussian_filter(
            rng.standard_normal(grid.shape), sigma=(0.7, 1.5, 1.5), mode=("nearest", "nearest", "wrap")
        )
        noise /= noise.std() + 1e-12
        states[m] = noise * scale[:, None, None] * grid.ocean
    return states


def obs_steps(
    table: pd.DataFrame,
    grid: Grid,
    start_year: int,
    steps_per_year: int,
    first_step: int,
    n_steps: int,
    chunk: int = 73,
) -> Iterator[ObsStep]:
    """Grid the profile table one chunk (a year of pentads) at a time, yielding each step."""
    steps = table_steps(table["time"].to_numpy(), start_year, steps_per_year) if len(table) else np.zeros(0, int)
    for c0 in range(first_step, first_step + n_steps, chunk):
        c1 = min(c0 + chunk, first_step + n_steps)
        rows = table[(steps >= c0) & (steps < c1)]
        fields = grid_profiles(rows, grid, start_year, steps_per_year, first_step=c0, n_steps=c1 - c0)
        doy = step_day_of_year(c1 - c0, steps_per_year, c0)
        for t in range(c1 - c0):
            mask = fields["obs_mask"].values[t]
            yield ObsStep(
                np.nan_to_num(fields["obs_anomaly"].values[t]) * mask,
                mask,
                np.nan_to_num(fields["obs_error"].values[t]) * mask,
                c0 + t - first_step,
                float(doy[t]),
            )


def cycle(
    method: Method,
    steps: Iterator[ObsStep],
    background: np.ndarray,
    rng: np.random.Generator,
    perturb: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[ObsStep, np.ndarray]]:
    """Run ``method`` over the observation steps; yield (obs, analysis members) each step.

    ``background`` (members, depth, lat, lon) is the first background; each analysis
    becomes the next background. With several members and ``perturb``, each member sees
    its own perturbed observations.
    """
    members = background.shape[0]
    for obs in steps:
        seen = obs.perturbed(members, rng) if perturb and members > 1 else obs
        background = method.assimilate(background, seen)
        yield obs, background
        if progress:
            progress(1)
