"""Training of the DeepDA generator with recurrent cycling (DESIGN sections 4 and 7): the
paper's GAN (``adversarial_weight`` > 0) or, by default on coarse and medium, the MSE alone.

Training keeps ``train.chains`` long-running analysis cycles (:class:`~engine.train.samples.Chain`)
going through the control run's training years. Each training window picks
``batch_size`` chains and cycles ``window`` more steps of them, side by side as one batch,
with OSSE observations from each chain's network era:
each analysis is the next step's background, with backpropagation truncated every
``backprop_steps``, and the last analysis is where the chain goes on next time. Chains
restart from a cold start (climatology) after ``chain_years`` on average, so the generator
learns the warmed-up cycle of a reanalysis as well as its first steps. Validation cycles
over held-out control years; the best generator (or, with ``ema_decay``, the best moving
average of its weights) is kept.

After ``train.steps`` windows a fine-tune phase of ``train.finetune_steps`` windows goes on
from the best generator with backpropagation through ``finetune_backprop_steps`` cycle
steps (see :func:`schedule`); early stopping (``patience``) ends the whole run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from engine.config import Config, TrainSpec
from engine.errors import InputError
from engine.grid import Grid
from engine.nn import discriminator_loss, generator_loss
from engine.train.checkpoint import (
    build_discriminator,
    build_generator,
    code_revision,
    load_checkpoint,
    save_checkpoint,
)
from engine.train.distributed import autocast, pick_device, rank_and_world_size, unwrap
from engine.train.samples import Chain, TrainingSamples, Window, stack_windows


@dataclass
class TrainState:
    """Everything a resumed run needs besides the networks and optimisers."""

    step: int = 0
    best_val_rmse: float = math.inf
    bad_validations: int = 0
    best_generator: dict[str, torch.Tensor] = field(default_factory=dict)
    average: dict[str, torch.Tensor] = field(default_factory=dict)  # the weights' moving average (ema_decay > 0)
    log: list[dict[str, float]] = field(default_factory=list)
    chains: list[Chain | None] = field(default_factory=list)


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


def analyse(
    gen: torch.nn.Module, background: torch.Tensor, window: Window, t: int, ocean: torch.Tensor
) -> torch.Tensor:
    """The generator's analysis of step ``t`` of ``window`` from ``background``."""
    return gen(background, window.obs[t], window.obs_mask[t], ocean, window.obs_error[t])


def cycle_window(
    gen: torch.nn.Module, disc: torch.nn.Module, window: Window, ocean: torch.Tensor,
    opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, config: Config, device: torch.device,
    adversarial_weight: float, backprop_steps: int, loss_weights: torch.Tensor | None = None,
) -> tuple[dict[str, float], torch.Tensor]:  # fmt: skip
    """Train on one window from its first background: backpropagation through the analysis
    cycle, truncated every ``backprop_steps``. Returns the mean losses and the last analysis.

    ``loss_weights`` (broadcastable to a field, zero on land) weigh the MSE's cells; the
    ocean mask (every sea cell alike, in network units) when None.

    The critic (discriminator) is trained only when the configured adversarial weight is
    above zero; otherwise ``g_adv`` and ``d_loss`` are NaN (not computed).
    """
    spec = config.train
    critic = disc if spec.adversarial_weight > 0 else None
    sums = {"g_mse": 0.0, "g_adv": 0.0, "d_loss": 0.0}
    weights = ocean if loss_weights is None else loss_weights
    background = window.background
    for chunk in _chunks(window.length, backprop_steps):
        bg = background.detach()
        total, pairs = 0.0, []
        if critic is not None:
            unwrap(critic).requires_grad_(False)  # the generator step must not train the critic
        for t in chunk:
            with autocast(device):
                analysis = analyse(gen, bg, window, t, ocean)
                fake_logits = None if critic is None else unwrap(critic)(analysis - bg, ocean).float()
            loss, mse, adv = generator_loss(
                analysis.float(), window.truth[t], fake_logits, weights, spec.mse_weight, adversarial_weight
            )
            total = total + loss
            pairs.append((window.truth[t] - bg.detach(), analysis.detach().float() - bg.detach()))
            sums["g_mse"] += float(mse.detach())
            sums["g_adv"] += float(adv.detach())
            bg = analysis.float()
        opt_g.zero_grad(set_to_none=True)
        (total / len(chunk)).backward()
        opt_g.step()
        if critic is not None:
            sums["d_loss"] += critic_step(critic, pairs, ocean, opt_d, spec, device) * len(chunk)
        background = bg.detach()
    if critic is None:
        sums["g_adv"] = sums["d_loss"] = math.nan
    return {k: v / window.length for k, v in sums.items()}, background


