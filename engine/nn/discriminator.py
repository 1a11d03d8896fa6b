"""The DeepDA discriminator: judges the analysis **tendency** (analysis minus background).

Following the paper, the critic sees the increment the generator made rather than the
field itself: a realistic field is easy to get by copying the background, whereas a
realistic *update* (right spatial scales, right vertical structure) is what the adversarial
loss should teach.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .pconv import as_triple, same_pad

STRIDE = (1, 2, 2)  # (depth, lat, lon): downsample horizontally only, as in the generator


def downsample_mask(mask: torch.Tensor) -> torch.Tensor:
    """2x2 horizontal max-pool of a mask to the size of a stride-2 "same" conv output.

    A cell is ocean if any of its four children is; odd sizes are padded with land first
    so the result has ``ceil(H/2) x ceil(W/2)`` cells, like the convolution.
    """
    height, width = mask.shape[-2:]
    return F.max_pool3d(F.pad(mask, (0, width % 2, 0, height % 2)), STRIDE)


class Discriminator(nn.Module):
    """Convolutional critic of analysis tendencies.

    ``n_stages`` convolutions with horizontal stride 2 and LeakyReLU, a mean over ocean
    cells (so land and grid size do not matter), and a linear layer to one logit.

    Parameters
    ----------
    channels
        Width of the first convolution; doubles at every stage.
    n_stages
        Number of strided convolutions.
    kernel
        Kernel in torch order ``(k_depth, k_lat, k_lon)``.
    negative_slope
        LeakyReLU slope.
    circular_lon
        Periodic padding along longitude.
    """

    def __init__(
        self,
        channels: int = 8,
        n_stages: int = 3,
        kernel: Sequence[int] = (3, 4, 4),
        negative_slope: float = 0.2,
        circular_lon: bool = True,
    ) -> None:
        super().__init__()
        if n_stages < 1:
            raise ValueError("need n_stages >= 1")
        self.kernel = as_triple(tuple(kernel))
        self.negative_slope, self.circular_lon = negative_slope, circular_lon
        widths = [2] + [channels * 2**s for s in range(n_stages)]  # in: tendency + mask
        self.convs = nn.ModuleList(
            nn.Conv3d(widths[s], widths[s + 1], self.kernel, stride=STRIDE) for s in range(n_stages)
        )
        self.head = nn.Linear(widths[-1], 1)

    def forward(self, tendency: torch.Tensor, ocean_mask: torch.Tensor) -> torch.Tensor:
        """Logit that ``tendency`` is a real one (truth minus background).

        Parameters
        ----------
        tendency
            ``(N, 1, D, H, W)`` analysis minus background; land values are ignored.
        ocean_mask
            ``(N or 1, 1, D, H, W)`` 0/1 ocean mask.

        Returns
        -------
        torch.Tensor
            ``(N,)`` logits.
        """
        if tendency.dim() != 5 or tendency.shape[1] != 1:
            raise ValueError(f"tendency must be (N, 1, D, H, W), got {tuple(tendency.shape)}")
        mask = ocean_mask.to(tendency.dtype).expand(tendency.shape[0], -1, -1, -1, -1)
        x = torch.cat([tendency * mask, mask], dim=1)
        for conv in self.convs:
            x = F.leaky_relu(conv(same_pad(x, self.kernel, self.circular_lon)), self.negative_slope)
            mask = downsample_mask(mask)
        # Masked global mean: features over land cells are padding, not evidence.
        pooled = (x * mask).sum(dim=(2, 3, 4)) / mask.sum(dim=(2, 3, 4)).clamp(min=1.0)
        return self.head(pooled).squeeze(1)
