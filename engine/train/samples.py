"""Training and validation samples: control-run truth windows with OSSE observations.

Composition only (world -> observe -> grid -> normalise): a window is a run of
consecutive control-run steps, observed by the network of one randomly chosen real year
(1981-2020 unless ``train.network_years`` narrows it), so the generator sees every era of
the observing system while the truth it learns from is the trend-free control run (DESIGN
sections 4 and 7).

Training windows belong to :class:`Chain` s: long-running analysis cycles through the
training years, each window continuing where its chain stopped, from the analysis it left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import torch

from engine.config import NETWORK_YEARS, Config, WorldSpec
from engine.grid import Grid, step_day_of_year
from engine.observe.gridding import ObsStep, grid_step
from engine.observe.network import ObservingNetwork
from engine.train.eof import extend_basis, fit_eofs, project_on_basis
from engine.train.normalize import Normalizer, fit_normalizer
from engine.world.patterns import large_scale_offset

VALIDATION_ERAS = (1990, 2010)  # one pre-Argo and one Argo-era network for validation


@dataclass
class Window:
    """Consecutive steps in network units, each tensor (steps, batch, 1, depth, lat, lon),
    and the first background (batch, 1, depth, lat, lon): a chain's last analysis, or at a
    cold start zero (the climatology) or the large-scale offset the window carries.  One
    chain's window has batch 1; :func:`stack_windows` puts several side by side."""

    truth: torch.Tensor
    obs: torch.Tensor
    obs_mask: torch.Tensor
    obs_error: torch.Tensor
    background: torch.Tensor

    @property
    def length(self) -> int:
        return self.truth.shape[0]

    def to(self, device: torch.device | str) -> Window:
        return Window(*(t.to(device) for t in (self.truth, self.obs, self.obs_mask, self.obs_error, self.background)))


def stack_windows(windows: list[Window]) -> Window:
    """Windows side by side as one batch: steps (steps, batch, 1, depth, lat, lon) and first
    backgrounds (batch, 1, depth, lat, lon), in the order given."""
    names = ("truth", "obs", "obs_mask", "obs_error")
    steps = (torch.cat([getattr(w, name) for w in windows], dim=1) for name in names)
    return Window(*steps, torch.cat([w.background for w in windows]))


@dataclass(frozen=True)
class Chain:
    """A long-running analysis cycle through the training years.

    Each training window continues where its chain stopped, from the analysis the chain
    left: the network learns on the backgrounds of a warmed-up cycle, as in a
    reanalysis, whose errors are much smaller (the deep ocean's by years of memory) than
    those of the cold start, where the right weight for an observation is larger.  A chain
    keeps its network era (advancing with its years) and its large-scale offset.
    """

    start: int  # control step where the chain began
    next_step: int  # the next step it analyses
    first_year: int  # network year of its first step
    offset: torch.Tensor  # (depth, lat, lon) degC added to the truth; zeros for none
    background: torch.Tensor  # (1, 1, depth, lat, lon) its last analysis, network units
    world: int = 0  # which of the training worlds it cycles through (TrainingSamples.worlds)

    def advanced(self, steps: int, background: torch.Tensor) -> Chain:
        """The chain after ``steps`` more analyses ending in ``background``."""
        return replace(self, next_step=self.next_step + steps, background=background.detach().cpu())

    def to_dict(self) -> dict[str, Any]:
        """Plain tensors and ints (checkpoints load with weights_only)."""
        return {
            "start": self.start, "next_step": self.next_step, "first_year": self.first_year,
            "offset": self.offset, "background": self.background, "world": self.world,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Chain:
        return cls(**values)


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype="f4"))[:, None, None]


