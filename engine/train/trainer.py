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
steps (see :func:`~engine.train.schedule.schedule`); early stopping (``patience``) ends the
whole run. :class:`Trainer` holds a run's networks, optimisers and state; :func:`train` runs one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from engine.config import Config, TrainSpec
from engine.errors import InputError
from engine.grid import Grid
from engine.nn import discriminator_loss, generator_loss
from engine.skill import MeanSquares, mean_square
from engine.train.checkpoint import (
    build_discriminator,
    build_generator,
    code_revision,
    load_checkpoint,
    save_checkpoint,
)
from engine.train.distributed import (
    autocast,
    gather_to_all,
    mean_over_ranks,
    pick_device,
    rank_and_world_size,
    saved_draws,
    sum_over_ranks,
    unwrap,
)
from engine.train.samples import Chain, TrainingSamples, Window, stack_windows
from engine.train.schedule import (
    adopt_weights,
    adversarial_weight,
    judged_generator,
    schedule,
    set_learning_rates,
    update_average,
)
from engine.world.identity import worlds_to_text

Progress = Callable[[dict[str, float]], None]
Pairs = list[tuple[torch.Tensor, torch.Tensor]]

BASIS_BUFFERS = ("patterns", "variance", "residual_variance")  # engine.nn.reduced: fitted, not learned


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


def mse_weights(ocean: torch.Tensor, scale: torch.Tensor, units: str) -> torch.Tensor:
    """Weights of the training MSE's cells: the ocean mask for errors in network units
    (``units="network"``: each level's error relative to its standard deviation ``scale``),
    or ``ocean * scale**2`` rescaled to mean 1 over the ocean for errors in degC."""
    if units == "network":
        return ocean
    weights = ocean * scale**2
    return weights / (weights.sum() / ocean.sum())


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


def keep_if_best(state: TrainState, val_rmse: float, weights: dict[str, torch.Tensor]) -> None:
    """Keep the generator ``weights`` if ``val_rmse`` is the best so far; otherwise count a
    bad validation (early stopping)."""
    if val_rmse < state.best_val_rmse:
        state.best_val_rmse, state.bad_validations = val_rmse, 0
        state.best_generator = {name: t.detach().clone().cpu() for name, t in weights.items()}
    else:
        state.bad_validations += 1


