"""Golden numbers: every method of the registry cycled over one fixed tiny case.

DAPPER keeps a table of benchmark scores so that a refactor that changes a result shows;
this is that table for DeepDA. The case is fixed and seeded: the tiny grid, the short tiny
control run as the truth, a fixed set of super-observations (half the surface cells like a
satellite, a fifth of the columns like profiles, seeded noise), one member and an ensemble
of three from seeded first backgrounds. DeepDA runs a tiny untrained generator built
under ``torch.manual_seed`` whose reduced space is the world's own modes (the shipped
checkpoint is coarse-only), saved as a checkpoint and loaded through the registry like a
trained one; the baselines are built by the registry too.

The scores are volume-weighted over the ocean and all steps: the RMSE (degC) of the
single member and of the ensemble mean against the truth, and the ensemble spread.

To regenerate after an intended change: run ``python3 -m pytest tests/test_golden.py``;
the failure message prints the new table, ready to paste over :data:`GOLDEN`. Say in the
commit why the numbers moved.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.da.base import Method, cycle, initial_backgrounds
from engine.da.registry import METHODS, make_method
from engine.grid import Grid, step_day_of_year
from engine.observe.gridding import ObsStep
from engine.train.checkpoint import build_generator, save_checkpoint, update_ensemble_calibration
from engine.train.normalize import Normalizer
from engine.world.synthetic import ModelWorld
from tests.conftest import TINY

STEPS, MEMBERS, SEED = 20, 3, 11
RTOL = 1e-5

# method: (RMSE of one member, RMSE of the ensemble mean, ensemble spread), degC
GOLDEN = {
    "deepda": (0.12837965, 0.12837964, 0.27850588),
    "oi": (0.2266082, 0.22667676, 0.13668841),
    "kf": (0.097278992, 0.098188707, 0.026254063),
    "persistence": (0.25738459, 0.26180149, 0.18937482),
    "climatology": (0.4854166, 0.4854166, 0),
}


def _observations(grid: Grid, truth: np.ndarray) -> list[ObsStep]:
    """The fixed observation set: satellite-like surface cells (error 0.3 degC) and whole
    profiles (0.1 degC) at seeded positions, with seeded N(0, error) noise."""
    rng = np.random.default_rng(2024)
    day = step_day_of_year(len(truth), TINY.world.steps_per_year)
    steps = []
    for t, field in enumerate(truth):
        columns = rng.random(grid.shape[1:]) < 0.2
        mask = np.zeros(grid.shape, bool)
        mask[0] = rng.random(grid.shape[1:]) < 0.5
        mask = (mask | columns[None]) & grid.ocean
        error = (np.where(columns[None], 0.1, 0.3) * mask).astype("f4")
        noise = rng.standard_normal(grid.shape).astype("f4") * error
        steps.append(ObsStep(((field + noise) * mask).astype("f4"), mask.astype("f4"), error, t, float(day[t])))
    return steps


def _deepda_checkpoint(world: ModelWorld, path: Path) -> Path:
    """A tiny untrained generator, deterministic: weights drawn under a fixed torch seed and,
    as its reduced space, the world's own modes and forced patterns (8 + 2, as TINY's
    ``reduced_space`` and ``offset_patterns``), so its analyses are not noise."""
    grid, scale = world.grid, np.array([0.8, 0.6, 0.3, 0.1], "f4")
    torch.manual_seed(0)
    generator = build_generator(TINY.model, grid.shape)
    patterns = np.concatenate([world.patterns, world.warming_pattern[None], world.volcanic_pattern[None]])
    assert len(patterns) == TINY.model.reduced_space + TINY.model.offset_patterns
    patterns = torch.from_numpy((patterns / scale[:, None, None] * grid.ocean).astype("f4"))
    generator.reduced.set_basis(patterns, torch.ones(len(patterns)), torch.full(grid.shape, 0.1))
    save_checkpoint(path, generator, TINY, Normalizer(scale), grid, {"note": "golden-number test"})
    update_ensemble_calibration(path, {"inflation": 1.5})  # the ensemble path inflates
    return path


def _scores(build: Callable[[], Method], grid: Grid, truth: np.ndarray, steps: list[ObsStep]) -> tuple[float, ...]:
    weights = (grid.volume * grid.ocean).astype("f8")
    total = weights.sum() * len(steps)
    out = []
    for members in (1, MEMBERS):
        scale = np.full(grid.shape[0], 0.5, "f4")
        first = initial_backgrounds(grid, members, scale, np.random.default_rng([SEED, 7]))
        error = variance = 0.0
        for obs, analysis in cycle(build(), iter(steps), first, seed=SEED):
            error += float((weights * (analysis.mean(axis=0) - truth[obs.step]) ** 2).sum())
            if members > 1:
                variance += float((weights * analysis.astype("f8").var(axis=0, ddof=1)).sum())
        out.append(np.sqrt(error / total))
    out.append(np.sqrt(variance / total))
    return tuple(float(v) for v in out)


def _table(scores: dict[str, tuple[float, ...]]) -> str:
    rows = "".join(f'    "{name}": ({", ".join(f"{v:.8g}" for v in values)}),\n' for name, values in scores.items())
    return "GOLDEN = {\n" + rows + "}"


@pytest.fixture(scope="module")
def scores(tiny_grid, tiny_world, tmp_path_factory) -> dict[str, tuple[float, ...]]:
    # One thread: the same sums in the same order whatever the machine, and on shared cores
    # far faster than threads waiting on each other (a tiny convolution is all overhead).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        truth = tiny_world.anomaly(0, STEPS)
        steps = _observations(tiny_grid, truth)
        checkpoint = _deepda_checkpoint(tiny_world, tmp_path_factory.mktemp("golden") / "tiny.pt")
        methods = {name: checkpoint if name == "deepda" else name for name in METHODS}
        return {
            name: _scores(lambda m=method: make_method(m, TINY).method, tiny_grid, truth, steps)
            for name, method in methods.items()
        }
    finally:
        torch.set_num_threads(threads)


def test_every_method_scores_its_golden_numbers(scores):
    assert set(GOLDEN) == set(METHODS), "a method of the registry has no golden row:\n" + _table(scores)
    moved = [
        f"{name}: {scores[name]} != {GOLDEN[name]}"
        for name in METHODS
        if not np.allclose(scores[name], GOLDEN[name], rtol=RTOL, atol=0.0)
    ]
    assert not moved, "\n".join(moved) + "\n\nif intended, paste the new table:\n" + _table(scores)


def test_the_golden_case_tells_the_methods_apart(scores):
    """The case is one where the numbers mean something: the methods rank as they should
    and the ensembles are spread, so a table of equal or degenerate numbers cannot pass."""
    rmse = {name: values[0] for name, values in scores.items()}
    assert rmse["kf"] < rmse["oi"] < rmse["climatology"]
    assert len({round(v, 6) for v in rmse.values()}) == len(rmse)
    assert all(values[2] > 0 for name, values in scores.items() if name != "climatology")
    assert scores["climatology"][2] == 0.0  # zero anomaly whatever the member
