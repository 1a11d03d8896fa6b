"""What changes over a training run besides the weights the optimiser moves: the schedule of
learning rates and backpropagation lengths, the adversarial ramp, the moving average of the
weights, and the first weights taken from another run.

Pure functions of the step (or of the weights given), so a resumed run follows the same
course exactly.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from engine.config import TrainSpec
from engine.train.distributed import unwrap


class Schedule(NamedTuple):
    """What one training window uses: learning rates and the truncation of backpropagation."""

    generator_learning_rate: float
    critic_learning_rate: float
    backprop_steps: int


def schedule(step: int, spec: TrainSpec) -> Schedule:
    """The learning rates and backpropagation length of window ``step`` (0-based).

    The first ``spec.steps`` windows are the one-step phase, the next ``spec.finetune_steps``
    the fine-tune phase; in each the rates decay by a cosine from their starting values to
    ``spec.learning_rate_floor`` of them at the phase's end.  With batch size 1 the gradient
    noise sets an error floor at a constant rate; decaying the rate lets the last part of a
    short CPU budget settle into it.
    """
    if step >= spec.steps:
        start, length, rate, backprop = (
            spec.steps,
            spec.finetune_steps,
            spec.finetune_learning_rate,
            spec.finetune_backprop_steps,
        )
    else:
        start, length, rate, backprop = 0, spec.steps, spec.learning_rate, spec.backprop_steps
    progress = min((step - start) / max(length, 1), 1.0)
    floor = spec.learning_rate_floor
    factor = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return Schedule(rate * factor, spec.discriminator_learning_rate * factor, backprop)


def set_learning_rates(opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, rates: Schedule) -> None:
    """Give the generator's and the critic's optimisers the rates of ``rates``."""
    for group in opt_g.param_groups:
        group["lr"] = rates.generator_learning_rate
    for group in opt_d.param_groups:
        group["lr"] = rates.critic_learning_rate


def adversarial_weight(spec: TrainSpec, step: int) -> float:
    """The adversarial loss weight at ``step``: ramped up linearly over the first
    ``adversarial_warmup`` share of the steps."""
    return spec.adversarial_weight * min(1.0, step / max(spec.adversarial_warmup * spec.steps, 1.0))


@torch.no_grad()
def update_average(average: dict[str, torch.Tensor], gen: torch.nn.Module, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * weights`` (starting from the weights).

    With batch size 1 the weights wander around the optimum by the gradient noise; their
    moving average sits closer to it than any one of them.
    """
    for name, value in unwrap(gen).state_dict().items():
        if name not in average or not value.is_floating_point():
            average[name] = value.detach().clone()
        else:
            average[name].mul_(decay).add_(value.detach(), alpha=1.0 - decay)


def judged_generator(
    gen: torch.nn.Module, averaged: torch.nn.Module | None, average: dict[str, torch.Tensor]
) -> torch.nn.Module:
    """The generator that validation judges and keeps: the training weights, or with a
    moving average, ``averaged`` holding it."""
    if averaged is None:
        return gen
    averaged.load_state_dict(average)
    return averaged


def adopt_weights(own: dict[str, torch.Tensor], init: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``init``'s weights in the shapes of ``own``: a tensor of the same shape is taken
    whole; one that grew along its first dimension (the reduced-space layer's per-pattern
    entries, after offset patterns were added) keeps ``init``'s leading entries and
    ``own``'s new ones; anything else stays ``own``'s."""
    out = {}
    for name, mine in own.items():
        theirs = init.get(name)
        if theirs is not None and theirs.shape == mine.shape:
            out[name] = theirs.clone()
        elif theirs is not None and theirs.shape[1:] == mine.shape[1:] and 0 < len(theirs) < len(mine):
            out[name] = torch.cat([theirs, mine[len(theirs) :]])
        else:
            out[name] = mine.clone()
    return out
