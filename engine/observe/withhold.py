"""Observations kept out of an assimilation to score it on (cross-validation).

Whole profiles are withheld, never single levels: a profile's levels share its errors, so
scoring on the rest of a profile the analysis saw would flatter it. The choice is a hash
of each profile's id and the seed, the same whichever chunk of the file a profile is read
in, so a resumed run withholds exactly what the first part did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads consecutive ids over [0, 1)
FLOAT_ID_FACTOR = 1_000_000  # Argo GDAC profile ids are WMO number * 1e6 + cycle (engine.io.realformats)


def _share(keys: np.ndarray, seed: int) -> np.ndarray:
    """A number in [0, 1) per key, fixed by the key and the seed."""
    with np.errstate(over="ignore"):
        mixed = (keys.astype("u8") ^ np.uint64(seed)) * _GOLDEN
    return (mixed >> np.uint64(11)).astype("f8") / 2.0**53


def float_keys(table: pd.DataFrame) -> np.ndarray:
    """The float (WMO number) of each Argo row read from GDAC files; -1 for other rows, and
    the profile's own id where a file gave no WMO number."""
    ids = table["profile_id"].to_numpy().astype("i8")
    argo = table["platform"].astype(str).to_numpy() == "argo"
    return np.where(argo, np.where(ids >= FLOAT_ID_FACTOR, ids // FLOAT_ID_FACTOR, ids), -1)


@dataclass(frozen=True)
class Withholding:
    """Which observations to keep out: a share of the profiles, a share of the Argo floats
    (each whole, by WMO number), whole platforms, or any of them together."""

    fraction: float = 0.0
    platforms: tuple[str, ...] = ()
    seed: int = 0
    float_fraction: float = 0.0
    floats: tuple[int, ...] | None = None  # the WMO numbers chosen by choose_floats

    def __post_init__(self) -> None:
        for share in (self.fraction, self.float_fraction):
            if not 0.0 <= share < 1.0:
                raise ValueError(f"withheld fraction {share} must be in [0, 1)")

    @property
    def active(self) -> bool:
        return self.fraction > 0 or self.float_fraction > 0 or bool(self.platforms)

    def choose_floats(self, candidates: np.ndarray) -> Withholding:
        """This withholding with its share of the floats ``candidates`` (WMO numbers, -1 for
        rows of no float) chosen: the share rounded, at least one, lowest hashes first, so
        that a share of a few floats is never none of them."""
        keys = np.unique(np.asarray(candidates, "i8"))
        keys = keys[keys >= 0]
        if self.float_fraction <= 0 or not len(keys):
            return self
        n = min(len(keys), max(1, round(self.float_fraction * len(keys))))
        chosen = keys[np.argsort(_share(keys, self.seed + 1), kind="stable")[:n]]
        return replace(self, floats=tuple(sorted(int(k) for k in chosen)))

    def describe(self) -> str:
        parts = [f"{self.fraction:g} of the profiles (seed {self.seed})"] if self.fraction > 0 else []
        if self.float_fraction > 0:
            chosen = f": floats {', '.join(map(str, self.floats))}" if self.floats else ""
            parts += [f"{self.float_fraction:g} of the Argo floats (seed {self.seed}){chosen}"]
        parts += [f"platforms {','.join(self.platforms)}"] if self.platforms else []
        return "; ".join(parts) or "none"

    def withheld(self, table: pd.DataFrame) -> np.ndarray:
        """Boolean per row: True where the row's profile is withheld."""
        out = np.zeros(len(table), bool)
        if self.fraction > 0 and len(table):
            out |= _share(table["profile_id"].to_numpy(), self.seed) < self.fraction
        if self.float_fraction > 0 and len(table):
            floats = float_keys(table)
            if self.floats is not None:
                out |= np.isin(floats, self.floats)
            else:  # not chosen from a file's floats: each float by its own hash
                out |= (floats >= 0) & (_share(floats, self.seed + 1) < self.float_fraction)
        if self.platforms:
            out |= table["platform"].astype(str).isin(self.platforms).to_numpy()
        return out
