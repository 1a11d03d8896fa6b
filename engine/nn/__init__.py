"""Neural networks of DeepDA (torch only; no numpy, no engine.config).

Tensor layout everywhere: ``(N, C, depth, lat, lon)``; longitude is periodic.
"""

from .discriminator import Discriminator
from .generator import Generator, count_parameters
from .losses import discriminator_loss, generator_loss, masked_mse
from .pconv import PartialConv3d, same_pad

__all__ = [
    "Discriminator",
    "Generator",
    "PartialConv3d",
    "count_parameters",
    "discriminator_loss",
    "generator_loss",
    "masked_mse",
    "same_pad",
]
