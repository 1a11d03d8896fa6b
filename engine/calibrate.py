"""Ensemble calibration of DeepDA on the held-out control years.

A DeepDA ensemble gets its spread from perturbed observations and different first
backgrounds (DESIGN section 8), but the generator was trained to land close to the truth,
so it pulls members together and the ensemble is under-dispersive: its spread
under-states the error of its mean.  Multiplicative inflation of each member's departure
from the mean (as in ensemble Kalman filters) fixes that; the factor is tuned here so
that spread / RMSE of the mean equals the value a reliable ensemble has,
sqrt(M / (M + 1)) for M members.  Like OI's tuning, it uses only the held-out control
years observed by the 1990 and 2010 networks, never the OSSE's historical run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.assimilate import DeepDA, ObsStep, cycle, initial_backgrounds
from engine.checkpoint import Checkpoint
from engine.samples import VALIDATION_ERAS, TrainingSamples

Case = tuple[np.ndarray, list[ObsStep]]


def held_out_cases(samples: TrainingSamples, eras: tuple[int, ...] = VALIDATION_ERAS, seed: int = 11) -> list[Case]:
    """One held-out control year per network era: (truth anomaly, observation steps)."""
    spy, start = samples.steps_per_year, samples.n_train
    truth = samples.world.anomaly(start, start + spy)
    cases = []
    for era in eras:
        rng = np.random.default_rng([seed, era])
        cases.append((truth, [samples.obs_step(truth[t], start + t, era, rng) for t in range(spy)]))
    return cases


def spread_skill(method: DeepDA, cases: list[Case], samples: TrainingSamples, members: int, seed: int = 5) -> float:
    """Volume-weighted ensemble spread / RMSE of the ensemble mean, cycling each case.

    The first third of each case is spin-up and not scored (the members start from
    deliberately different states).
    """
    grid = samples.grid
    weights = (grid.volume * grid.ocean).astype("f8")
    scale = samples.normalizer.scale
    variance = squared_error = 0.0
    for truth, steps in cases:
        first = initial_backgrounds(grid, members, scale, np.random.default_rng([seed, 7]))
        for t, (_, analysis) in enumerate(cycle(method, iter(steps), first, seed)):
            if t < len(steps) // 3:
                continue
            mean = analysis.mean(axis=0)
            variance += float((analysis.var(axis=0, ddof=1) * weights).sum())
            squared_error += float(((mean - truth[t]) ** 2 * weights).sum())
    return math.sqrt(variance / max(squared_error, 1e-30))


def tune_inflation(
    checkpoint: Checkpoint,
    samples: TrainingSamples,
    members: int = 10,
    iterations: int = 12,
    bounds: tuple[float, float] = (1.0, 8.0),
    progress: Callable[[float, float], None] | None = None,
    tolerance: float = 0.05,
) -> dict[str, Any]:
    """The inflation factor that makes the held-out spread/RMSE sqrt(M/(M+1)).

    The ratio grows with the factor (and saturates at the cap, see
    :class:`~engine.assimilate.DeepDA`), so a bisection in log(factor) between
    ``bounds`` brackets it, until a trial is within ``tolerance`` (relative) of the
    target or ``iterations`` trials are spent; ``progress(factor, ratio)`` is called
    after each trial. Returns the calibration stored in the checkpoint: the trial
    closest to the target. The ratio can be steep in the factor (a model that keeps slow
    departures for years compounds the inflation step after step), hence the tolerance
    rather than a fixed number of halvings.
    """
    if members < 2:
        raise ValueError("an ensemble needs at least 2 members to calibrate")
    target = math.sqrt(members / (members + 1))
    cases = held_out_cases(samples)
    trials: list[tuple[float, float]] = []

    def too_wide(factor: float) -> bool:
        ratio = spread_skill(DeepDA(checkpoint, samples.grid, inflation=factor), cases, samples, members)
        trials.append((factor, ratio))
        if progress:
            progress(factor, ratio)
        return not ratio < target  # a non-finite ratio counts as too wide

    def close_enough() -> bool:
        ratio = trials[-1][1]
        return math.isfinite(ratio) and abs(ratio / target - 1.0) <= tolerance

    lo, hi = bounds
    if not too_wide(lo) and not close_enough() and too_wide(hi) and not close_enough():
        for _ in range(max(iterations - 2, 0)):
            middle = math.sqrt(lo * hi)
            lo, hi = (lo, middle) if too_wide(middle) else (middle, hi)
            if close_enough():
                break
    finite = [t for t in trials if math.isfinite(t[1]) and t[1] > 0]
    factor, ratio = min(finite, key=lambda fr: abs(math.log(fr[1] / target)))
    return {
        "inflation": round(factor, 4),
        "members": members,
        "held_out_spread_skill": round(ratio, 4),
        "target_spread_skill": round(target, 4),
        "trials": [[round(f, 4), round(r, 4)] for f, r in trials],
        "data": f"held-out control year, networks {', '.join(map(str, VALIDATION_ERAS))}",
    }
