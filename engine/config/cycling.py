"""The [assimilate] section of the configuration: how an assimilation cycles."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config.rules import SEED, Rule, check_fields, require


@dataclass(frozen=True)
class AssimilateSpec:
    """Cycling an assimilation (DESIGN section 8)."""

    seed: int = 2  # an ensemble's first backgrounds and its members' perturbed observations
    running_mean_steps: float = 0.0  # cycle around a running mean of the analyses (e-folding); 0: the climatology
    # The climatology a DeepDA model trained on a model's control run cycles around: "grid",
    # the observed one its anomalies are taken against (right for real observations and
    # other models' runs), or "model", the run's own it kept (right for that model's runs).
    climatology: str = "grid"

    def __post_init__(self) -> None:
        check_fields(self, ASSIMILATE_RULES, "assimilate")
        steps = self.running_mean_steps
        require(steps == 0 or steps >= 1, "assimilate.running_mean_steps", steps,
                "0 (cycle around the climatology) or at least 1 step, e.g. 73 (a year of pentads)")  # fmt: skip


ASSIMILATE_RULES = {
    "seed": SEED,
    "running_mean_steps": Rule(0.0, 1e6, unit="steps"),
    "climatology": Rule(choices=("grid", "model")),
}