class Trainer:
    """One training run: the generator and critic, their optimisers, the run's state
    (step, chains, log, best weights), its random generator and device, and the checkpoint
    ``out`` it is saved to.

    Built fresh from ``config`` (seeded by ``train.seed`` and the process's rank); then
    :meth:`restore` continues a saved run, or :meth:`start_from` sets the first weights,
    and :meth:`run` trains. :meth:`cycle_window` trains on one window of given data.
    """

    def __init__(
        self, config: Config, grid: Grid, samples: TrainingSamples, out: str, provenance: dict[str, Any] | None = None
    ) -> None:
        spec = config.train
        self.config, self.grid, self.samples, self.out = config, grid, samples, out
        self.rank, self.world_size = rank_and_world_size()
        self.device = pick_device()
        torch.manual_seed(spec.seed + self.rank)
        self.rng = np.random.default_rng([spec.seed, self.rank])
        gen, disc = build_generator(config.model, grid.shape), build_discriminator(config.model)
        if gen.reduced is not None:  # a resumed run restores the basis with the weights
            gen.reduced.set_basis(*samples.eof_basis(config.model.reduced_space, config.model.offset_patterns))
        self.gen: torch.nn.Module = gen.to(self.device)
        self.disc: torch.nn.Module = disc.to(self.device)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=spec.learning_rate, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=spec.discriminator_learning_rate, betas=(0.5, 0.999))
        self.state = TrainState(chains=[None] * spec.chains)
        self.ocean = samples.ocean.to(self.device)
        self.volume_weights, self.scale = samples.volume_weights.to(self.device), samples.scale.to(self.device)
        self.loss_weights = mse_weights(self.ocean, self.scale, spec.loss_units)
        self.provenance = {
            "seed": spec.seed,
            "code_revision": code_revision(),
            "data": samples.description,
            **({"training_worlds": worlds_to_text(samples.world_specs)} if samples.world_specs else {}),
            "world_size": self.world_size,
            "device": str(self.device),
            **(provenance or {}),
        }

    @cached_property
    def validation_windows(self) -> list[Window]:
        """The held-out windows every validation cycles through, on the device."""
        return [w.to(self.device) for w in self.samples.validation_windows()]

    @property
    def total_steps(self) -> int:
        return self.config.train.steps + self.config.train.finetune_steps

    def restore(self) -> None:
        """Continue the unfinished run saved in ``out``: weights, optimiser moments, random
        state, chains and log, exactly where it stopped."""
        ckpt = load_checkpoint(self.out)
        t = ckpt.training
        if "latest_generator" not in t:
            raise InputError(
                f"{self.out} holds a finished run (step {t.get('step')}); start a new run with another --out"
            )
        unwrap(self.gen).load_state_dict(t["latest_generator"])
        unwrap(self.disc).load_state_dict(t["discriminator"])
        self.opt_g.load_state_dict(t["opt_g"])
        self.opt_d.load_state_dict(t["opt_d"])
        own = self._own_draws(t)
        chains = [Chain.from_dict(c) if c else None for c in own.get("chains", [])]
        self.state = TrainState(
            t["step"], t["best_val_rmse"], t["bad_validations"], ckpt.generator.state_dict(),
            dict(t.get("average", {})), list(t["log"]), chains or [None] * self.config.train.chains,
        )  # fmt: skip

    def _own_draws(self, training: dict[str, Any]) -> dict[str, Any]:
        """Set this rank's saved random state (:func:`saved_draws`) and return it with its
        chains; a rank with none saved draws afresh from (seed, rank, step)."""
        own = saved_draws(training, self.rank)
        if own is None:
            seed, step = self.config.train.seed, int(training["step"])
            self.rng = np.random.default_rng([seed, self.rank, step])
            torch.manual_seed(seed + self.rank + 1_000_003 * step)
            return {}
        self.rng.bit_generator.state = own["rng"]["numpy"]
        torch.set_rng_state(own["rng"]["torch"])
        return own

    def start_from(self, init: dict[str, torch.Tensor]) -> None:
        """Start from the generator weights ``init`` instead of random ones: validated first,
        and kept unless training beats them."""
        own = unwrap(self.gen).state_dict()
        start_weights = adopt_weights(own, init)
        # the reduced space's basis stays this run's: fitted to its worlds, in its normaliser's units
        start_weights |= {k: v.clone() for k, v in own.items() if k.rpartition(".")[2] in BASIS_BUFFERS}
        unwrap(self.gen).load_state_dict(start_weights)
        keep_if_best(self.state, self.validate(self.gen), start_weights)

    def run(self, progress: Progress | None = None) -> TrainState:
        """Train until the last window or early stopping, saving every ``checkpoint_every``
        windows, on Ctrl-C (then re-raised) and at the end (the best generator only).
        ``progress`` receives each window's row of the log."""
        spec, state = self.config.train, self.state
        if self.world_size > 1:
            self.gen, self.disc = DistributedDataParallel(self.gen), DistributedDataParallel(self.disc)
        averaged = build_generator(self.config.model, self.grid.shape).to(self.device) if spec.ema_decay > 0 else None
        start = time.perf_counter()
        try:
            while state.step < self.total_steps and state.bad_validations < spec.patience:
                row = mean_over_ranks(self.train_window())
                row.update(step=state.step, seconds=time.perf_counter() - start)
                if spec.ema_decay > 0:
                    update_average(state.average, self.gen, spec.ema_decay)
                if state.step % spec.validate_every == 0 or state.step in (spec.steps, self.total_steps):
                    judged = judged_generator(self.gen, averaged, state.average)
                    row["val_rmse"] = self.validate(judged)
                    keep_if_best(state, row["val_rmse"], unwrap(judged).state_dict())
                state.log.append(row)
                if progress:
                    progress(row)
                if state.step % spec.checkpoint_every == 0:
                    self.save(complete=False)
        except KeyboardInterrupt:
            self.save(complete=False, gather=False)  # the other ranks may be gone already
            raise
        self.save(complete=True)
        return state

    def train_window(self) -> dict[str, float]:
        """Train on the next window of ``batch_size`` chains and advance them; the window's
        mean losses. Begins the fine-tune phase at its first window."""
        spec, state = self.config.train, self.state
        if state.step == spec.steps:
            start_finetune(self.gen, self.opt_g, self.opt_d, state)
        picked = next_chains(state.chains, self.samples, spec, self.rng)
        window = stack_windows([self.samples.chain_window(c, spec.window, self.rng) for _, c in picked])
        rates = schedule(state.step, spec)
        set_learning_rates(self.opt_g, self.opt_d, rates)
        row, last = self.cycle_window(
            window.to(self.device), adversarial_weight(spec, state.step), rates.backprop_steps
        )
        for i, (k, chain) in enumerate(picked):
            state.chains[k] = chain.advanced(spec.window, last[i : i + 1])
        state.step += 1
        return row

    def cycle_window(
        self, window: Window, adversarial: float, backprop_steps: int
    ) -> tuple[dict[str, float], torch.Tensor]:
        """Train on one window from its first background: backpropagation through the
        analysis cycle, truncated every ``backprop_steps``, the MSE weighted by
        :func:`mse_weights`. Returns the mean losses and the last analysis.

        The critic (discriminator) is trained only when the configured adversarial weight
        is above zero; otherwise ``g_adv`` and ``d_loss`` are NaN (not computed).
        """
        spec, ocean = self.config.train, self.ocean
        critic = self.disc if spec.adversarial_weight > 0 else None
        sums = {"g_mse": 0.0, "g_adv": 0.0, "d_loss": 0.0}
        background = window.background
        for chunk in _chunks(window.length, backprop_steps):
            bg = background.detach()
            total, pairs = 0.0, []
            if critic is not None:
                unwrap(critic).requires_grad_(False)  # the generator step must not train the critic
            for t in chunk:
                with autocast(self.device):
                    analysis = analyse(self.gen, bg, window, t, ocean)
                    fake_logits = None if critic is None else unwrap(critic)(analysis - bg, ocean).float()
                loss, mse, adv = generator_loss(
                    analysis.float(), window.truth[t], fake_logits, self.loss_weights, spec.mse_weight, adversarial
                )
                total = total + loss
                pairs.append((window.truth[t] - bg.detach(), analysis.detach().float() - bg.detach()))
                sums["g_mse"] += float(mse.detach())
                sums["g_adv"] += float(adv.detach())
                bg = analysis.float()
            self.opt_g.zero_grad(set_to_none=True)
            (total / len(chunk)).backward()
            self.opt_g.step()
            if critic is not None:
                sums["d_loss"] += self.critic_step(pairs) * len(chunk)
            background = bg.detach()
        if critic is None:
            sums["g_adv"] = sums["d_loss"] = math.nan
        return {k: v / window.length for k, v in sums.items()}, background

    def critic_step(self, pairs: Pairs) -> float:
        """One discriminator update on (true tendency, analysis tendency) pairs; its loss."""
        disc = self.disc
        unwrap(disc).requires_grad_(True)
        real = torch.cat([p[0] for p in pairs])
        fake = torch.cat([p[1] for p in pairs])
        with autocast(self.device):
            d_loss = discriminator_loss(
                disc(real, self.ocean).float(), disc(fake, self.ocean).float(), self.config.train.discriminator_weight
            )
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        return float(d_loss.detach())

    @torch.no_grad()
    def validate(self, gen: torch.nn.Module) -> float:
        """Volume-weighted RMSE (degC) of ``gen``'s analyses cycled from climatology through
        the validation windows: the root of the mean over their steps, after the first third
        (spin-up), of each step's mean square error. Under torchrun the windows are shared
        out between the ranks and the sums added up, so every rank gets the same value."""
        net = unwrap(gen)
        net.eval()
        squares = MeanSquares()
        for window in self.validation_windows[self.rank :: self.world_size]:
            bg = torch.zeros_like(window.truth[0])
            for t in range(window.length):
                with autocast(self.device):
                    bg = analyse(net, bg, window, t, self.ocean).float()
                if t >= window.length // 3:
                    error = (bg - window.truth[t]) * self.scale
                    squares.add_sums(float(mean_square(error, self.volume_weights)), 1.0)
        net.train()
        squares.total, squares.weight = sum_over_ranks([float(squares.total), float(squares.weight)])
        return float(squares.rms())

    def save(self, complete: bool, gather: bool = True) -> None:
        """Write the checkpoint (rank 0 only): the best generator, and unless ``complete``
        everything :meth:`restore` needs to go on exactly, every rank's draws with
        ``gather`` (a collective: every rank calls it)."""
        state = self.state
        draws = {"rng": {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state()},
                 "chains": [c.to_dict() if c else {} for c in state.chains]}  # fmt: skip
        ranks = gather_to_all(draws) if gather and not complete and self.world_size > 1 else []
        if self.rank != 0:
            return
        generator = build_generator(self.config.model, self.grid.shape)
        generator.load_state_dict(state.best_generator or unwrap(self.gen).state_dict())
        training: dict[str, Any] = {"step": state.step, "best_val_rmse": state.best_val_rmse, "log": state.log}
        if not complete:
            training.update(
                latest_generator=unwrap(self.gen).state_dict(), discriminator=unwrap(self.disc).state_dict(),
                opt_g=self.opt_g.state_dict(), opt_d=self.opt_d.state_dict(), bad_validations=state.bad_validations,
                average=state.average, **draws, **({"ranks": ranks} if ranks else {}),
            )  # fmt: skip
        provenance = {
            **self.provenance, "validation_rmse_degC": state.best_val_rmse, "steps": state.step, "complete": complete
        }  # fmt: skip
        save_checkpoint(
            self.out, generator, self.config, self.samples.normalizer, self.grid, provenance, training,
            getattr(self.samples, "climatology", None),
        )  # fmt: skip


def train(
    config: Config,
    grid: Grid,
    samples: TrainingSamples,
    out: str,
    resume: bool = False,
    provenance: dict[str, Any] | None = None,
    progress: Progress | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> TrainState:
    """Train (or resume training) and write the checkpoint to ``out``.

    Checkpoints go to ``out`` every ``checkpoint_every`` steps and on Ctrl-C (then the
    KeyboardInterrupt is re-raised); the finished file keeps the best generator only.
    ``progress`` receives each step's losses (and ``val_rmse`` when validated).
    ``init`` (a generator state dict, ignored on resume) replaces the random first weights;
    it is validated first and kept unless training beats it.
    """
    trainer = Trainer(config, grid, samples, out, provenance)
    if resume:
        trainer.restore()
    elif init is not None:
        trainer.start_from(init)
    return trainer.run(progress)


def with_steps(config: Config, steps: int | None) -> Config:
    """``config`` with ``train.steps`` replaced when ``steps`` is given."""
    return config if steps is None else replace(config, train=replace(config.train, steps=steps))
