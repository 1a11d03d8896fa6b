"""The simplest methods: climatology (the floor) and persistence."""

from __future__ import annotations

import numpy as np

from engine.observe.gridding import ObsStep


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
