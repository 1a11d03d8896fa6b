"""The DeepDA generator: a two-branch 3-D U-Net that turns (background, observations) into
an analysis (DESIGN section 4).

* The **background branch** sees the background anomaly and the ocean mask through
  ordinary 3-D convolutions.
* The **observation branch** sees the gridded observations through
  :class:`~engine.nn.pconv.PartialConv3d`, which only uses observed cells and propagates the
  observation mask from stage to stage; it plays the role of the observation operator.
  Besides the observed value it can see, at the same cells, the innovation (observation
  minus background, what a classical analysis spreads) and the super-observation error
  (a cell averaging five Argo profiles deserves more weight than one satellite pixel).
* Each encoder stage has twin paths, ReLU (``relu_channels * 2**stage`` channels) and tanh
  (``tanh_channels * 2**stage``), concatenated, plus a 1x1x1 residual shortcut; pooling is
  horizontal only (2x2 in lat/lon) because the depth axis is short and not self-similar.
* At every level the two branches (and the propagated observation mask) are concatenated as
  U-Net skips; a transposed-convolution decoder brings the features back to full
  resolution and a 1x1x1 convolution gives the analysis **increment**.
* ``analysis = (background + increment) * ocean_mask``: exactly zero on land.
* Optionally (``reduced_space > 0``, not in the reference architecture) a
  :class:`~engine.nn.reduced.ReducedSpaceAnalysis` first solves for the large scales on the
  training data's leading EOFs; the U-Net then sees that analysis as a third background
  channel, its innovations are taken against it, and its increment is added to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .pconv import PartialConv3d, Triple, as_triple, same_pad, wrap_lon
from .reduced import ReducedSpaceAnalysis

POOL: Triple = (1, 2, 2)  # (depth, lat, lon): never pool in depth
OBS_INPUTS = ("obs", "innovation", "error")  # what the observation branch may see, per observed cell


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def twin_activation(y: torch.Tensor, n_relu: int) -> torch.Tensor:
    """ReLU on the first ``n_relu`` channels, tanh on the rest.

    One convolution producing both paths' channels is mathematically the same as two
    parallel convolutions, and runs as a single (faster) kernel.
    """
    return torch.cat([F.relu(y[:, :n_relu]), torch.tanh(y[:, n_relu:])], dim=1)


class TwinBlock(nn.Module):
    """Ordinary-convolution stage: ReLU and tanh paths side by side + 1x1x1 shortcut."""

    def __init__(self, in_channels: int, relu: int, tanh: int, kernel: Triple, circular_lon: bool = True) -> None:
        super().__init__()
        self.kernel, self.relu, self.circular_lon = as_triple(kernel), relu, circular_lon
        self.conv = nn.Conv3d(in_channels, relu + tanh, self.kernel)
        self.shortcut = nn.Conv3d(in_channels, relu + tanh, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(same_pad(x, self.kernel, self.circular_lon))
        return twin_activation(y, self.relu) + self.shortcut(x)


class PartialTwinBlock(nn.Module):
    """Partial-convolution stage: like :class:`TwinBlock`, but mask-aware throughout.

    The shortcut is a 1x1x1 partial convolution, so it too is exactly zero where the input
    was unobserved; features are therefore zero wherever the propagated mask is zero.
    """

    def __init__(self, in_channels: int, relu: int, tanh: int, kernel: Triple, circular_lon: bool = True) -> None:
        super().__init__()
        self.relu = relu
        self.conv = PartialConv3d(in_channels, relu + tanh, kernel, circular_lon=circular_lon)
        self.shortcut = PartialConv3d(in_channels, relu + tanh, 1, circular_lon=circular_lon)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, new_mask = self.conv(x, mask)
        short, _ = self.shortcut(x, mask)
        return twin_activation(y, self.relu) + short, new_mask


def masked_max_pool(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal 2x2 max-pool of features and mask, ignoring unobserved cells.

    Unobserved cells hold zeros that are not data; letting them into the max would bias the
    pooled value upwards, so they are set to -inf first and pooled cells that saw no
    observation are set back to exactly zero.
    """
    pooled_mask = F.max_pool3d(mask, POOL)
    pooled = F.max_pool3d(x.masked_fill(mask == 0, float("-inf")), POOL)
    return pooled.masked_fill(pooled_mask == 0, 0.0), pooled_mask


