"""A reduced-space analysis layer: the large scales, solved exactly, in front of the U-Net.

A convolutional network is local and translation-invariant, but in the ocean the
covariances that let a surface or a mooring observation inform the thermocline a basin
away are large-scale and tied to geography. Classical reduced-space optimal
interpolation (Kaplan et al. 1997, *J. Geophys. Res.* 102, 27835) handles exactly that
part: the large-scale correction is written as ``c @ patterns`` on the leading empirical
orthogonal functions (EOFs) of the training data, and at each step the amplitudes ``c``
are the minimum-variance estimate from the observations' departures from the background.
The generator then only has to add the small scales the EOFs miss (eddies, local detail).

The EOFs are data (buffers, fitted once from the training years by
:func:`engine.train.eof.fit_eofs` and stored in the checkpoint). What is learned is each EOF's
background-error variance, as a share of its climatological variance, and a factor on
the observation errors.
"""

from __future__ import annotations

import torch
from torch import nn


class ReducedSpaceAnalysis(nn.Module):
    """Stateless reduced-space analysis on ``n_patterns`` EOFs of a ``(depth, lat, lon)`` grid.

    Parameters
    ----------
    n_patterns
        Number of EOFs.
    field_shape
        ``(depth, lat, lon)`` of the fields.
    background_share
        Starting background-error variance of each amplitude as a share of its
        climatological variance (learned from there).
    """

    def __init__(self, n_patterns: int, field_shape: tuple[int, int, int], background_share: float = 0.3) -> None:
        super().__init__()
        self.register_buffer("patterns", torch.zeros(n_patterns, *field_shape))  # field = amplitudes @ patterns
        self.register_buffer("variance", torch.ones(n_patterns))  # climatological amplitude variance
        self.register_buffer("residual_variance", torch.zeros(field_shape))  # what the EOFs miss, per cell
        share = torch.full((n_patterns,), float(background_share))
        self.log_background_share = nn.Parameter(torch.log(share))  # learned, per EOF
        self.log_obs_error_factor = nn.Parameter(torch.zeros(()))

    def set_basis(self, patterns: torch.Tensor, variance: torch.Tensor, residual_variance: torch.Tensor) -> None:
        """Install a fitted basis (see :func:`engine.train.eof.fit_eofs`)."""
        for name, value in (("patterns", patterns), ("variance", variance), ("residual_variance", residual_variance)):
            buffer = getattr(self, name)
            if tuple(value.shape) != tuple(buffer.shape):
                raise ValueError(f"{name} must be {tuple(buffer.shape)}, got {tuple(value.shape)}")
            buffer.copy_(value)

    def forward(
        self, background: torch.Tensor, obs: torch.Tensor, obs_mask: torch.Tensor, obs_error: torch.Tensor | None
    ) -> torch.Tensor:
        """The analysis ``(N, 1, D, H, W)``: the background plus a large-scale increment.

        The increment's amplitudes ``c`` solve, per sample, ``(B^-1 + H'R^-1 H) c =
        H'R^-1 (y - H x_b)``, an incremental 3D-Var in the EOFs' space with ``B``
        diagonal and ``R`` the observation error variance plus the EOFs' truncation
        variance at each observed cell (the small scales are noise to a large-scale fit).
        Whatever the background holds outside the EOFs (a trend the control run lacks)
        is kept. Runs in float64, outside any autocast.
        """
        with torch.autocast(background.device.type, enabled=False):
            n = background.shape[0]
            # Only the observed cells enter the solve (a tenth to a third of the grid).
            cells = obs_mask.flatten(1).amax(0).nonzero().squeeze(1)
            patterns = self.patterns.flatten(1).double()  # (R, K)
            seen = patterns[:, cells]

            def observed(t: torch.Tensor) -> torch.Tensor:
                return t.flatten(1)[:, cells].double()

            error = torch.zeros_like(obs) if obs_error is None else obs_error
            obs_variance = observed(error) ** 2 * torch.exp(2 * self.log_obs_error_factor.double())
            variance = (obs_variance + self.residual_variance.flatten()[cells].double()).clamp_min(1e-6)
            weight = observed(obs_mask) / variance  # (N, cells): zero where a sample has no observation
            innovation = (observed(obs) - observed(background)) * weight
            prior = self.variance.double() * torch.exp(self.log_background_share.double())
            system = torch.einsum("rk,nk,sk->nrs", seen, weight, seen)
            system = system + torch.diag_embed((1.0 / prior).expand(n, -1))
            amplitudes = torch.linalg.solve(system, (innovation @ seen.T).unsqueeze(-1)).squeeze(-1)
            increment = (amplitudes @ patterns).view_as(background)
        return background + increment.to(background.dtype)
