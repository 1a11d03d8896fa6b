"""Explicit, frozen configuration: grid, model world, observing network, network, training.

Every function in the engine takes the piece of configuration it needs as an argument;
nothing reads a module global. A :class:`Config` bundles the pieces, and named presets
(``coarse``, ``medium``, ``paper``) give complete, consistent bundles. Configs round-trip
through TOML or YAML files (see :func:`config_to_dict` / :func:`config_from_dict`; the
file reading itself lives in ``engine.io``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from typing import Any

# Depth levels (m, layer centres).  Coarse and medium are hand-picked to resolve the
# thermocline; paper has 10 m spacing to 195 m then geometric stretching to 2000 m.
COARSE_DEPTHS = (5, 15, 25, 40, 60, 85, 115, 150, 200, 275, 375, 500, 700, 1000, 1400, 2000)
MEDIUM_DEPTHS = (
    5, 15, 25, 35, 50, 65, 80, 100, 125, 150, 175, 200,
    250, 300, 375, 450, 550, 650, 775, 900, 1100, 1300, 1600, 2000,
)  # fmt: skip


def _paper_depths() -> tuple[float, ...]:
    upper = [5.0 + 10.0 * k for k in range(20)]  # 5 .. 195 m
    ratio = (2000.0 / 210.0) ** (1.0 / 17.0)
    lower = [round(210.0 * ratio**k, 1) for k in range(18)]  # 210 .. 2000 m
    return tuple(upper + lower)


PAPER_DEPTHS = _paper_depths()


@dataclass(frozen=True)
class GridSpec:
    """A regular lat/lon grid with depth levels.

    Parameters
    ----------
    name : str
        Label stored in outputs and checkpoints.
    resolution : float
        Cell size in degrees (both directions); 180 and 360 must be multiples of it.
    depths : tuple of float
        Level centres in metres, increasing downwards.
    """

    name: str = "coarse"
    resolution: float = 5.0
    depths: tuple[float, ...] = tuple(float(d) for d in COARSE_DEPTHS)

    @property
    def nlat(self) -> int:
        return int(round(180.0 / self.resolution))

    @property
    def nlon(self) -> int:
        return int(round(360.0 / self.resolution))

    @property
    def nz(self) -> int:
        return len(self.depths)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(depth, lat, lon) shape of one 3-D field."""
        return (self.nz, self.nlat, self.nlon)

    def __post_init__(self) -> None:
        if self.resolution <= 0 or abs(180.0 / self.resolution - round(180.0 / self.resolution)) > 1e-9:
            raise ValueError(f"grid resolution {self.resolution} must divide 180 degrees evenly")
        d = list(self.depths)
        if not d or any(b <= a for a, b in zip(d, d[1:], strict=False)) or d[0] <= 0:
            raise ValueError("grid depths must be positive and strictly increasing")
        object.__setattr__(self, "depths", tuple(float(x) for x in d))


@dataclass(frozen=True)
class WorldSpec:
    """The synthetic model world (DESIGN section 5).

    Rates are per pentad step unless named otherwise; a year has ``steps_per_year`` steps.
    """

    seed: int = 1
    steps_per_year: int = 73  # pentads; 12 gives monthly steps
    n_modes: int = 40  # smooth large-scale patterns of the linear inverse model
    min_memory_days: float = 30.0  # shortest mode e-folding time
    max_memory_years: float = 10.0  # longest mode e-folding time
    min_length_km: float = 500.0  # smallest horizontal pattern scale
    max_length_km: float = 6000.0  # basin scale
    min_efold_m: float = 50.0  # shallowest vertical e-folding scale
    max_efold_m: float = 1000.0
    enso_period_years: float = 4.0
    enso_damping_years: float = 2.5  # e-folding of the oscillation's envelope
    enso_nino34_std: float = 0.9  # target Nino-3.4 standard deviation (degC)
    eddy_memory_pentads: float = 1.5  # e-folding time of the small-scale noise
    eddy_length_km: float = 300.0
    eddy_variance_fraction: float = 0.25  # share of near-surface variance carried by eddies
    surface_warming_per_decade: float = 0.1  # historical run, global mean at the surface
    warming_efold_m: float = 600.0  # depth decay of the forced warming
    volcanic_cooling: float = 0.15  # peak surface cooling after El Chichon and Pinatubo (degC)
    historical_start_year: int = 1981
    historical_end_year: int = 2020
    control_start_year: int = 1  # control runs use model years on a noleap calendar


