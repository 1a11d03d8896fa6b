"""Empirical orthogonal functions of a set of 3-D anomaly fields (pure numpy).

The basis of the generator's reduced-space analysis layer
(:class:`engine.nn.reduced.ReducedSpaceAnalysis`) is fitted here, once, from the training
years of the control run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EOFBasis:
    """Leading EOFs of weighted anomalies, all arrays float32.

    ``patterns`` (n, depth, lat, lon) rebuild a field as ``amplitudes @ patterns`` (a
    field's amplitudes are its weighted inner products with them); ``variance`` (n,) is
    each amplitude's variance over the samples; ``residual_variance`` (depth, lat, lon)
    the variance the EOFs leave, per cell.
    """

    patterns: np.ndarray
    variance: np.ndarray
    residual_variance: np.ndarray


def fit_eofs(anomalies: np.ndarray, weights: np.ndarray, n: int) -> EOFBasis:
    """The ``n`` leading EOFs of ``anomalies`` in the metric ``weights``.

    Parameters
    ----------
    anomalies
        (time, depth, lat, lon) samples, zero (not NaN) on land.
    weights
        (depth, lat, lon) non-negative weights of the inner product (e.g. cell volumes),
        zero on land.
    n
        Number of EOFs; at most the number of samples.

    Returns
    -------
    EOFBasis
        EOFs orthonormal in the inner product weighted by ``weights`` (scaled to mean 1
        over the sea), by decreasing variance.
    """
    samples = anomalies.shape[0]
    if not 1 <= n <= samples:
        raise ValueError(f"need 1 <= n <= {samples} samples, got n={n}")
    shape = anomalies.shape[1:]
    sea = weights.ravel() > 0
    root = np.sqrt(weights.ravel()[sea] / weights.ravel()[sea].mean())
    scaled = anomalies.reshape(samples, -1)[:, sea].astype("f8") * root
    # Eigenvectors of the (time x time) Gram matrix: cheaper than an SVD when the grid has
    # more cells than there are samples, as it always does here.
    values, vectors = np.linalg.eigh(scaled @ scaled.T)
    order = np.argsort(values)[::-1][:n]
    singular = np.sqrt(np.maximum(values[order], 1e-12))
    orthonormal = (vectors[:, order].T @ scaled) / singular[:, None]  # (n, sea cells)
    patterns = np.zeros((n, int(np.prod(shape))), "f4")
    patterns[:, sea] = orthonormal / root
    patterns = patterns.reshape((n, *shape))
    _, residual = project_on_basis(anomalies, weights, patterns)
    return EOFBasis(
        patterns=patterns,
        variance=(singular**2 / samples).astype("f4"),
        residual_variance=(residual**2).mean(axis=0).astype("f4"),
    )


def extend_basis(basis: EOFBasis, samples: np.ndarray, weights: np.ndarray, n: int) -> EOFBasis:
    """``basis`` followed by the ``n`` leading EOFs of what it leaves of ``samples``.

    The new patterns are orthogonal to the old ones (in the ``weights`` inner product);
    their variances are those of the samples' residual amplitudes, and the residual
    variance per cell stays the basis's own (``samples`` describe other fields).
    """
    _, residual = project_on_basis(samples, weights, basis.patterns)
    extra = fit_eofs(residual.astype("f4"), weights, n)
    return EOFBasis(
        patterns=np.concatenate([basis.patterns, extra.patterns]),
        variance=np.concatenate([basis.variance, extra.variance]),
        residual_variance=basis.residual_variance,
    )


def project_on_basis(fields: np.ndarray, weights: np.ndarray, patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Amplitudes of ``fields`` on EOF ``patterns`` and what the patterns leave.

    Parameters
    ----------
    fields
        (time, depth, lat, lon), zero on land.
    weights
        (depth, lat, lon) the inner product's weights, as given to :func:`fit_eofs`.
    patterns
        (n, depth, lat, lon) EOFs from :func:`fit_eofs` with the same ``weights``.

    Returns
    -------
    amplitudes, residual
        (time, n) and (time, depth, lat, lon), float64: ``fields = amplitudes @ patterns +
        residual``.
    """
    sea = weights > 0
    metric = np.where(sea, weights / weights[sea].mean(), 0.0)
    flat = patterns.reshape(patterns.shape[0], -1).astype("f8")
    amplitudes = (fields.reshape(fields.shape[0], -1) * metric.ravel()) @ flat.T
    residual = fields.astype("f8") - (amplitudes @ flat).reshape(fields.shape)
    return amplitudes, residual
