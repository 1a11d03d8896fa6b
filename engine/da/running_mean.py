"""Cycling around a running mean of the analyses instead of the climatology."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.da.base import Method
from engine.observe.gridding import ObsStep


class RunningMean:
    """Any method, cycled around a running mean of its own analyses.

    Every method's background relaxes towards zero anomaly, the climatology. Against real
    observations the climatology is biased for the period (the warming since the years it
    was made from, its smoothing), and that bias comes back wherever the increments fade.
    The running mean (e-folding ``steps``) learns the period's mean state from the
    analyses; the method works on departures from it, so its relaxation goes there instead.
    """

    def __init__(self, method: Method, steps: float, mean: np.ndarray) -> None:
        self.method, self.steps = method, float(steps)
        self.mean = np.asarray(mean, dtype="f4")

    def __getattr__(self, name: str) -> Any:  # the wrapped method's normalizer, recentre, ...
        return getattr(self.__dict__["method"], name)

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        """The wrapped method's analysis of the departures from the mean, plus the mean."""
        mean = self.mean
        departures = ObsStep(
            ((obs.anomaly - mean) * obs.mask).astype("f4"),
            obs.mask,
            obs.error,
            obs.step,
            obs.day_of_year,
            None if obs.original is None else ((obs.original - mean) * obs.mask).astype("f4"),
        )
        analysis = self.method.assimilate(background - mean, departures) + mean
        self.mean = (mean + (analysis.mean(axis=0) - mean) / self.steps).astype("f4")
        return analysis.astype("f4")
