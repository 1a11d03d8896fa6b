"""Observations kept out of an assimilation to score it on (cross-validation).

Whole profiles are withheld, never single levels: a profile's levels share its errors, so
scoring on the rest of a profile the analysis saw would flatter it. The choice is a hash
of each profile's id and the seed, the same whichever chunk of the file a profile is read
in, so a resumed run withholds exactly what the first part did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads consecutive ids over [0, 1)


@dataclass(frozen=True)
class Withholding:
    """Which observations to keep out: a share of the profiles, whole platforms, or both."""

    fraction: float = 0.0
    platforms: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"withheld fraction {self.fraction} must be in [0, 1)")

    @property
    def active(self) -> bool:
        return self.fraction > 0 or bool(self.platforms)

    def describe(self) -> str:
        parts = [f"{self.fraction:g} of the profiles (seed {self.seed})"] if self.fraction > 0 else []
        parts += [f"platforms {','.join(self.platforms)}"] if self.platforms else []
        return "; ".join(parts) or "none"

    def withheld(self, table: pd.DataFrame) -> np.ndarray:
        """Boolean per row: True where the row's profile is withheld."""
        out = np.zeros(len(table), bool)
        if self.fraction > 0 and len(table):
            ids = table["profile_id"].to_numpy().astype("u8")
            with np.errstate(over="ignore"):
                mixed = (ids ^ np.uint64(self.seed)) * _GOLDEN
            out |= (mixed >> np.uint64(11)).astype("f8") / 2.0**53 < self.fraction
        if self.platforms:
            out |= table["platform"].astype(str).isin(self.platforms).to_numpy()
        return out