@dataclass(frozen=True)
class NetworkSpec:
    """The OSSE observing network and its instrument errors (DESIGN section 6)."""

    seed: int = 2
    platforms: tuple[str, ...] = ("argo", "xbt", "ctd", "mooring", "sst")
    deny: tuple[str, ...] = ()
    # error standard deviations (degC) at 5 degrees; scaled down at finer grids
    errors: tuple[tuple[str, float], ...] = (
        ("argo", 0.2),
        ("ctd", 0.2),
        ("mooring", 0.2),
        ("xbt", 0.3),
        ("sst", 0.3),
    )
    xbt_bias: bool = False  # add the depth-dependent fall-rate warm bias to XBTs
    argo_floats_2007: int = 3000
    sst_clear_fraction: float = 0.3  # share of ocean cells seen by satellite each pentad

    def error(self, platform: str) -> float:
        return dict(self.errors)[platform]

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(p for p in self.platforms if p not in self.deny)


@dataclass(frozen=True)
class ModelSpec:
    """Generator and discriminator sizes (DESIGN sections 4 and 7)."""

    # Defaults are the coarse preset's: half the reference widths and smaller kernels, since
    # an 8x6x4 kernel would span 40 x 30 degrees on a 5 degree grid (and cost 4x the time).
    relu_channels: int = 8  # top-level width of the ReLU branch (reference: 16)
    tanh_channels: int = 4  # top-level width of the tanh branch (reference: 8)
    n_stages: int = 3  # encoder stages (each pools 2x2 horizontally)
    kernels: tuple[tuple[int, int, int], ...] = ((5, 5, 3), (3, 3, 3), (3, 3, 3))  # (lon, lat, depth)
    disc_channels: int = 8
    # What the observation branch sees at each observed cell (engine.nn.generator.OBS_INPUTS).
    # The reference sees the observation only; the innovation (observation minus background)
    # makes the classical increment a linear function of the input, and the super-obs error
    # says how far to trust it.
    obs_inputs: tuple[str, ...] = ("obs", "innovation", "error")
    # EOFs of the reduced-space analysis layer (engine.nn.reduced) in front of the U-Net;
    # 0 is the reference architecture.  A convolutional network cannot see that an SST
    # anomaly here goes with a thermocline anomaly a basin away; the EOFs of the control
    # run can.
    reduced_space: int = 64
    # Large-scale offset patterns appended to those EOFs: the leading EOFs of the training
    # windows' large-scale offsets (train.offset_*) beyond what the control EOFs span.  A
    # control run has no global-mean change, so on coarse its 64 EOFs span 4 % of the
    # variance of the historical run's warming pattern (9 % of its 0-700 m mean) and the
    # layer cannot carry a trend; with 8 offset patterns they span 98 %.
    offset_patterns: int = 8

    def __post_init__(self) -> None:
        if self.reduced_space < 0 or self.offset_patterns < 0:
            raise ValueError("model.reduced_space and model.offset_patterns must be 0 or more")
        if self.offset_patterns > 0 and self.reduced_space == 0:
            raise ValueError(
                "model.offset_patterns extend the reduced space's EOFs, and reduced_space is 0; "
                "set offset_patterns = 0 or reduced_space > 0"
            )


NETWORK_YEARS = (1981, 2020)  # first and last year of the OSSE observing networks


