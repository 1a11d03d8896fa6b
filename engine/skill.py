"""The weighted RMSE of plain arrays, numpy or torch alike: the one that training's
validation, the DA stage's tuning and the OSSE's scores all compute.

It sits beside ``grid.py``, below the pipeline stages, because training validates long
before the evaluate stage exists and a stage imports only the ones before it; the xarray
scores of :mod:`engine.evaluate.metrics` are built the same way (a weighted mean as two sums).
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

Array = TypeVar("Array")  # numpy.ndarray or torch.Tensor (anything with * and .sum(axis))
Axis = int | tuple[int, ...] | None


def weighted_sums(values: Array, weights: Array, axis: Axis = None) -> tuple[Array, Array]:
    """``(sum of weights * values, sum of weights)`` over ``axis`` (every axis when None).

    ``weights`` has the shape of ``values`` (zero where nothing is scored, e.g. land);
    the mean is the first over the second, and sums of successive steps add up.
    """
    product = values * weights
    if axis is None:
        return product.sum(), weights.sum()
    return product.sum(axis), weights.sum(axis)


def mean_square(error: Array, weights: Array, axis: Axis = None) -> Array:
    """The weighted mean of ``error**2`` over ``axis``: the square of the weighted RMSE."""
    total, weight = weighted_sums(error**2, weights, axis)
    return total / weight


class MeanSquares:
    """A weighted mean of squares kept as its two sums, added up step by step; :meth:`rms`
    is the RMSE of everything added (numpy arrays or floats)."""

    def __init__(self) -> None:
        self.total: Any = 0.0
        self.weight: Any = 0.0

    def add(self, squares: np.ndarray, weights: np.ndarray, axis: Axis = None) -> None:
        """Add ``sum(weights * squares)`` and ``sum(weights)`` over ``axis``."""
        self.add_sums(*weighted_sums(squares, weights, axis))

    def add_sums(self, total: Any, weight: Any) -> None:
        """Add sums taken elsewhere (e.g. one step's mean square with weight 1)."""
        self.total = self.total + total
        self.weight = self.weight + weight

    def mean(self) -> Any:
        """The weighted mean square; NaN where nothing was added."""
        return self.total / np.where(np.asarray(self.weight) > 0, self.weight, np.nan)

    def rms(self) -> Any:
        """The root of :meth:`mean`: the RMSE when the squares were squared errors."""
        return np.sqrt(self.mean())
