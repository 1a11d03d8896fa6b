"""A distribution of synthetic worlds: training on many differently built oceans at once.

Each drawn world keeps the base world's grid, step length and run years and draws what
sets worlds apart (mode count, time, length and depth spectra, ENSO, eddies) from ranges
that span what ocean models plausibly do, log-uniformly: ENSO periods of 2.5-6 years and
Nino-3.4 standard deviations of 0.5-1.4 degC cover the CMIP6 spread, mode memories run
from weeks to decades, basin-scale patterns from 3000 to 10000 km, thermocline-to-
intermediate depth scales from 25 m to 2.5 km. The forced warming is not drawn: training
sees control runs only.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine.config import WorldSpec

WORLD_RANGES: dict[str, tuple[float, float]] = {
    "n_modes": (20, 80),
    "min_memory_days": (15.0, 60.0),
    "max_memory_years": (4.0, 30.0),
    "min_length_km": (300.0, 900.0),
    "max_length_km": (3000.0, 10000.0),
    "min_efold_m": (25.0, 120.0),
    "max_efold_m": (500.0, 2500.0),
    "enso_period_years": (2.5, 6.0),
    "enso_damping_years": (1.0, 4.0),
    "enso_nino34_std": (0.5, 1.4),
    "eddy_memory_pentads": (1.0, 4.0),
    "eddy_length_km": (150.0, 600.0),
    "eddy_variance_fraction": (0.1, 0.45),
}


def draw_worlds(base: WorldSpec, count: int, seed: int) -> list[WorldSpec]:
    """``count`` worlds drawn around ``base`` (named ``base.name``-d1, -d2, ...), the same
    for the same ``seed``."""
    rng = np.random.default_rng([seed, 29])
    worlds = []
    for k in range(count):
        values = {}
        for field, (low, high) in WORLD_RANGES.items():
            value = float(np.exp(rng.uniform(np.log(low), np.log(high))))
            values[field] = int(round(value)) if field == "n_modes" else round(value, 3)
        world_seed = int(rng.integers(1000, 1_000_000))
        worlds.append(replace(base, name=f"{base.name}-d{k + 1}", seed=world_seed, **values))
    return worlds