def mse_weights(ocean: torch.Tensor, scale: torch.Tensor, units: str) -> torch.Tensor:
    """Weights of the training MSE's cells: the ocean mask for errors in network units
    (``units="network"``: each level's error relative to its standard deviation ``scale``),
    or ``ocean * scale**2`` rescaled to mean 1 over the ocean for errors in degC."""
    if units == "network":
        return ocean
    weights = ocean * scale**2
    return weights / (weights.sum() / ocean.sum())


def critic_step(
    disc: torch.nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]], ocean: torch.Tensor,
    opt_d: torch.optim.Optimizer, spec: TrainSpec, device: torch.device,
) -> float:  # fmt: skip
    """One discriminator update on (true tendency, analysis tendency) pairs; its loss."""
    unwrap(disc).requires_grad_(True)
    real = torch.cat([p[0] for p in pairs])
    fake = torch.cat([p[1] for p in pairs])
    with autocast(device):
        d_loss = discriminator_loss(disc(real, ocean).float(), disc(fake, ocean).float(), spec.discriminator_weight)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    return float(d_loss.detach())


def next_chains(
    chains: list[Chain | None], samples: TrainingSamples, spec: TrainSpec, rng: np.random.Generator
) -> list[tuple[int, Chain]]:
    """Pick ``spec.batch_size`` different chains at random, each replaced by a new one if it
    is unset, at the end of the training years, or restarting (probability
    ``window / (chain_years * steps_per_year)``).  Returns (index, chain) pairs."""
    if spec.batch_size == 1:  # one draw, as before batches existed: seeded runs stay the same
        picked = [int(rng.integers(len(chains)))]
    else:
        picked = [int(k) for k in rng.choice(len(chains), spec.batch_size, replace=False)]
    out = []
    for k in picked:
        chain = chains[k]
        restart = rng.random() < spec.window / (spec.chain_years * samples.steps_per_year)
        if chain is None or restart or chain.next_step + spec.window > samples.n_train:
            chain = samples.new_chain(rng)
        out.append((k, chain))
    return out


@torch.no_grad()
def validate(
    gen: torch.nn.Module, windows: list[Window], ocean: torch.Tensor, weights: torch.Tensor, scale: torch.Tensor,
    device: torch.device,
) -> float:  # fmt: skip
    """Volume-weighted RMSE (degC) of cycled analyses, skipping the first third (spin-up)."""
    net = unwrap(gen)
    net.eval()
    total, count = 0.0, 0
    for window in windows:
        bg = torch.zeros_like(window.truth[0])
        for t in range(window.length):
            with autocast(device):
                bg = analyse(net, bg, window, t, ocean).float()
            if t >= window.length // 3:
                total += float((((bg - window.truth[t]) * scale) ** 2 * weights).sum() / weights.sum())
                count += 1
    net.train()
    return math.sqrt(total / max(count, 1))


class Schedule(NamedTuple):
    """What one training window uses: learning rates and the truncation of backpropagation."""

    generator_learning_rate: float
    critic_learning_rate: float
    backprop_steps: int