@dataclass(frozen=True)
class TrainSpec:
    """GAN training with recurrent cycling (DESIGN section 7)."""

    seed: int = 3
    control_years: int = 60  # control-run years generated for training + validation
    validation_years: int = 10  # the last years, held out
    window: int = 8  # consecutive pentads per training window
    chains: int = 8  # analysis cycles kept going through the training years (see engine.train.trainer)
    chain_years: float = 3.0  # mean length of a chain before it restarts from a cold start
    backprop_steps: int = 1  # truncated backpropagation through the cycle: an update per analysis step
    steps: int = 600  # first-phase training windows (each gives window / backprop_steps optimiser updates)
    # generator (Adam); trained on the MSE alone at 5e-4 the cycled analysis drifts (a growing
    # thermocline cold bias over a held-out year: validation RMSE 0.145 at window 50, 0.20 at 150)
    learning_rate: float = 2.5e-4
    learning_rate_floor: float = 0.05  # cosine decay of both learning rates to this share by the last step
    # A second phase fine-tunes the first phase's best generator with backpropagation through
    # ``finetune_backprop_steps`` cycle steps, so that it learns what an analysis error does to
    # the next backgrounds (the thermocline errors that one-step training leaves to grow).
    # Fresh optimiser moments and its own cosine decay from ``finetune_learning_rate``.  On
    # coarse, 150 windows after the 600 one-step ones took validation RMSE from 0.085 to
    # 0.079 degC, but without offset patterns in the reduced space (model.offset_patterns)
    # it damped the headline OSSE's 0-700 m warming trend from 0.97 to 0.87 of the truth;
    # with 8 of them, validation RMSE 0.076.
    finetune_steps: int = 150
    finetune_backprop_steps: int = 8
    finetune_learning_rate: float = 1e-4
    # Exponential moving average of the generator's weights, updated after every window and
    # validated and kept instead of the raw weights; 0 (off) is the default.  At 150 coarse
    # windows, 0.9 gave held-out validation RMSE 0.139 / 0.134 / 0.133 degC at windows
    # 50 / 100 / 150 against 0.158 / 0.148 / 0.135 without: a large gain while the learning
    # rate is high, 1 % once the cosine decay has settled the weights.  The shipped model's
    # last two fine-tunes used 0.95 (validation 0.0753 -> 0.0749 over 300 windows).
    ema_decay: float = 0.0
    discriminator_learning_rate: float = 1e-4  # slower critic: on CPU budgets it otherwise wins early
    mse_weight: float = 1.0
    # Units of the errors the MSE adds up: "network" (each level's error divided by its
    # standard deviation, so the deep ocean, 5x quieter, counts as much as the surface) or
    # "degC" (as the evaluation's RMSE: the upper ocean, where the variance is, dominates).
    # Fine-tuning the shipped coarse model for 150 windows with "degC": validation RMSE
    # 0.0756 degC, 1-member OSSE 0-700 m RMSE 0.201 / 0.143 and trend 0.96 of the truth,
    # against 0.0753, 0.200 / 0.143 and 0.98 for 300 more windows in network units.
    loss_units: str = "network"
    # The paper's GAN weights the adversarial term 0.1 (the paper preset keeps it).  It makes
    # analysis increments as large as real tendencies, which hold the unpredictable part of
    # the change, and costs accuracy: at 150 windows on coarse, held-out validation RMSE
    # 0.154 degC with it against 0.133 without; 0 trains the generator on the MSE alone and
    # skips the critic.
    adversarial_weight: float = 0.0
    adversarial_warmup: float = 0.25  # share of the steps over which the adversarial weight ramps up from 0
    discriminator_weight: float = 0.5
    checkpoint_every: int = 50
    validate_every: int = 50
    patience: int = 10  # validations without improvement before stopping
    # Chains cycled side by side in each training window (one gradient step over all of
    # them); the paper's batch size is 1.  At most ``chains``.
    batch_size: int = 1
    # Slow large-scale offsets added to a share of the training windows (the control run has
    # no global-mean variability, so without them the network learns to pull every
    # unobserved region back to the climatology and damps a warming trend). Half of those
    # windows start from a background that already knows the offset, as a cycled analysis does.
    offset_share: float = 0.5
    offset_surface_std: float = 0.25  # degC, area mean at the surface
    offset_efold_m: tuple[float, float] = (200.0, 2000.0)
    # First and last year of the real observing networks a training chain may start in
    # (a chain then advances with its years, up to the last network year, 2020).  The
    # default draws every era alike; a narrower span trains for a particular era: 300
    # fine-tune windows with 1981-1999 took the shipped model's 1-member OSSE 0-700 m RMSE
    # from 0.1995 / 0.1427 to 0.1984 / 0.1440 degC (1981-1999 / 2000-2020).
    network_years: tuple[int, int] = NETWORK_YEARS

    def __post_init__(self) -> None:
        years = self.network_years
        first, last = NETWORK_YEARS
        if len(years) != 2 or not first <= years[0] <= years[1] <= last:
            raise ValueError(
                f"train.network_years must be [first, last] within {first}-{last} (the OSSE networks' years), "
                f"got {list(self.network_years)}"
            )
        if self.loss_units not in ("network", "degC"):
            raise ValueError(f'train.loss_units must be "network" or "degC", got {self.loss_units!r}')
        if not 1 <= self.batch_size <= self.chains:
            raise ValueError(
                f"train.batch_size must be 1 to train.chains ({self.chains}), got {self.batch_size}; "
                "raise train.chains to cycle more chains side by side"
            )


