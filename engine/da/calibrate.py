"""Ensemble calibration of DeepDA on the held-out control years.

A DeepDA ensemble gets its spread from perturbed observations and different first
backgrounds (DESIGN section 8), but the generator was trained to land close to the truth,
so it pulls members together, and nothing between analyses spreads them again: the
ensemble is under-dispersive, its spread under-states the error of its mean. Inflation
(:mod:`engine.da.inflation`: additive for models with the reduced-space layer,
multiplicative otherwise) fixes that; its factor is tuned here so that spread / RMSE of
the mean equals the value a reliable ensemble has, sqrt(M / (M + 1)) for M members. Like
OI's tuning, it uses only the held-out control years observed by the 1990 and 2010
networks, never the OSSE's historical run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from engine.da.base import cycle, initial_backgrounds
from engine.da.deepda import DeepDA
from engine.observe.gridding import ObsStep
from engine.skill import MeanSquares
from engine.train.checkpoint import Checkpoint
from engine.train.samples import VALIDATION_ERAS, TrainingSamples

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
    spread, error = MeanSquares(), MeanSquares()
    for truth, steps in cases:
        first = initial_backgrounds(grid, members, samples.normalizer.scale, np.random.default_rng([seed, 7]))
        for t, (_, analysis) in enumerate(cycle(method, iter(steps), first, seed)):
            if t >= len(steps) // 3:
                spread.add(analysis.var(axis=0, ddof=1), weights)
                error.add((analysis.mean(axis=0) - truth[t]) ** 2, weights)
    return float(spread.rms() / error.rms())


def tune_inflation(
    checkpoint: Checkpoint,
    samples: TrainingSamples,
    members: int = 10,
    iterations: int = 12,
    bounds: tuple[float, float] | None = None,
    progress: Callable[[float, float], None] | None = None,
    tolerance: float = 0.05,
) -> dict[str, Any]:
    """The inflation that makes the held-out spread/RMSE sqrt(M/(M+1)).

    A model with the reduced-space layer gets additive inflation
    (:mod:`engine.da.inflation`): the one-step change variances are measured on the
    training years and their factor is tuned (``bounds`` default (0.01, 4)); other
    models get multiplicative inflation (``bounds`` default (1, 8)). The search is
    :func:`search_factor`, within ``tolerance`` (relative) of the target in at most
    ``iterations`` trials; ``progress(factor, ratio)`` is called after each trial.
    Returns the calibration stored in the checkpoint, with the trial closest to the target.
    """
    if members < 2:
        raise ValueError("an ensemble needs at least 2 members to calibrate")
    target = math.sqrt(members / (members + 1))
    cases = held_out_cases(samples)
    base, knob, default_bounds = _inflation_kind(checkpoint, samples)
    trials: list[tuple[float, float]] = []

    def trial(factor: float) -> float:
        method = DeepDA(checkpoint, samples.grid, calibration={**base, knob: factor})
        ratio = spread_skill(method, cases, samples, members)
        trials.append((factor, ratio))
        if progress:
            progress(factor, ratio)
        return ratio

    search_factor(trial, bounds or default_bounds, target, tolerance, iterations)
    finite = [t for t in trials if math.isfinite(t[1]) and t[1] > 0]
    factor, ratio = min(finite, key=lambda fr: abs(math.log(fr[1] / target)))
    return {
        **base,
        knob: round(factor, 4),
        "members": members,
        "held_out_spread_skill": round(ratio, 4),
        "target_spread_skill": round(target, 4),
        "trials": [[round(f, 4), round(r, 4)] for f, r in trials],
        "data": f"held-out control year, networks {', '.join(map(str, VALIDATION_ERAS))}",
    }


def _inflation_kind(
    checkpoint: Checkpoint, samples: TrainingSamples
) -> tuple[dict[str, Any], str, tuple[float, float]]:
    """(the calibration's fixed part, the factor's name, its default bounds): additive for a
    model with the reduced-space layer (with the one-step change variances it scales),
    multiplicative otherwise."""
    reduced = checkpoint.generator.reduced
    if reduced is None:
        return {"inflation": 1.0}, "inflation", (1.0, 8.0)
    amplitude, residual = samples.tendency_variance(reduced.patterns.cpu().numpy())
    base = {
        "inflation": 1.0,
        "tendency_variance": torch.from_numpy(amplitude),
        "residual_tendency_variance": torch.from_numpy(residual),
    }
    return base, "additive_inflation", (0.01, 4.0)


def search_factor(
    trial: Callable[[float], float], bounds: tuple[float, float], target: float, tolerance: float, iterations: int
) -> None:
    """Try factors until ``trial(factor)`` (a ratio growing with the factor) is within
    ``tolerance`` (relative) of ``target``, or ``iterations`` trials are spent.

    The search keeps a bracket between ``bounds`` and tries, inside it, where a straight
    line in log(ratio) against log(factor) through its ends meets the target (kept within
    the bracket's middle 80 %, so it always shrinks). The ratio can be steep in a
    multiplicative factor (a model that keeps slow departures for years compounds it),
    hence the tolerance rather than a fixed number of steps. A non-finite ratio counts as
    too wide.
    """
    count = 0

    def ratio_at(factor: float) -> float:
        nonlocal count
        count += 1
        ratio = trial(factor)
        return ratio if math.isfinite(ratio) else math.inf

    def close_enough(ratio: float) -> bool:
        return math.isfinite(ratio) and abs(ratio / target - 1.0) <= tolerance

    lo, r_lo = bounds[0], ratio_at(bounds[0])
    if r_lo >= target or close_enough(r_lo):
        return
    hi, r_hi = bounds[1], ratio_at(bounds[1])
    while r_hi >= target and not close_enough(r_hi) and count < iterations:
        middle = _log_interpolate((lo, r_lo), (hi, r_hi), target)
        ratio = ratio_at(middle)
        if close_enough(ratio):
            return
        lo, r_lo, hi, r_hi = (lo, r_lo, middle, ratio) if ratio >= target else (middle, ratio, hi, r_hi)


def _log_interpolate(lo: tuple[float, float], hi: tuple[float, float], target: float) -> float:
    """Where the line through (log factor, log ratio) at ``lo`` and ``hi`` reaches
    ``target``, kept inside the middle 80 % of the bracket in log(factor)."""
    (f0, r0), (f1, r1) = lo, hi
    x0, x1 = math.log(f0), math.log(f1)
    if math.isfinite(r1) and r1 > 0 and r0 > 0 and r1 > r0:
        share = (math.log(target) - math.log(r0)) / (math.log(r1) - math.log(r0))
    else:
        share = 0.5
    share = min(max(share, 0.1), 0.9)
    return math.exp(x0 + share * (x1 - x0))
