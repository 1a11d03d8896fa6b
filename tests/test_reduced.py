"""Tests of the reduced-space analysis: engine.train.eof.fit_eofs and engine.nn.reduced (CPU, seeded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.nn import Generator
from engine.nn.reduced import ReducedSpaceAnalysis
from engine.train.eof import extend_basis, fit_eofs, project_on_basis
from engine.train.schedule import adopt_weights

SHAPE = (3, 5, 8)


def _low_rank_samples(rng: np.random.Generator, n: int = 400, noise: float = 0.05):
    """Two fixed patterns with amplitudes of std 3 and 1, plus white noise; land at [0, 0]."""
    weights = rng.uniform(0.5, 2.0, SHAPE)
    weights[:, 0, 0] = 0.0
    patterns = rng.standard_normal((2, *SHAPE)) * (weights > 0)
    amplitudes = rng.standard_normal((n, 2)) * [3.0, 1.0]
    fields = np.einsum("tr,rzyx->tzyx", amplitudes, patterns) + noise * rng.standard_normal((n, *SHAPE))
    return fields * (weights > 0), weights, patterns


def test_eofs_recover_the_patterns_span_variances_and_noise():
    rng = np.random.default_rng(0)
    fields, weights, patterns = _low_rank_samples(rng)
    basis = fit_eofs(fields, weights, 2)
    inner = weights / weights[weights > 0].mean()
    gram = np.einsum("azyx,bzyx,zyx->ab", basis.patterns, basis.patterns, inner)
    np.testing.assert_allclose(gram, np.eye(2), atol=1e-4)  # orthonormal in the weighted metric
    # Each true pattern lies in the EOFs' span: its weighted projection rebuilds it.
    for p in patterns:
        coefficients = np.einsum("azyx,zyx->a", basis.patterns, p * inner)
        rebuilt = np.einsum("a,azyx->zyx", coefficients, basis.patterns)
        assert np.abs(rebuilt - p).max() < 0.05 * np.abs(p).max()
    assert basis.variance[0] > basis.variance[1] > 0
    # Total variance of the two amplitudes ~ that of the signal in the weighted metric.
    signal = np.einsum("tzyx,tzyx,zyx->t", fields, fields, inner).mean()
    assert basis.variance.sum() == pytest.approx(signal, rel=0.02)
    sea = weights > 0
    assert np.all(basis.patterns[:, ~sea] == 0) and np.all(basis.residual_variance[~sea] == 0)
    np.testing.assert_allclose(basis.residual_variance[sea].mean(), 0.05**2, rtol=0.15)
    with pytest.raises(ValueError, match="n <="):
        fit_eofs(fields[:3], weights, 4)


def _layer(pattern: torch.Tensor, variance: float, share: float = 0.5) -> ReducedSpaceAnalysis:
    layer = ReducedSpaceAnalysis(1, SHAPE, background_share=share)
    layer.set_basis(pattern[None], torch.tensor([variance]), torch.full(SHAPE, 0.01))
    return layer


def test_reduced_analysis_matches_the_scalar_solution_and_keeps_the_rest_of_the_background():
    torch.manual_seed(0)
    pattern = torch.randn(SHAPE)
    layer = _layer(pattern, variance=4.0, share=0.5)
    background = torch.randn(1, 1, *SHAPE)
    obs = torch.randn(1, 1, *SHAPE)
    mask = (torch.rand(1, 1, *SHAPE) < 0.3).float()
    error = 0.2 * mask
    with torch.no_grad():
        analysis = layer(background, obs * mask, mask, error)
    # By hand: one amplitude, prior variance 4 x 0.5, obs variance 0.04 + truncation 0.01.
    weight = mask[0, 0] / (0.2**2 + 0.01)
    numerator = (pattern * weight * (obs - background)[0, 0]).sum()
    amplitude = numerator / (1 / 2.0 + (pattern**2 * weight).sum())
    torch.testing.assert_close(analysis[0, 0], background[0, 0] + amplitude * pattern, rtol=1e-5, atol=1e-5)
    # No observation: the background comes back untouched.
    torch.testing.assert_close(layer(background, obs, torch.zeros_like(mask), error), background)
    # Observations on unobserved cells do not count.
    noisy = obs + 100 * (1 - mask) * torch.randn_like(obs)
    torch.testing.assert_close(layer(background, noisy * mask, mask, error), analysis)


def test_reduced_analysis_batches_members_and_learns_its_error_shares():
    torch.manual_seed(1)
    layer = _layer(torch.randn(SHAPE), variance=1.0)
    background, obs = torch.randn(3, 1, *SHAPE), torch.randn(3, 1, *SHAPE)
    mask = (torch.rand(1, 1, *SHAPE) < 0.4).float().expand(3, -1, -1, -1, -1)
    mask = mask.clone()
    mask[2] = 0  # a member with no observations at all
    batch = layer(background, obs, mask, 0.3 * mask)
    for k in range(3):
        torch.testing.assert_close(
            batch[k : k + 1], layer(background[k : k + 1], obs[k : k + 1], mask[k : k + 1], 0.3 * mask[k : k + 1])
        )
    torch.testing.assert_close(batch[2], background[2])
    (batch - obs).pow(2).sum().backward()
    assert layer.log_background_share.grad.abs().sum() > 0 and layer.log_obs_error_factor.grad.abs() > 0


def test_generator_with_reduced_layer_starts_from_its_analysis():
    torch.manual_seed(2)
    gen = Generator(4, 2, n_stages=2, kernels=((3, 3, 3),), obs_inputs=("obs", "innovation", "error"),
                    reduced_space=2, field_shape=SHAPE)  # fmt: skip
    ocean = torch.ones(1, 1, *SHAPE)
    ocean[..., 0, :2] = 0
    gen.reduced.set_basis(torch.randn(2, *SHAPE) * ocean[0, 0], torch.ones(2), torch.full(SHAPE, 0.01))
    background, obs = torch.randn(1, 1, *SHAPE) * ocean, torch.randn(1, 1, *SHAPE)
    mask = (torch.rand(1, 1, *SHAPE) < 0.4).float() * ocean
    with torch.no_grad():
        gen.head.weight.zero_()  # no U-Net increment: the analysis is the layer's
        analysis = gen(background, obs, mask, ocean, 0.2 * mask)
        expected = gen.reduced(background, obs * mask, mask, 0.2 * mask) * ocean
    torch.testing.assert_close(analysis, expected)
    assert not torch.allclose(analysis, background) and torch.all(analysis[ocean.expand_as(analysis) == 0] == 0)
    assert gen.bg_stages[0].conv.in_channels == 3  # background, ocean, reduced analysis
    with pytest.raises(ValueError, match="field_shape"):
        Generator(reduced_space=4)


def test_tendency_variance_spans_year_boundaries_and_splits_on_the_eofs(tiny_grid, tiny_samples):
    samples = tiny_samples
    patterns = samples.eof_basis(4)[0].numpy()
    amplitude, residual = samples.tendency_variance(patterns, years=2)
    fields = samples.normalizer.encode(samples.world.anomaly(0, 146)).astype("f8")
    change = np.diff(fields, axis=0)  # 145 one-step changes, one across the year boundary
    metric = tiny_grid.volume / tiny_grid.volume[tiny_grid.volume > 0].mean()
    amplitudes = np.einsum("tdhw,rdhw,dhw->tr", change, patterns, metric)
    np.testing.assert_allclose(amplitude, (amplitudes**2).mean(axis=0), rtol=1e-4)
    rest = change - np.einsum("tr,rdhw->tdhw", amplitudes, patterns)
    np.testing.assert_allclose(residual, (rest**2).mean(axis=0), rtol=1e-3, atol=1e-8)
    # what the EOFs leave is orthogonal to them, and the two parts rebuild the fields
    projected, left = project_on_basis(change, tiny_grid.volume, patterns)
    np.testing.assert_allclose(np.einsum("tdhw,rdhw,dhw->tr", left, patterns, metric), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.einsum("tr,rdhw->tdhw", projected, patterns) + left, change, atol=1e-5)


def test_extended_basis_adds_orthogonal_patterns_spanning_what_the_old_one_missed():
    rng = np.random.default_rng(1)
    fields, weights, patterns = _low_rank_samples(rng)
    basis = fit_eofs(fields, weights, 1)  # spans the first pattern only
    other = rng.standard_normal((300, 1, 1, 1)) * (patterns[1] + patterns[0])
    extended = extend_basis(basis, other * (weights > 0), weights, 1)
    inner = weights / weights[weights > 0].mean()
    gram = np.einsum("azyx,bzyx,zyx->ab", extended.patterns, extended.patterns, inner)
    np.testing.assert_allclose(gram, np.eye(2), atol=1e-4)
    np.testing.assert_array_equal(extended.patterns[0], basis.patterns[0])
    np.testing.assert_array_equal(extended.residual_variance, basis.residual_variance)
    _, missed_before = project_on_basis(patterns[1][None], weights, basis.patterns)
    _, missed_after = project_on_basis(patterns[1][None], weights, extended.patterns)
    assert np.abs(missed_after).max() < 0.05 * np.abs(missed_before).max()


def test_offset_patterns_let_the_basis_span_a_large_scale_warming(tiny_grid, tiny_samples):
    from engine.world.patterns import large_scale_offset

    samples = tiny_samples
    control, _, _ = samples.eof_basis(4)
    patterns, variance, _ = samples.eof_basis(4, offsets=6)
    assert patterns.shape[0] == variance.shape[0] == 10
    torch.testing.assert_close(patterns[:4], control)  # the control EOFs come first, unchanged
    # an offset the basis was not fitted on (a draw of the same kind): the control EOFs
    # leave nearly all of its variance, the 6 offset patterns most of it (a fitted 6 leaves 0.22)
    warming = samples.normalizer.encode(large_scale_offset(tiny_grid, np.random.default_rng(5), 0.25, (200.0, 2000.0)))

    def left(basis: torch.Tensor) -> float:
        _, rest = project_on_basis(warming[None], tiny_grid.volume, basis.numpy())
        return float((rest**2 * tiny_grid.volume).sum() / (warming**2 * tiny_grid.volume).sum())

    assert left(control) > 0.8 and left(patterns) < 0.3


def test_adopted_weights_keep_the_start_and_grow_the_per_pattern_entries():
    own = {"a": torch.zeros(2, 3), "b": torch.zeros(4), "c": torch.zeros(5, 2), "d": torch.zeros(3)}
    init = {"a": torch.ones(2, 3), "b": torch.ones(2), "c": torch.ones(5, 3)}
    adopted = adopt_weights(own, init)
    assert torch.equal(adopted["a"], init["a"])  # same shape: taken whole
    assert adopted["b"].tolist() == [1.0, 1.0, 0.0, 0.0]  # grew: the start's entries first
    assert torch.equal(adopted["c"], own["c"]) and torch.equal(adopted["d"], own["d"])  # no match: own
