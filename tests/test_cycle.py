"""engine.da.base.cycle: the analysis-forecast loop every method runs in.

A recording method stands in for a real one, so each test sees exactly which background
and which (perturbed) observations the loop handed over.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.da.base import cycle
from engine.observe.gridding import ObsStep

SHAPE = (3, 4, 5)


class Recorder:
    """An assimilation method that keeps what it was given; its analysis is the background
    moved half way to the (per-member) observations where observed, plus the step."""

    name = "recorder"

    def __init__(self) -> None:
        self.backgrounds: list[np.ndarray] = []
        self.seen: list[ObsStep] = []

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        self.backgrounds.append(background.copy())
        self.seen.append(obs)
        values = np.broadcast_to(obs.anomaly, background.shape)
        moved = np.where(obs.mask > 0, 0.5 * (background + values), background)
        return (moved + obs.step).astype("f4")


def _steps(n: int, seed: int = 0) -> list[ObsStep]:
    rng = np.random.default_rng(seed)
    steps = []
    for t in range(n):
        mask = (rng.random(SHAPE) < 0.4).astype("f4")
        error = rng.uniform(0.1, 0.5, SHAPE).astype("f4") * mask
        steps.append(ObsStep((rng.standard_normal(SHAPE) * mask).astype("f4"), mask, error, t, 2.5 + 5 * t))
    return steps


def _run(steps: list[ObsStep], background: np.ndarray, seed: int = 4, perturb: bool = True):
    method = Recorder()
    out = [(obs, analysis.copy()) for obs, analysis in cycle(method, iter(steps), background, seed, perturb)]
    return method, out


def test_each_analysis_is_the_next_background_and_the_observations_come_back_unperturbed():
    steps = _steps(5)
    first = np.random.default_rng(1).standard_normal((3, *SHAPE)).astype("f4")
    method, out = _run(steps, first)
    assert len(out) == len(method.backgrounds) == 5
    np.testing.assert_array_equal(method.backgrounds[0], first)
    for t in range(1, 5):
        np.testing.assert_array_equal(method.backgrounds[t], out[t - 1][1])
    assert [obs for obs, _ in out] == steps  # what is yielded is the step as observed, not a member's copy
    assert all(a.shape == first.shape for _, a in out)


def test_each_member_sees_observations_drawn_from_seed_and_step():
    steps, first = _steps(4), np.zeros((3, *SHAPE), "f4")
    method, _ = _run(steps, first, seed=4)
    for obs, seen in zip(steps, method.seen, strict=True):
        expected = obs.perturbed(3, np.random.default_rng([4, obs.step]))
        np.testing.assert_array_equal(seen.anomaly, expected.anomaly)
        assert seen.anomaly.shape == (3, *SHAPE) and seen.step == obs.step
        np.testing.assert_array_equal(seen.unperturbed(), obs.anomaly)
        np.testing.assert_array_equal(seen.anomaly[0], obs.anomaly)  # member 0 is never perturbed
        assert np.all(seen.anomaly[:, obs.mask == 0] == 0)  # nothing appears where nothing was observed
        assert not np.allclose(seen.anomaly[1], seen.anomaly[2])
    other, _ = _run(steps, first, seed=5)
    assert not np.allclose(other.seen[0].anomaly[1:], method.seen[0].anomaly[1:])


def test_perturbations_have_the_observation_error_as_their_spread():
    obs = _steps(1)[0]
    method, _ = _run([obs], np.zeros((2001, *SHAPE), "f4"))
    noise = method.seen[0].anomaly[1:] - obs.anomaly
    seen = obs.mask > 0
    np.testing.assert_allclose(noise.std(axis=0)[seen], obs.error[seen], rtol=0.1)  # 2000 draws: ~3 % error
    assert np.all(np.abs(noise.mean(axis=0)[seen]) < 0.1 * obs.error[seen])  # centred: 4.5 standard errors


def test_a_run_split_in_two_parts_equals_the_whole():
    """What a resumed run does: the second part starts from the first part's last analysis
    and continues with the later steps; the perturbations are the same draws."""
    steps = _steps(8)
    first = np.random.default_rng(2).standard_normal((3, *SHAPE)).astype("f4")
    _, whole = _run(steps, first)
    _, head = _run(steps[:5], first)
    _, tail = _run(steps[5:], head[-1][1])
    for (_, a), (_, b) in zip(whole, head + tail, strict=True):
        np.testing.assert_array_equal(a, b)


def test_one_member_or_no_perturbation_passes_the_observations_as_they_are():
    steps = _steps(3)
    single, _ = _run(steps, np.zeros((1, *SHAPE), "f4"))
    assert all(seen is obs for seen, obs in zip(single.seen, steps, strict=True))
    plain, out = _run(steps, np.zeros((3, *SHAPE), "f4"), perturb=False)
    assert all(seen is obs for seen, obs in zip(plain.seen, steps, strict=True))
    np.testing.assert_array_equal(out[-1][1][0], out[-1][1][2])  # identical members stay identical


def test_the_loop_is_lazy_and_stops_with_its_steps():
    """One step is read, analysed and yielded at a time (a long period never sits in memory)."""
    read = []

    def steps():
        for obs in _steps(3):
            read.append(obs.step)
            yield obs

    loop = cycle(Recorder(), steps(), np.zeros((2, *SHAPE), "f4"), seed=0)
    assert read == []
    obs, _ = next(loop)
    assert obs.step == 0 and read == [0]
    assert [o.step for o, _ in loop] == [1, 2]
    with pytest.raises(StopIteration):
        next(loop)
