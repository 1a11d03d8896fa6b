"""Mask-aware 3-D partial convolution and the shared "same" padding.

Tensors are laid out ``(N, C, depth, lat, lon)``.  The ocean is periodic in longitude, so
every convolution in DeepDA pads the last axis circularly; depth and latitude are padded
with zeros (and, for masks, with "unobserved"), which is what a closed top/bottom and the
poles call for.

:class:`PartialConv3d` follows Liu et al. (2018), "Image inpainting for irregular holes
using partial convolutions": only observed voxels enter the weighted sum, which is then
rescaled by ``window_volume / observed_count`` so that a window with few observations gives
an output of the same magnitude as a fully observed one.  In DeepDA this layer acts as the
learned observation operator: it spreads sparse profile data into the surrounding cells
and reports, through the updated mask, where information now exists.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

Triple = tuple[int, int, int]


def as_triple(kernel: int | tuple[int, ...]) -> Triple:
    """Return ``kernel`` as a ``(depth, lat, lon)`` triple (an int means a cube)."""
    if isinstance(kernel, int):
        return (kernel, kernel, kernel)
    if len(kernel) != 3 or any(int(k) < 1 for k in kernel):
        raise ValueError(f"kernel must be three positive ints, got {kernel!r}")
    return (int(kernel[0]), int(kernel[1]), int(kernel[2]))


def same_padding(kernel: int | tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """(before, after) padding per axis that keeps the size for a stride-1 convolution.

    Even kernels need asymmetric padding; like ``torch``'s ``padding="same"`` the extra
    cell goes *after*, e.g. a kernel of 4 pads (1, 2).
    """
    return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in as_triple(kernel))


def wrap_lon(x: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """Pad the last axis periodically by ``before``/``after`` cells.

    Slices joined when the padding fits in the axis (a gather along the last axis costs
    several times more on CPU); modular indexing when it exceeds the axis length (an
    8-wide kernel on a 3-cell map deep in the U-Net), which ``F.pad(mode="circular")`` refuses.
    """
    if before == 0 and after == 0:
        return x
    width = x.shape[-1]
    if before <= width and after <= width:
        return torch.cat([x[..., width - before :], x, x[..., :after]], dim=-1)
    index = torch.arange(-before, width + after, device=x.device) % width
    return x.index_select(-1, index)


def same_pad(x: torch.Tensor, kernel: int | tuple[int, ...], circular_lon: bool = True) -> torch.Tensor:
    """Pad ``x`` (N, C, D, H, W) so that a stride-1 conv with ``kernel`` keeps D, H, W.

    Parameters
    ----------
    x
        Input tensor, ``(N, C, depth, lat, lon)``.
    kernel
        Kernel size in torch order ``(k_depth, k_lat, k_lon)`` or an int.
    circular_lon
        Wrap the longitude axis periodically (default); otherwise pad it with zeros.

    Returns
    -------
    torch.Tensor
        The padded tensor; depth and latitude are zero-padded.
    """
    (d0, d1), (h0, h1), (w0, w1) = same_padding(kernel)
    if circular_lon:
        x = wrap_lon(x, w0, w1)
        w0 = w1 = 0
    return F.pad(x, (w0, w1, h0, h1, d0, d1))


class PartialConv3d(nn.Module):
    """3-D partial convolution with a single-channel mask and mask update.

    ``out = conv(x * m) * (window_volume / count) + bias`` where ``count`` is the number of
    observed voxels under the window; where ``count == 0`` the output is exactly zero
    (bias included), so "no information" stays zero downstream.  Output size equals input
    size ("same" padding, circular in longitude).

    Parameters
    ----------
    in_channels, out_channels
        Channel counts.
    kernel_size
        Kernel in torch order ``(k_depth, k_lat, k_lon)`` or an int; even sizes allowed.
    bias
        Learn an additive bias (applied only where the window saw an observation).
    circular_lon
        Periodic padding along longitude (the last axis).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int, int],
        bias: bool = True,
        circular_lon: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = as_triple(kernel_size)
        self.circular_lon = circular_lon
        self.window_volume = math.prod(self.kernel_size)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # Not persistent: a constant, so it must not end up in checkpoints.
        self.register_buffer("ones", torch.ones(1, 1, *self.kernel_size), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise like ``nn.Conv3d`` so both branches of the generator start alike."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_channels * self.window_volume)
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"bias={self.bias is not None}, circular_lon={self.circular_lon}"
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Convolve the observed part of ``x``.

        Parameters
        ----------
        x
            ``(N, C_in, D, H, W)`` input.
        mask
            ``(N, 1, D, H, W)`` (or batch-broadcastable) 0/1 mask shared by all channels.

        Returns
        -------
        out, new_mask
            ``(N, C_out, D, H, W)`` output and the ``(N, 1, D, H, W)`` updated mask
            (1 wherever the window contained at least one observed voxel), in ``x.dtype``.
        """
        if mask.dim() != 5 or mask.shape[1] != 1:
            raise ValueError(f"mask must be (N, 1, D, H, W), got {tuple(mask.shape)}")
        mask = mask.to(x.dtype)
        # The count is computed in float32 outside autocast: it must be an exact integer
        # (bf16 would round sums above 256) and it carries no gradient.
        with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
            padded_mask = same_pad(mask.float(), self.kernel_size, self.circular_lon)
            count = F.conv3d(padded_mask, self.ones.float())
            seen = count > 0
            ratio = torch.where(seen, self.window_volume / count.clamp(min=1.0), 0.0)
        new_mask = seen.to(x.dtype)
        padded = same_pad(x * mask, self.kernel_size, self.circular_lon)
        out = F.conv3d(padded, self.weight)
        out = out * ratio.to(out.dtype)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1, 1) * new_mask
        return out, new_mask