def schedule(step: int, spec: TrainSpec) -> Schedule:
    """The learning rates and backpropagation length of window ``step`` (0-based).

    The first ``spec.steps`` windows are the one-step phase, the next ``spec.finetune_steps``
    the fine-tune phase; in each the rates decay by a cosine from their starting values to
    ``spec.learning_rate_floor`` of them at the phase's end.  A pure function of the step,
    so a resumed run follows the same schedule exactly.  With batch size 1 the gradient
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


def _set_learning_rates(opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, rates: Schedule) -> None:
    for group in opt_g.param_groups:
        group["lr"] = rates.generator_learning_rate
    for group in opt_d.param_groups:
        group["lr"] = rates.critic_learning_rate


def start_finetune(
    gen: torch.nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, state: TrainState
) -> None:
    """Begin the fine-tune phase from the best generator so far, with fresh optimiser
    moments (longer backpropagation gives gradients of another size) and moving average,
    and a fresh patience count.  Idempotent, so a run resumed at the boundary matches."""
    if state.best_generator:
        unwrap(gen).load_state_dict(state.best_generator)
    opt_g.state.clear()
    opt_d.state.clear()
    state.average.clear()
    state.bad_validations = 0


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state()}


def _save(path, gen, disc, opt_g, opt_d, config, samples, grid, state, rng, provenance, complete) -> None:
    best = state.best_generator or unwrap(gen).state_dict()
    generator = build_generator(config.model, grid.shape)
    generator.load_state_dict(best)
    training: dict[str, Any] = {"step": state.step, "best_val_rmse": state.best_val_rmse, "log": state.log}
    if not complete:  # enough to resume exactly where we were
        training.update(
            latest_generator=unwrap(gen).state_dict(), discriminator=unwrap(disc).state_dict(),
            opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(), bad_validations=state.bad_validations,
            rng=_rng_state(rng), chains=[c.to_dict() if c else {} for c in state.chains], average=state.average,
        )  # fmt: skip
    provenance = {**provenance, "validation_rmse_degC": state.best_val_rmse, "steps": state.step, "complete": complete}
    save_checkpoint(path, generator, config, samples.normalizer, grid, provenance, training)


def _restore(path, gen, disc, opt_g, opt_d, rng) -> TrainState:
    ckpt = load_checkpoint(path)
    t = ckpt.training
    if "latest_generator" not in t:
        raise InputError(f"{path} holds a finished run (step {t.get('step')}); start a new run with another --out")
    unwrap(gen).load_state_dict(t["latest_generator"])
    unwrap(disc).load_state_dict(t["discriminator"])
    opt_g.load_state_dict(t["opt_g"])
    opt_d.load_state_dict(t["opt_d"])
    rng.bit_generator.state = t["rng"]["numpy"]
    torch.set_rng_state(t["rng"]["torch"])
    best = ckpt.generator.state_dict()
    chains = [Chain.from_dict(c) if c else None for c in t.get("chains", [])]
    average = dict(t.get("average", {}))
    return TrainState(t["step"], t["best_val_rmse"], t["bad_validations"], best, average, list(t["log"]), chains)


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


def keep_if_best(state: TrainState, val_rmse: float, weights: dict[str, torch.Tensor]) -> None:
    """Keep the generator ``weights`` if ``val_rmse`` is the best so far; otherwise count a
    bad validation (early stopping)."""
    if val_rmse < state.best_val_rmse:
        state.best_val_rmse, state.bad_validations = val_rmse, 0
        state.best_generator = {name: t.detach().clone().cpu() for name, t in weights.items()}
    else:
        state.bad_validations += 1


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


def train(
    config: Config,
    grid: Grid,
    samples: TrainingSamples,
    out: str,
    resume: bool = False,
    provenance: dict[str, Any] | None = None,
    progress: Callable[[dict[str, float]], None] | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> TrainState:
    """Train (or resume training) and write the checkpoint to ``out``.

    Checkpoints go to ``out`` every ``checkpoint_every`` steps and on Ctrl-C (then the
    KeyboardInterrupt is re-raised); the finished file keeps the best generator only.
    ``progress`` receives each step's losses (and ``val_rmse`` when validated).
    ``init`` (a generator state dict, ignored on resume) replaces the random first weights;
    it is validated first and kept unless training beats it.
    """
    spec = config.train
    rank, world_size = rank_and_world_size()
    device = pick_device()
    torch.manual_seed(spec.seed + rank)
    rng = np.random.default_rng([spec.seed, rank])
    gen, disc = build_generator(config.model, grid.shape), build_discriminator(config.model)
    if gen.reduced is not None:  # a resumed run restores the basis with the weights
        gen.reduced.set_basis(*samples.eof_basis(config.model.reduced_space, config.model.offset_patterns))
    gen, disc = gen.to(device), disc.to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=spec.learning_rate, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=spec.discriminator_learning_rate, betas=(0.5, 0.999))
    state = _restore(out, gen, disc, opt_g, opt_d, rng) if resume else TrainState()
    state.chains = state.chains or [None] * spec.chains
    if world_size > 1:
        gen, disc = DistributedDataParallel(gen), DistributedDataParallel(disc)
    ocean = samples.ocean.to(device)
    weights, scale = samples.volume_weights.to(device), samples.scale.to(device)
    loss_weights = mse_weights(ocean, scale, spec.loss_units)
    validation = [w.to(device) for w in samples.validation_windows()]
    provenance = {
        "seed": spec.seed,
        "code_revision": code_revision(),
        "data": samples.description,
        "world_size": world_size,
        "device": str(device),
        **(provenance or {}),
    }
    if init is not None and not resume:
        start_weights = adopt_weights(unwrap(gen).state_dict(), init)
        unwrap(gen).load_state_dict(start_weights)
        keep_if_best(state, validate(gen, validation, ocean, weights, scale, device), start_weights)
    averaged = build_generator(config.model, grid.shape).to(device) if spec.ema_decay > 0 else None
    save_args = (gen, disc, opt_g, opt_d, config, samples, grid)
    start, total_steps = time.perf_counter(), spec.steps + spec.finetune_steps
    try:
        while state.step < total_steps and state.bad_validations < spec.patience:
            if state.step == spec.steps:
                start_finetune(gen, opt_g, opt_d, state)
            picked = next_chains(state.chains, samples, spec, rng)
            window = stack_windows([samples.chain_window(c, spec.window, rng) for _, c in picked]).to(device)
            rates = schedule(state.step, spec)
            _set_learning_rates(opt_g, opt_d, rates)
            adversarial = adversarial_weight(spec, state.step)
            row, last = cycle_window(
                gen, disc, window, ocean, opt_g, opt_d, config, device, adversarial, rates.backprop_steps, loss_weights
            )
            for i, (k, chain) in enumerate(picked):
                state.chains[k] = chain.advanced(spec.window, last[i : i + 1])
            state.step += 1
            row.update(step=state.step, seconds=time.perf_counter() - start)
            if spec.ema_decay > 0:
                update_average(state.average, gen, spec.ema_decay)
            if state.step % spec.validate_every == 0 or state.step in (spec.steps, total_steps):
                judged = judged_generator(gen, averaged, state.average)
                row["val_rmse"] = validate(judged, validation, ocean, weights, scale, device)
                keep_if_best(state, row["val_rmse"], unwrap(judged).state_dict())
            state.log.append(row)
            if progress:
                progress(row)
            if rank == 0 and state.step % spec.checkpoint_every == 0:
                _save(out, *save_args, state, rng, provenance, complete=False)
    except KeyboardInterrupt:
        if rank == 0:
            _save(out, *save_args, state, rng, provenance, complete=False)
        raise
    if rank == 0:
        _save(out, *save_args, state, rng, provenance, complete=True)
    return state


def with_steps(config: Config, steps: int | None) -> Config:
    """``config`` with ``train.steps`` replaced when ``steps`` is given."""
    return config if steps is None else replace(config, train=replace(config.train, steps=steps))
