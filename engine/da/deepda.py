"""DeepDA: the trained partial-convolution generator as an assimilation method."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.da.inflation import additive_inflation, inflate
from engine.grid import Grid
from engine.observe.gridding import ObsStep
from engine.train.checkpoint import Checkpoint
from engine.train.distributed import autocast
from engine.train.normalize import seasonal_offset


class DeepDA:
    """The trained generator as an assimilation method.

    Parameters
    ----------
    checkpoint, grid
        The trained model and the grid it runs on (checked to match).
    device
        Where the generator runs.
    inflation
        Multiplicative inflation of each member's departure from the ensemble mean after
        every analysis (:func:`engine.da.inflation.inflate`: capped at the background's
        spread and the level's climatological anomaly scale); ``None`` takes the
        calibration's value, 1 when it has none.
    calibration
        The ensemble calibration (:mod:`engine.da.calibrate`); ``None`` takes the
        checkpoint's. Its additive inflation, if any, perturbs every member's background
        before the analysis (:class:`engine.da.inflation.AdditiveInflation`), drawn from a
        generator seeded by (``seed``, step), so a resumed run draws what the
        uninterrupted one would have.
    seed
        Seed of the additive perturbations.
    own_climatology
        Cycle around the climatology of the control run the model was trained on, when
        the checkpoint kept one (:meth:`climatology_anomaly`), instead of the grid's. Off
        where the inputs are already anomalies of the training run (held-out years,
        calibration).
    recentre
        Recentre an ensemble on its control analysis after every step: the analysis of the
        ensemble-mean background with the unperturbed observations, computed in the same
        batch as the members. The members keep their departures from their own mean (the
        spread), and the ensemble mean is then the deterministic run, what one member
        gives from the same first background. Perturbing a nonlinear network's inputs
        costs the mean of the perturbed analyses accuracy (docs/experiments.md);
        operational hybrid systems recentre their ensemble on the deterministic analysis
        for the same reason (Wang et al. 2013, *Mon. Wea. Rev.* 141, 4098).
    """

    name = "deepda"

    def __init__(
        self,
        checkpoint: Checkpoint,
        grid: Grid,
        device: str | torch.device = "cpu",
        inflation: float | None = None,
        calibration: dict[str, Any] | None = None,
        seed: int = 0,
        recentre: bool = True,
        own_climatology: bool = False,
    ) -> None:
        checkpoint.check_grid(grid)
        self.generator = checkpoint.generator.to(device).eval()
        self.normalizer = checkpoint.normalizer
        self.device = torch.device(device)
        calibration = checkpoint.ensemble if calibration is None else calibration
        self.inflation = float(calibration.get("inflation", 1.0) if inflation is None else inflation)
        reduced = self.generator.reduced
        self.additive = additive_inflation(calibration, None if reduced is None else reduced.patterns)
        self.seed = seed
        self.recentre = recentre
        self.ocean = torch.from_numpy(grid.ocean.astype("f4"))[None, None].to(self.device)
        offset = checkpoint.climatology.get("offset_harmonics") if own_climatology else None
        self.offset = None if offset is None else offset.cpu().numpy()

    def climatology_anomaly(self, day_of_year: float) -> np.ndarray | None:
        """The model's own climatology (the one it was trained with) as an anomaly of the
        grid's on ``day_of_year``; None when it was trained on the grid's."""
        return None if self.offset is None else seasonal_offset(self.offset, day_of_year)

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        # a copy: broadcast inputs are read-only views, which torch must not wrap
        return torch.from_numpy(np.array(values, dtype="f4"))[:, None].to(self.device)

    @torch.inference_mode()
    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        """The analysis anomalies (members, depth, lat, lon) against the grid's climatology.

        A model trained on its own climatology sees background and observations as
        anomalies of that climatology, as in training, and its analysis is shifted back.
        """
        shift = self.climatology_anomaly(obs.day_of_year)
        if shift is None:
            return self._assimilate(background, obs)
        original = None if obs.original is None else (obs.original - shift) * obs.mask
        own = ObsStep((obs.anomaly - shift) * obs.mask, obs.mask, obs.error, obs.step, obs.day_of_year, original)
        return (self._assimilate(background - shift, own) + shift).astype("f4")

    def _assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        members = background.shape[0]
        values = np.broadcast_to(obs.anomaly, background.shape)
        bg = self.normalizer.encode(background)
        control = members > 1 and self.recentre
        if members > 1 and self.additive is not None:
            # a stream apart from the observation perturbations' (seeded by (seed, step))
            bg = bg + self.additive.draw(members, np.random.default_rng([self.seed, obs.step, 1]))
        if control:  # the control run goes first in the batch; the perturbations are centred
            bg = np.concatenate([bg.mean(axis=0, keepdims=True), bg])
            values = np.concatenate([obs.unperturbed()[None], values])
        analysis = self._generate(bg, values, obs)
        if control:
            control_analysis, analysis = analysis[:1], analysis[1:]
        if members > 1 and self.inflation != 1.0:
            prior = background.std(axis=0, ddof=1)
            analysis = inflate(analysis, self.inflation, self.normalizer.scale, prior)
        if control:
            analysis = (analysis - analysis.mean(axis=0, keepdims=True) + control_analysis).astype("f4")
        return analysis

    def _generate(self, background: np.ndarray, values: np.ndarray, obs: ObsStep) -> np.ndarray:
        """The generator's analyses (degC) of a batch of encoded backgrounds and observations."""
        batch = background.shape[0]
        mask = np.broadcast_to(obs.mask, background.shape)
        ob = self._tensor(self.normalizer.encode(values) * mask)
        error = self._tensor(self.normalizer.encode(np.broadcast_to(obs.error, background.shape)) * mask)
        ocean = self.ocean.expand(batch, -1, -1, -1, -1)
        with autocast(self.device):  # bfloat16 on a GPU, plain float32 on CPU
            out = self.generator(self._tensor(background), ob, self._tensor(mask), ocean, error)
        return self.normalizer.decode(out[:, 0].float().cpu().numpy())
