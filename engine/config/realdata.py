"""The real-observation sections of the configuration: [obs_error] and [learn]."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config.rules import SEED, Rule, check_fields, require


@dataclass(frozen=True)
class ObsErrorSpec:
    """Representativeness error and the background check (DESIGN section 6).

    A measurement is a point at an instant; a grid cell holds a cell- and step-mean. The
    difference is shared by every profile in a cell, so it never averages away:

    ``r^2 = (heave_m * |dT/dz|)^2 + f(D) * (eddy_displacement_km * |grad_h T|)^2 + floor^2``

    with ``T`` the grid's climatology, ``f(D) = D^2 / (D^2 + mesoscale_km^2)`` the share of
    mesoscale variance a cell of size ``D`` averages over. Isotherm heave (internal waves,
    eddies, equatorial waves) dominates in the thermocline, fronts at the surface.
    """

    representativeness: bool = True  # False: the platform errors alone (the flat errors of old)
    heave_m: float = 15.0  # rms vertical displacement of isotherms within a cell and step
    eddy_displacement_km: float = 50.0  # rms horizontal displacement of water masses by eddies
    mesoscale_km: float = 100.0  # decorrelation length of the mesoscale
    floor: float = 0.05  # degC in quadrature everywhere: what a cell shares beyond heave and fronts
    vertical_scale_m: float = 100.0  # vertical correlation of the shared error (OSSE draws)
    background_k: float = 5.0  # flag real departures from climatology beyond k expected spreads; 0: off

    def __post_init__(self) -> None:
        check_fields(self, OBS_ERROR_RULES, "obs_error")


OBS_ERROR_RULES = {
    "heave_m": Rule(0.0, 200.0, unit="m"),
    "eddy_displacement_km": Rule(0.0, 1000.0, unit="km"),
    "mesoscale_km": Rule(1.0, 5000.0, unit="km"),
    "floor": Rule(0.0, 5.0, unit="degC"),
    "vertical_scale_m": Rule(1.0, 10000.0, unit="m"),
    "background_k": Rule(0.0, 100.0, note="0 turns the background check off"),
}


@dataclass(frozen=True)
class LearnSpec:
    """Fine-tuning a trained model on real observations, with no truth (``deepda train --obs``).

    Each pass through the period keeps a fresh random ``target_share`` of the profiles out
    of the generator's input and scores the cycled analysis against them (their
    super-observations, weighted by their errors); a fixed ``validation_share`` never enters
    either and decides, after every pass, which weights are kept (early stopping after
    ``patience`` passes without improvement).
    """

    seed: int = 5
    passes: int = 6
    target_share: float = 0.2
    validation_share: float = 0.15
    learning_rate: float = 2e-5
    window: int = 8  # steps backpropagated through together
    patience: int = 2

    def __post_init__(self) -> None:
        check_fields(self, LEARN_RULES, "learn")
        require(self.target_share + self.validation_share < 0.9, "learn.target_share", self.target_share,
                "target_share + validation_share below 0.9, so most profiles stay in the input")  # fmt: skip


LEARN_RULES = {
    "seed": SEED,
    "passes": Rule(1, 1000),
    "target_share": Rule(0.01, 0.8),
    "validation_share": Rule(0.01, 0.8),
    "learning_rate": Rule(1e-8, 1e-2),
    "window": Rule(1, 1000, unit="steps"),
    "patience": Rule(1, 1000, unit="passes"),
}


__all__ = ["LEARN_RULES", "OBS_ERROR_RULES", "LearnSpec", "ObsErrorSpec"]
