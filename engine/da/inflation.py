"""Ensemble inflation: keeping a DeepDA ensemble's spread as large as its error.

The generator was trained to land close to the truth, not to carry uncertainty, and a
cycled ensemble has no forecast model to spread its members between analyses: the
background is the previous analysis, so nothing stands for the truth's change over the
step, which in a real assimilation is the background error's main source. Two remedies,
both tuned by :mod:`engine.da.calibrate` on held-out control years and stored in the
checkpoint:

* **Additive** (models with the reduced-space layer; what ``deepda calibrate`` tunes for
  them): every member's background gets a centred random perturbation with the covariance
  of the truth's one-step change in the training years, diagonal on the generator's EOFs
  and per cell in what they leave, times a tuned factor (the "sampled tendencies" of
  Whitaker et al. 2008, *Mon. Wea. Rev.* 136, 463). It puts in the spread a persistence
  background lacks, step after step, so the spread neither decays nor compounds over a
  40-year run.
* **Multiplicative** (:func:`inflate`; models without the layer, older checkpoints): member
  departures scaled after each analysis, capped at the background's spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class AdditiveInflation:
    """Random background perturbations with a fixed covariance, in network units.

    Attributes
    ----------
    patterns
        (n, depth, lat, lon) EOFs the large-scale part is drawn on.
    amplitude_variance
        (n,) variance of each amplitude (already times the tuned factor).
    residual_variance
        (depth, lat, lon) variance of the independent per-cell part (likewise).
    """

    patterns: np.ndarray
    amplitude_variance: np.ndarray
    residual_variance: np.ndarray

    def draw(self, members: int, rng: np.random.Generator) -> np.ndarray:
        """(members, depth, lat, lon) perturbations with zero ensemble mean, whose
        ensemble variance (ddof=1) has the expected value of the covariance's diagonal."""
        n = len(self.patterns)
        amplitudes = rng.standard_normal((members, n)) * np.sqrt(self.amplitude_variance)
        cells = rng.standard_normal((members, *self.residual_variance.shape)) * np.sqrt(self.residual_variance)
        large = (amplitudes @ self.patterns.reshape(n, -1)).reshape(cells.shape)
        perturbations = large + cells
        return (perturbations - perturbations.mean(axis=0)).astype("f4")


def additive_inflation(calibration: dict[str, Any], patterns: torch.Tensor | None) -> AdditiveInflation | None:
    """The additive inflation a checkpoint's calibration asks for, or None.

    ``calibration`` holds ``additive_inflation`` (the factor) with the one-step change
    variances ``tendency_variance`` (n,) and ``residual_tendency_variance`` (depth, lat,
    lon) that :func:`engine.da.calibrate.tune_inflation` stores; ``patterns`` are the
    generator's EOFs (None for a model without the reduced-space layer).
    """
    factor = float(calibration.get("additive_inflation", 0.0))
    if factor <= 0:
        return None
    if patterns is None:
        raise ValueError("additive inflation draws on the reduced-space layer's EOFs; this model has none")

    def array(name: str) -> np.ndarray:
        return torch.as_tensor(calibration[name]).detach().cpu().numpy().astype("f8")

    return AdditiveInflation(
        patterns.detach().cpu().numpy().astype("f8"),
        factor * array("tendency_variance"),
        factor * array("residual_tendency_variance"),
    )


def inflate(members: np.ndarray, factor: float, cap: np.ndarray, prior_spread: np.ndarray | None = None) -> np.ndarray:
    """Scale member departures from the ensemble mean by ``factor``, limiting the spread
    (std, ddof=1) to ``cap`` per level and, where given, to ``prior_spread`` per cell.

    Parameters
    ----------
    members
        (members, depth, lat, lon) anomalies.
    factor
        Multiplicative inflation.
    cap
        (depth,) largest spread allowed, e.g. the climatological anomaly scale.
    prior_spread
        (depth, lat, lon) the background's spread: inflation may bring the spread back
        up to it but not beyond (nor below the members' own spread, if that is wider).

    Returns
    -------
    numpy.ndarray
        Members with the same ensemble mean.
    """
    mean = members.mean(axis=0, keepdims=True)
    departures = members - mean
    spread = departures.std(axis=0, ddof=1)
    target = np.minimum(factor * spread, cap[:, None, None])
    if prior_spread is not None:
        target = np.minimum(target, np.maximum(spread, prior_spread))
    scale = np.where(spread > 1e-12, target / np.maximum(spread, 1e-12), 1.0)
    return (mean + departures * scale).astype("f4")