class Generator(nn.Module):
    """Partial-convolution U-Net generator (see module docstring).

    Parameters
    ----------
    relu_channels, tanh_channels
        Widths of the ReLU and tanh paths at the top level; they double at every stage.
    n_stages
        Number of encoder stages; each is followed by a 2x2 horizontal max-pool, so the
        horizontal grid is padded internally to a multiple of ``2**n_stages``.
    kernels
        Encoder kernel per stage as ``(lon, lat, depth)`` sizes, the paper's convention
        (8x6x4 is 8 in longitude); the last one is repeated if fewer than ``n_stages``.
    decoder_kernel
        ``(lon, lat, depth)`` kernel of the decoder and bottleneck convolutions; small
        because they run on wide concatenated features, where an 8x6x4 kernel would
        multiply the cost several times over.
    obs_inputs
        Channels of the observation branch, a subset of :data:`OBS_INPUTS` in that order:
        ``"obs"`` the observed anomaly, ``"innovation"`` observation minus background,
        ``"error"`` the super-observation error (same units as the anomalies).  The
        reference architecture sees ``("obs",)`` only.
    circular_lon
        Periodic longitude (global grids).  Set False for regional grids.
    reduced_space
        Number of EOFs of the reduced-space analysis layer; 0 (the reference) for none.
    field_shape
        ``(depth, lat, lon)`` of the grid; required when ``reduced_space > 0``, whose basis
        (installed with ``generator.reduced.set_basis``) is grid-specific.
    """

    def __init__(
        self,
        relu_channels: int = 16,
        tanh_channels: int = 8,
        n_stages: int = 3,
        kernels: Sequence[Sequence[int]] = ((8, 6, 4), (5, 5, 3), (3, 3, 3)),
        decoder_kernel: Sequence[int] = (3, 3, 3),
        obs_inputs: Sequence[str] = ("obs",),
        circular_lon: bool = True,
        reduced_space: int = 0,
        field_shape: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        if n_stages < 1 or not kernels:
            raise ValueError("need n_stages >= 1 and at least one kernel")
        self.obs_inputs = tuple(obs_inputs)
        if not self.obs_inputs or self.obs_inputs != tuple(k for k in OBS_INPUTS if k in self.obs_inputs):
            raise ValueError(f"obs_inputs must be a non-empty subset of {OBS_INPUTS} in that order, got {obs_inputs}")
        self.n_stages, self.circular_lon = n_stages, circular_lon
        # (lon, lat, depth) as in the paper -> torch order (depth, lat, lon).
        enc = [as_triple(tuple(reversed(k))) for k in kernels][:n_stages]
        enc += [enc[-1]] * (n_stages - len(enc))
        dec = as_triple(tuple(reversed(tuple(decoder_kernel))))
        widths = [(relu_channels * 2**s, tanh_channels * 2**s) for s in range(n_stages + 1)]
        ch = [r + t for r, t in widths]

        self.bg_stages, self.obs_stages = nn.ModuleList(), nn.ModuleList()
        self.reduced = None
        if reduced_space > 0:
            if field_shape is None:
                raise ValueError("a reduced-space layer needs the grid's field_shape (depth, lat, lon)")
            self.reduced = ReducedSpaceAnalysis(reduced_space, tuple(field_shape))
        # background + ocean mask (+ reduced-space analysis) | observation channels
        bg_in, obs_in = 2 + (self.reduced is not None), len(self.obs_inputs)
        for s in range(n_stages):
            self.bg_stages.append(TwinBlock(bg_in, *widths[s], enc[s], circular_lon))
            self.obs_stages.append(PartialTwinBlock(obs_in, *widths[s], enc[s], circular_lon))
            bg_in = obs_in = ch[s]
        # Skip at level s: bg features + obs features + propagated obs mask (so the decoder
        # can tell "observed, value 0" from "no observation reached here").
        skip = [2 * c + 1 for c in ch]
        self.bottleneck = TwinBlock(skip[-2], *widths[-1], dec, circular_lon)
        self.up = nn.ModuleList(nn.ConvTranspose3d(ch[s + 1], ch[s], POOL, stride=POOL) for s in range(n_stages))
        self.dec_stages = nn.ModuleList(
            TwinBlock(ch[s] + skip[s], *widths[s], dec, circular_lon) for s in range(n_stages)
        )
        self.head = nn.Conv3d(ch[0], 1, 1)
        # Start close to the identity (analysis ~ background): in recurrent training a
        # random initial increment would be fed back and amplified cycle after cycle.
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def forward(
        self,
        background: torch.Tensor,
        obs: torch.Tensor,
        obs_mask: torch.Tensor,
        ocean_mask: torch.Tensor,
        obs_error: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Analysis from a background and gridded observations.

        Parameters
        ----------
        background, obs
            ``(N, 1, D, H, W)`` anomaly fields (obs values where ``obs_mask == 0`` are
            ignored).
        obs_mask
            ``(N, 1, D, H, W)`` 0/1 observation mask.
        ocean_mask
            ``(N or 1, 1, D, H, W)`` 0/1 ocean (1) / land (0) mask.
        obs_error
            ``(N, 1, D, H, W)`` super-observation error standard deviation at observed
            cells, in the units of ``obs``; required when the model sees ``"error"``.

        Returns
        -------
        torch.Tensor
            ``(N, 1, D, H, W)`` analysis, exactly zero on land.
        """
        for name, t in (("background", background), ("obs", obs), ("obs_mask", obs_mask)):
            if t.dim() != 5 or t.shape[1] != 1:
                raise ValueError(f"{name} must be (N, 1, D, H, W), got {tuple(t.shape)}")
        dtype, n = background.dtype, background.shape[0]
        ocean = ocean_mask.to(dtype).expand(n, -1, -1, -1, -1)
        seen = obs_mask.to(dtype) * ocean  # an observation on land is not used
        background_fields = [background * ocean, ocean]
        base = background
        if self.reduced is not None:
            base = self.reduced(background * ocean, obs * seen, seen, obs_error) * ocean
            background_fields.append(base)
        observed = self._obs_channels(base, obs, obs_error) * seen
        fields = [torch.cat(background_fields, dim=1), observed, seen]
        fields, crop = self._pad_horizontal(fields)
        increment = crop(self._unet(*fields))
        return (base + increment) * ocean_mask.to(dtype)

    def _obs_channels(
        self, background: torch.Tensor, obs: torch.Tensor, obs_error: torch.Tensor | None
    ) -> torch.Tensor:
        """The observation branch's input channels (multiplied by the mask afterwards)."""
        channels = []
        if "obs" in self.obs_inputs:
            channels.append(obs)
        if "innovation" in self.obs_inputs:
            channels.append(obs - background)
        if "error" in self.obs_inputs:
            if obs_error is None or obs_error.shape != obs.shape:
                raise ValueError(f"this generator sees the observation error: give obs_error shaped {tuple(obs.shape)}")
            channels.append(obs_error.to(obs.dtype))
        return torch.cat(channels, dim=1)

    def _pad_horizontal(
        self, fields: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
        """Pad lat (zeros = land, unobserved) and lon (periodic) to a multiple of 2**n.

        Returns the padded tensors and a function that crops a result back.  On grids that
        already fit (72, 144, 360 lon) longitude is left untouched, so periodicity is exact.
        """
        height, width = fields[0].shape[-2:]
        m = 2**self.n_stages
        ph, pw = (-height) % m, (-width) % m
        h0, w0 = ph // 2, pw // 2
        out = []
        for f in fields:
            f = wrap_lon(f, w0, pw - w0) if self.circular_lon else F.pad(f, (w0, pw - w0))
            out.append(F.pad(f, (0, 0, h0, ph - h0)))

        def crop(x: torch.Tensor) -> torch.Tensor:
            return x[..., h0 : h0 + height, w0 : w0 + width]

        return out, crop

    def _unet(self, bg: torch.Tensor, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Two-branch encoder, fused bottleneck, decoder with skips -> increment."""
        skips = []
        for bg_stage, obs_stage in zip(self.bg_stages, self.obs_stages, strict=True):
            bg = bg_stage(bg)
            obs, mask = obs_stage(obs, mask)
            skips.append(torch.cat([bg, obs, mask], dim=1))
            bg = F.max_pool3d(bg, POOL)
            obs, mask = masked_max_pool(obs, mask)
        x = self.bottleneck(torch.cat([bg, obs, mask], dim=1))
        for s in reversed(range(self.n_stages)):
            x = self.dec_stages[s](torch.cat([self.up[s](x), skips[s]], dim=1))
        return self.head(x)
