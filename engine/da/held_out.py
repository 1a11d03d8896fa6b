"""A model's skill on the held-out control years, which training never saw (by network era)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from engine import io
from engine.config import Config
from engine.da.deepda import DeepDA
from engine.observe.gridding import ObsStep
from engine.skill import MeanSquares
from engine.train.checkpoint import load_checkpoint
from engine.train.samples import TrainingSamples


def held_out_rmse(
    config: Config, checkpoint_path: Path | str, eras: tuple[int, ...] = (1990, 2010), spinup: int = 73
) -> pd.DataFrame:
    """RMSE by depth of a model on the held-out control years, per network era.

    The last ``config.train.validation_years`` of the control run (never trained on),
    observed by the network of each era, cycled from climatology; the first ``spinup``
    steps are not scored. Columns per era: the analysis, its background (the previous
    analysis), the super-observations against the truth, and the analysis at the same
    observed cells (the like-for-like comparison with the observation error); area-weighted,
    NaN at a level never observed.
    """
    grid = io.load_grid(config.grid)
    method = DeepDA(load_checkpoint(checkpoint_path), grid)
    samples = TrainingSamples.from_config(config, grid)
    columns = {}
    for era in eras:
        scores = _held_out_era(method, samples, era, spinup)
        columns[f"analysis {era}"] = scores["analysis"].rms()
        columns[f"background {era}"] = scores["background"].rms()
        columns[f"observations {era}"] = scores["observations"].rms()
        columns[f"analysis at observed cells {era}"] = scores["at_obs"].rms()
    return pd.DataFrame(columns, index=pd.Index(grid.depth, name="depth_m")).round(4)


def _held_out_era(method: DeepDA, samples: TrainingSamples, era: int, spinup: int) -> dict[str, MeanSquares]:
    """The squared errors of :func:`held_out_rmse` by depth for the network of ``era``."""
    grid, world = samples.grid, samples.world
    window = samples.window(samples.n_train, world.n_steps - samples.n_train, era, np.random.default_rng([7, era]))
    scale = samples.normalizer.scale[:, None, None]
    truth, obs = window.truth[:, 0, 0].numpy() * scale, window.obs[:, 0, 0].numpy() * scale
    mask, error = window.obs_mask[:, 0, 0].numpy(), window.obs_error[:, 0, 0].numpy() * scale
    area = grid.area / grid.area[grid.ocean[0]].sum()
    weights, levels = area[None] * grid.ocean, (1, 2)
    scores = {name: MeanSquares() for name in ("analysis", "background", "observations", "at_obs")}
    background = np.zeros((1,) + grid.shape, "f4")
    with torch.inference_mode():
        for t in range(len(truth)):
            analysis = method.assimilate(background, ObsStep(obs[t], mask[t], error[t], t, 0.0))
            if t >= spinup:
                scores["analysis"].add((analysis[0] - truth[t]) ** 2, weights, levels)
                scores["background"].add((background[0] - truth[t]) ** 2, weights, levels)
                scores["observations"].add((obs[t] - truth[t]) ** 2, weights * mask[t], levels)
                scores["at_obs"].add((analysis[0] - truth[t]) ** 2, weights * mask[t], levels)
            background = analysis
    return scores