class TrainingSamples:
    """Draws training windows from the first control years; validation from the last ones.

    With several worlds (``others``), each chain cycles through one world's control run,
    picked evenly at random; each world's anomalies are against its own climatology (the
    synthetic worlds share the grid's), and the normaliser, the EOF basis and the tendency
    variances are fitted to the pooled anomalies; validation takes every world's windows.

    Parameters
    ----------
    config : Config
    grid : Grid
    world : ModelWorld
        A control run of ``config.train.control_years`` years.
    network : ObservingNetwork
    others : sequence of ModelWorld
        Further control runs of the same length and step, trained on beside ``world``.
    validated : int, optional
        How many of the worlds, ``world`` first, the validation windows come from (default all).
    """

    def __init__(
        self,
        config: Config,
        grid: Grid,
        world,
        network: ObservingNetwork,
        others: Sequence = (),
        validated: int | None = None,
    ) -> None:
        self.config, self.grid, self.world, self.network = config, grid, world, network
        self.worlds = [world, *others]
        self.validated = len(self.worlds) if validated is None else validated  # the first ones are validated on
        if any(w.steps_per_year != world.steps_per_year or w.n_steps < world.n_steps for w in others):
            raise ValueError("every training world needs the first one's steps per year and at least its length")
        self.steps_per_year = world.steps_per_year
        spec = config.train
        self.n_train = (spec.control_years - spec.validation_years) * self.steps_per_year
        if self.n_train < spec.window * 3 or spec.validation_years < 1:
            raise ValueError("control_years must leave training years beyond validation_years")
        self.normalizer = self._fit_normalizer()
        self.ocean = torch.from_numpy(grid.ocean.astype("f4"))[None, None]
        volume = grid.volume / grid.volume.sum()
        self.volume_weights = torch.from_numpy(volume.astype("f4"))[None, None]
        self.scale = torch.from_numpy(self.normalizer.scale)[None, None, :, None, None]
        first, last = spec.network_years
        self.description = (
            f"control run, {spec.control_years} years (last {spec.validation_years} held out), world seed "
            f"{config.world.seed}; OSSE network seed {config.network.seed}, chains starting in network years "
            f"{first}-{last}, platforms {','.join(config.network.active)}"
        )
        if others:
            joined = ", ".join(
                f"world {w.spec.name} (seed {w.spec.seed})" if hasattr(w, "spec") else w.name for w in self.worlds
            )
            if self.validated < len(self.worlds):
                joined += f", validated on the first {self.validated}"
            self.description += f"; chains drawn evenly from the control runs of {joined}"

    @property
    def world_specs(self) -> list:
        """The specs of the synthetic training worlds, the first one first (a model's control
        run has none: the checkpoint names it from its provenance's ``control``)."""
        return [w.spec for w in self.worlds if hasattr(w, "spec")]

    @classmethod
    def from_config(cls, config: Config, grid: Grid, others: Sequence[WorldSpec] = ()) -> TrainingSamples:
        """Samples from a fresh control run of ``config.train.control_years`` years of
        ``config.world`` and, beside it, of each of ``others`` and of the
        ``[train] drawn_worlds`` drawn around it (:func:`engine.world.draws.draw_worlds`),
        validated on all but the drawn ones beyond ``[train] validation_drawn``."""
        from engine.world.draws import draw_worlds
        from engine.world.synthetic import ModelWorld

        spec = config.train
        n_steps = spec.control_years * config.world.steps_per_year
        world, *rest = (ModelWorld(grid, s, run="control", n_steps=n_steps) for s in (config.world, *others))
        drawn: list[ModelWorld] = []
        for draw in draw_worlds(config.world, 4 * spec.drawn_worlds, spec.seed):
            if len(drawn) == spec.drawn_worlds:
                break
            try:  # a few draws cannot be built (e.g. an ENSO weaker than the other modes' Nino-3.4 share)
                drawn.append(ModelWorld(grid, draw, run="control", n_steps=n_steps))
            except ValueError:
                continue
        if len(drawn) < spec.drawn_worlds:
            raise ValueError(f"only {len(drawn)} of {spec.drawn_worlds} drawn worlds could be built")
        network = ObservingNetwork(grid, config.network, obs_error=config.obs_error)
        validated = 1 + len(others) + min(spec.validation_drawn, len(drawn))
        return cls(config, grid, world, network, [*rest, *drawn], validated)

    def _fit_normalizer(self) -> Normalizer:
        spy = self.steps_per_year
        starts = np.linspace(0, self.n_train - spy, 4).astype(int)
        anomalies = [w.anomaly(int(s), int(s) + spy) for w in self.worlds for s in starts]
        return fit_normalizer(np.concatenate(anomalies), self.grid.ocean)

    def eof_basis(
        self, n: int, offsets: int = 0, memory_mb: float = 2048.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``n`` leading volume-weighted EOFs of the training years' anomalies, then
        ``offsets`` EOFs of the large-scale offsets beyond them, in network units, as
        float32 tensors (patterns, variance, residual variance) for
        :meth:`engine.nn.reduced.ReducedSpaceAnalysis.set_basis`.

        Every step of the training years is used when their float64 copy fits in
        ``memory_mb``; otherwise evenly spaced steps that do.  The offsets are up to 1000
        seeded draws of :func:`~engine.world.patterns.large_scale_offset` (as many as fit).
        """
        cells = int(np.prod(self.grid.shape))
        total = self.n_train * len(self.worlds)  # the worlds' anomalies pooled, each world's steps alike
        stride = max(1, int(np.ceil(total * cells * 8 / (memory_mb * 2**20))))
        spy = self.steps_per_year
        steps, years = np.arange(0, self.n_train, stride), []
        for world in self.worlds:
            for start in range(0, self.n_train, spy):  # a year at a time: the full set may not fit
                stop = min(start + spy, self.n_train)
                picked = steps[(steps >= start) & (steps < stop)] - start
                years.append(world.anomaly(start, stop)[picked])
        basis = fit_eofs(self.normalizer.encode(np.concatenate(years)), self.grid.volume, n)
        if offsets > 0:
            spec, rng = self.config.train, np.random.default_rng([self.config.train.seed, 11])
            count = max(4 * offsets, min(1000, int(memory_mb * 2**20 / (cells * 8))))
            draws = [
                large_scale_offset(self.grid, rng, spec.offset_surface_std, spec.offset_efold_m) for _ in range(count)
            ]
            basis = extend_basis(basis, self.normalizer.encode(np.stack(draws)), self.grid.volume, offsets)
        return tuple(torch.from_numpy(a) for a in (basis.patterns, basis.variance, basis.residual_variance))

    def tendency_variance(self, patterns: np.ndarray, years: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Variance of the truth's change over one step (the error a persistence
        background adds each cycle), in network units, from the first ``years`` training
        years: per EOF amplitude (n,) on ``patterns`` (fitted with volume weights, as
        :meth:`eof_basis`) and, for what the EOFs leave, per cell (depth, lat, lon)."""
        spy, stop = self.steps_per_year, min(years * self.steps_per_year, self.n_train)
        amplitude_sq, residual_sq, count = np.zeros(len(patterns)), np.zeros(self.grid.shape), 0
        for world in self.worlds:  # pooled: every world's changes count alike
            last = None
            for start in range(0, stop, spy):  # a year at a time, each joined to the step before it
                fields = self.normalizer.encode(world.anomaly(start, min(start + spy, stop)))
                if last is not None:
                    fields = np.concatenate([last, fields])
                amplitudes, residual = project_on_basis(np.diff(fields, axis=0), self.grid.volume, patterns)
                amplitude_sq += (amplitudes**2).sum(axis=0)
                residual_sq += (residual**2).sum(axis=0)
                count += len(amplitudes)
                last = fields[-1:]
        return (amplitude_sq / count).astype("f4"), (residual_sq / count).astype("f4")

    def obs_step(self, anomaly: np.ndarray, step: int, network_year: int, rng: np.random.Generator) -> ObsStep:
        """OSSE super-observations (degC, with their errors) of one step's truth anomaly,
        sampled where the network of ``network_year`` observed at that time of year."""
        spy = self.steps_per_year
        doy = float(step_day_of_year(1, spy, step)[0])
        positions = self.network.positions(network_year, step % spy, spy)
        positions["temperature"] = self.network.sample(anomaly, positions, rng, doy)
        fields = grid_step(positions, self.grid, doy, self.network.repr_error)
        mask = fields["obs_mask"]
        return ObsStep(
            np.where(mask > 0, fields["obs_anomaly"], 0.0).astype("f4"),
            mask,
            np.where(mask > 0, fields["obs_error"], 0.0).astype("f4"),
            step,
            doy,
        )

    def observe(
        self, anomaly: np.ndarray, step: int, network_year: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """OSSE super-observations of one step's truth anomaly and their errors, in network
        units, with the observation mask."""
        obs = self.obs_step(anomaly, step, network_year, rng)
        return self.normalizer.encode(obs.anomaly), obs.mask, self.normalizer.encode(obs.error)

    def window(
        self,
        start: int,
        length: int,
        first_year: int,
        rng: np.random.Generator,
        offset: np.ndarray | None = None,
        background: np.ndarray | None = None,
        world: int = 0,
    ) -> Window:
        """Steps ``start .. start+length`` of training world ``world`` observed by the
        network from ``first_year`` on.

        ``offset`` (degC, depth x lat x lon) is added to the truth before it is observed;
        ``background`` (degC) is the first background, the climatology when None.
        """
        spy = self.steps_per_year
        truth = self.worlds[world].anomaly(start, start + length)
        if offset is not None and offset.any():
            truth = truth + offset.astype("f4")[None]
        first = np.zeros(self.grid.shape, "f4") if background is None else background
        steps = []
        for t in range(length):
            year = min(first_year + ((start % spy) + t) // spy, NETWORK_YEARS[1])
            steps.append(self.observe(truth[t], start + t, year, rng))
        obs, masks, errors = (np.stack(s) for s in zip(*steps, strict=True))
        return Window(
            _tensor(self.normalizer.encode(truth)),
            _tensor(obs),
            _tensor(masks),
            _tensor(errors),
            _tensor(self.normalizer.encode(first)[None])[0],
        )

    def new_chain(self, rng: np.random.Generator) -> Chain:
        """A chain starting from a cold start at a random step of the training years, observed
        by the network of a random year of ``train.network_years``; a share of them
        (``train.offset_share``) carries a random large-scale offset, and half of those start
        from a background holding it. With several worlds, the chain's world is drawn first."""
        spec = self.config.train
        # one world draws nothing more: seeded single-world runs stay as they were
        world = int(rng.integers(len(self.worlds))) if len(self.worlds) > 1 else 0
        start = int(rng.integers(0, self.n_train - spec.window))
        first_year, last_year = spec.network_years
        era = int(rng.integers(first_year, last_year + 1))
        offset = np.zeros(self.grid.shape, "f4")
        background = offset
        if rng.random() < spec.offset_share:
            offset = large_scale_offset(self.grid, rng, spec.offset_surface_std, spec.offset_efold_m).astype("f4")
            background = offset if rng.random() < 0.5 else background
        first = _tensor(self.normalizer.encode(background)[None])[0]
        return Chain(start, start, era, torch.from_numpy(offset), first, world)

    def chain_window(self, chain: Chain, length: int, rng: np.random.Generator) -> Window:
        """The ``length`` steps following ``chain``, starting from its last analysis."""
        spy = self.steps_per_year
        year = chain.first_year + chain.next_step // spy - chain.start // spy
        window = self.window(chain.next_step, length, year, rng, chain.offset.numpy(), world=chain.world)
        return replace(window, background=chain.background)

    def training_window(self, rng: np.random.Generator, length: int) -> Window:
        """The first ``length`` steps of a new chain (a cold-start window)."""
        return self.chain_window(self.new_chain(rng), length, rng)

    @cached_property
    def _validation(self) -> list[Window]:
        rng = np.random.default_rng([self.config.train.seed, 99])
        length = self.steps_per_year
        worlds = range(self.validated)
        return [self.window(self.n_train, length, era, rng, world=k) for k in worlds for era in VALIDATION_ERAS]

    def validation_windows(self) -> list[Window]:
        """Fixed held-out windows (one year each, the network of 1990 and of 2010), of each validated world."""
        return self._validation
