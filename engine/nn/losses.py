"""GAN losses of DeepDA (DESIGN section 4).

Discriminator: binary cross-entropy x 0.5.  Generator: MSE against the truth x 1 plus the
adversarial binary cross-entropy x 0.1.  The MSE is averaged over ocean points only, so the
loss does not depend on how much land a grid has.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the points where ``mask`` is set.

    Parameters
    ----------
    pred, target
        Tensors of the same shape, e.g. ``(N, 1, D, H, W)``.
    mask
        0/1 (or non-negative weight) tensor broadcastable to ``pred``, e.g. ``(1, 1, D, H, W)``.

    Returns
    -------
    torch.Tensor
        Scalar ``sum(mask * (pred - target)**2) / sum(mask)`` (the mask counted once per
        broadcast copy); 0 if the mask is empty.
    """
    weight = mask.to(pred.dtype).expand_as(pred)
    total = (weight * (pred - target).square()).sum()
    # tiny instead of 1: stays correct for fractional weights, and 0/tiny = 0 when empty.
    return total / weight.sum().clamp(min=torch.finfo(pred.dtype).tiny)


def generator_loss(
    analysis: torch.Tensor,
    truth: torch.Tensor,
    fake_logits: torch.Tensor | None,
    ocean_mask: torch.Tensor,
    mse_weight: float = 1.0,
    adversarial_weight: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generator objective.

    Parameters
    ----------
    analysis, truth
        ``(N, 1, D, H, W)`` generator output and the true state.
    fake_logits
        ``(N,)`` discriminator logits on the generator's tendency, or None when there is
        no critic (the adversarial term is then zero).
    ocean_mask
        Mask broadcastable to ``analysis``.
    mse_weight, adversarial_weight
        Weights of the two terms (paper: 1 and 0.1).

    Returns
    -------
    total, mse, adv
        Weighted sum and the two unweighted terms; ``adv = BCE(fake_logits, 1)``, i.e. the
        generator wants its tendencies judged real.
    """
    mse = masked_mse(analysis, truth, ocean_mask)
    if fake_logits is None:
        return mse_weight * mse, mse, torch.zeros_like(mse)
    adv = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return mse_weight * mse + adversarial_weight * adv, mse, adv


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, weight: float = 0.5) -> torch.Tensor:
    """``weight * (BCE(real_logits, 1) + BCE(fake_logits, 0))`` (paper: weight 0.5)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return weight * (real + fake)