@dataclass(frozen=True)
class Config:
    """Everything one run needs."""

    grid: GridSpec = field(default_factory=GridSpec)
    world: WorldSpec = field(default_factory=WorldSpec)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)


PRESET_NAMES = ("coarse", "medium", "paper")


def preset(name: str) -> Config:
    """Return the named preset configuration.

    Parameters
    ----------
    name : {"coarse", "medium", "paper"}
        ``coarse`` is 5 degrees with 16 levels (CPU default), ``medium`` 2.5 degrees with
        24 levels, ``paper`` the reference 1 degree grid with 38 levels.
    """
    if name == "coarse":
        return Config()
    if name == "medium":
        return Config(
            grid=GridSpec("medium", 2.5, tuple(float(d) for d in MEDIUM_DEPTHS)),
            model=ModelSpec(relu_channels=16, tanh_channels=8, kernels=((6, 5, 3), (5, 5, 3), (3, 3, 3))),
        )
    if name == "paper":
        return Config(
            grid=GridSpec("paper", 1.0, PAPER_DEPTHS),
            model=ModelSpec(
                relu_channels=16,
                tanh_channels=8,
                n_stages=3,
                kernels=((8, 6, 4), (5, 5, 3), (3, 3, 3)),  # the reference architecture
                disc_channels=16,
                obs_inputs=("obs",),
                reduced_space=0,
                offset_patterns=0,
            ),
            train=TrainSpec(control_years=41, validation_years=5, adversarial_weight=0.1),
        )
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict (lists instead of tuples) for TOML/YAML."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return {
        section.name: {
            f.name: plain(getattr(getattr(config, section.name), f.name)) for f in fields(getattr(config, section.name))
        }
        for section in fields(config)
    }


def _section_from_dict(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown key(s) in [{where}]: {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if isinstance(default, tuple):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any], base: Config | None = None) -> Config:
    """Build a Config from a nested dict, starting from ``base`` (default: coarse preset).

    A top-level ``preset = "name"`` key picks the base. Unknown sections or keys raise
    ``ValueError`` naming them, so a typo never passes silently.
    """
    values = dict(values)
    if "preset" in values:
        base = preset(str(values.pop("preset")))
    base = base or Config()
    sections = {f.name: f for f in fields(Config)}
    unknown = set(values) - set(sections)
    if unknown:
        raise ValueError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    updates = {}
    for name, section_values in values.items():
        current = dataclasses.asdict(getattr(base, name))
        current.update(section_values)
        updates[name] = _section_from_dict(type(getattr(base, name)), current, name)
    return replace(base, **updates)
