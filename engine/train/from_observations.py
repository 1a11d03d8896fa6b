"""Learning from real observations themselves: a self-supervised fine-tune, no truth needed.

A model trained in a model world knows that world's covariances and errors, not the
ocean's. Here it adapts to the user's observations: in each pass through the period a
fresh random share of the profiles is kept out of the generator's input and becomes the
target, and the loss is the cycled analysis' misfit to those super-observations, each
weighted by its error (instrument and representativeness), so the network is asked for
what cross-validation asks of it. A fixed share of the profiles never enters the input
or the loss of any pass; their misfit after every pass decides which weights are kept.
Observations the user withholds for validation are in another file and never seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from engine.config import Config, LearnSpec
from engine.grid import Grid
from engine.observe.gridding import ObsStep, obs_steps
from engine.observe.profiles import QC_GOOD
from engine.observe.qc import profile_keys
from engine.observe.representativeness import representativeness_error
from engine.train.checkpoint import Checkpoint

INPUT, TARGET, VALIDATION = 0, 1, 2


def profile_roles(table: pd.DataFrame, spec: LearnSpec, pass_index: int) -> np.ndarray:
    """Each row's role in one pass: INPUT, TARGET or VALIDATION, the same for all rows of a
    profile. Validation profiles are fixed by ``spec.seed``; targets are redrawn each pass."""
    keys, inverse = np.unique(profile_keys(table), return_inverse=True)
    fixed = np.random.default_rng([spec.seed, 0]).random(len(keys))
    drawn = np.random.default_rng([spec.seed, 1, pass_index]).random(len(keys))
    roles = np.where(drawn < spec.target_share / (1.0 - spec.validation_share), TARGET, INPUT)
    roles = np.where(fixed < spec.validation_share, VALIDATION, roles)
    return roles[inverse]


@dataclass
class LearnState:
    """A fine-tune in progress: passes done, the best validation misfit and its weights, the log."""

    passes: int = 0
    best_rmse: float = math.inf
    bad_passes: int = 0
    best_generator: dict[str, torch.Tensor] = field(default_factory=dict)
    log: list[dict[str, float]] = field(default_factory=list)


class ObservationLearner:
    """The generator of ``checkpoint`` fine-tuned on one profile table over ``n_steps`` steps
    from January ``first_year``."""

    def __init__(self, checkpoint: Checkpoint, grid: Grid, table: pd.DataFrame, first_year: int, n_steps: int) -> None:
        checkpoint.check_grid(grid)
        self.config: Config = checkpoint.config
        self.spec = self.config.learn
        self.grid, self.first_year, self.n_steps = grid, first_year, n_steps
        self.table = table[table["qc"].to_numpy() == QC_GOOD]
        self.generator = checkpoint.generator.train()
        self.scale = torch.from_numpy(np.asarray(checkpoint.normalizer.scale, "f4"))[:, None, None]
        self.ocean = torch.from_numpy(grid.ocean.astype("f4"))[None, None]
        self.repr_error = representativeness_error(grid, self.config.obs_error)
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=self.spec.learning_rate, betas=(0.5, 0.999))

    def _steps(self, rows: np.ndarray) -> Iterator[ObsStep]:
        spy = self.config.world.steps_per_year
        table = self.table[rows]
        return obs_steps(table, self.grid, self.first_year, spy, 0, self.n_steps, repr_error=self.repr_error)

    def _analyse(self, background: torch.Tensor, obs: ObsStep) -> torch.Tensor:
        """The analysis (network units, (1, 1, nz, ny, nx)) of one step."""
        mask = torch.from_numpy(obs.mask)[None, None]
        values = torch.from_numpy(obs.anomaly)[None, None] / self.scale * mask
        error = torch.from_numpy(obs.error)[None, None] / self.scale * mask
        return self.generator(background, values, mask, self.ocean, error)

    def _misfit(self, analysis: torch.Tensor, target: ObsStep, weighted: bool) -> tuple[torch.Tensor, float]:
        """Sum of (squared misfit to the target super-observations [/ error^2]) and of the weights."""
        mask = torch.from_numpy(target.mask)[None, None]
        weight = mask / torch.from_numpy(np.maximum(target.error, 0.05) ** 2)[None, None] if weighted else mask
        misfit = analysis * self.scale - torch.from_numpy(target.anomaly)[None, None]
        return (weight * misfit.square()).sum(), float(weight.sum())

    def train_pass(self, pass_index: int) -> float:
        """One pass through the period, an update per window with targets; the mean weighted misfit."""
        roles = profile_roles(self.table, self.spec, pass_index)
        inputs, targets = self._steps(roles == INPUT), self._steps(roles == TARGET)
        background = torch.zeros_like(self.ocean)
        total, weights, loss, loss_weight = 0.0, 0.0, torch.zeros(()), 0.0
        for t, (obs, target) in enumerate(zip(inputs, targets, strict=True)):
            background = self._analyse(background, obs)
            if target.mask.any():
                squares, weight = self._misfit(background, target, weighted=True)
                loss, loss_weight = loss + squares, loss_weight + weight
            if (t + 1) % self.spec.window == 0 or t + 1 == self.n_steps:
                if loss_weight > 0:
                    self.optimizer.zero_grad()
                    (loss / loss_weight).backward()
                    self.optimizer.step()
                    total, weights = total + float(loss.detach()), weights + loss_weight
                background = background.detach()
                loss, loss_weight = torch.zeros(()), 0.0
        return total / max(weights, 1e-12)

    @torch.no_grad()
    def validation_rmse(self) -> float:
        """RMSE (degC) of the analysis cycled on every profile but the validation ones,
        at the validation profiles' super-observations."""
        roles = profile_roles(self.table, self.spec, 0)
        inputs, targets = self._steps(roles != VALIDATION), self._steps(roles == VALIDATION)
        self.generator.eval()
        background = torch.zeros_like(self.ocean)
        squares, count = 0.0, 0.0
        for obs, target in zip(inputs, targets, strict=True):
            background = self._analyse(background, obs)
            if target.mask.any():
                step_squares, step_count = self._misfit(background, target, weighted=False)
                squares, count = squares + float(step_squares), count + step_count
        self.generator.train()
        return math.sqrt(squares / count) if count else math.nan

    def run(self, state: LearnState, on_pass: Callable[[dict[str, float]], None] | None = None) -> LearnState:
        """Passes until ``spec.passes`` or early stopping; ``on_pass`` gets each pass's log row
        (call it to save: the state then holds everything a resumed run needs)."""
        if not state.log:  # the starting weights are the first to beat
            rmse = self.validation_rmse()
            state.best_rmse, state.best_generator = rmse, _copy(self.generator)
            state.log.append({"pass": 0, "misfit": math.nan, "validation_rmse": rmse, "seconds": 0.0})
        start = time.perf_counter()
        while state.passes < self.spec.passes and state.bad_passes < self.spec.patience:
            misfit = self.train_pass(state.passes + 1)
            rmse = self.validation_rmse()
            state.passes += 1
            if rmse < state.best_rmse:
                state.best_rmse, state.best_generator, state.bad_passes = rmse, _copy(self.generator), 0
            else:
                state.bad_passes += 1
            row = {
                "pass": state.passes,
                "misfit": misfit,
                "validation_rmse": rmse,
                "seconds": time.perf_counter() - start,
            }
            state.log.append(row)
            if on_pass:
                on_pass(row)
        return state

    def training_state(self, state: LearnState) -> dict[str, Any]:
        """What a resumed fine-tune needs (plain tensors and numbers: loads with weights_only)."""
        return {
            "learn_passes": state.passes, "best_val_rmse": state.best_rmse, "bad_passes": state.bad_passes,
            "latest_generator": _copy(self.generator), "optimizer": self.optimizer.state_dict(), "log": state.log,
        }  # fmt: skip

    def restore(self, training: dict[str, Any], best: dict[str, torch.Tensor]) -> LearnState:
        """Continue from :meth:`training_state`'s dict; ``best`` the saved best weights."""
        self.generator.load_state_dict(training["latest_generator"])
        self.optimizer.load_state_dict(training["optimizer"])
        return LearnState(
            training["learn_passes"], training["best_val_rmse"], training["bad_passes"], best, list(training["log"])
        )


def _copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in module.state_dict().items()}
