"""The one weighted RMSE of plain arrays (engine/skill.py), numpy and torch alike."""

import math

import numpy as np
import pytest
import torch

from engine.skill import MeanSquares, mean_square, weighted_sums

ERROR = np.array([[1.0, -2.0], [3.0, 0.5]])
WEIGHTS = np.array([[1.0, 3.0], [0.0, 2.0]])  # a zero weight (land) leaves its error out
# by hand: (1*1 + 3*4 + 0*9 + 2*0.25) / (1 + 3 + 0 + 2) = 13.5 / 6
BY_HAND = 13.5 / 6


def test_mean_square_is_the_weighted_mean_of_squares_by_hand():
    assert mean_square(ERROR, WEIGHTS) == pytest.approx(BY_HAND)
    assert float(mean_square(torch.tensor(ERROR), torch.tensor(WEIGHTS))) == pytest.approx(BY_HAND)
    # along an axis: each row's own mean square
    np.testing.assert_allclose(mean_square(ERROR, WEIGHTS, axis=1), [13.0 / 4, 0.25])
    torch.testing.assert_close(
        mean_square(torch.tensor(ERROR), torch.tensor(WEIGHTS), axis=1), torch.tensor([13.0 / 4, 0.25]).double()
    )
    total, weight = weighted_sums(ERROR**2, WEIGHTS)
    assert (total, weight) == (13.5, 6.0)


def test_mean_squares_pool_steps_into_the_whole_period_rmse():
    squares = MeanSquares()
    squares.add(ERROR[:1] ** 2, WEIGHTS[:1], axis=(0, 1))
    squares.add(ERROR[1:] ** 2, WEIGHTS[1:], axis=(0, 1))
    assert float(squares.rms()) == pytest.approx(math.sqrt(BY_HAND))
    by_row = MeanSquares()
    for _ in range(2):  # the same step twice: the same RMSE
        by_row.add(ERROR**2, WEIGHTS, axis=1)
    np.testing.assert_allclose(by_row.rms(), np.sqrt([13.0 / 4, 0.25]))


def test_mean_squares_are_nan_where_nothing_was_weighed():
    assert math.isnan(float(MeanSquares().rms()))
    squares = MeanSquares()
    squares.add(ERROR**2, np.array([[1.0, 1.0], [0.0, 0.0]]), axis=1)
    rms = squares.rms()
    assert rms[0] == pytest.approx(math.sqrt(2.5)) and math.isnan(rms[1])
    means = MeanSquares()
    for value in (1.0, 4.0):
        means.add_sums(value, 1.0)  # steps' own mean squares, one weight each
    assert float(means.rms()) == pytest.approx(math.sqrt(2.5))
