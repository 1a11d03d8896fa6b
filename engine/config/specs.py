"""The configuration's dataclasses, each with the valid range of every field beside it
(the real-observation sections, [obs_error] and [learn], in ``realdata``; [assimilate] in
``cycling``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.config.cycling import AssimilateSpec
from engine.config.realdata import LearnSpec, ObsErrorSpec
from engine.config.rules import SEED, Rule, check_fields, require

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
PLATFORM_NAMES = ("argo", "xbt", "ctd", "mooring", "sst")  # the OSSE platforms (engine.observe.profiles.PLATFORMS)
OBS_INPUT_NAMES = ("obs", "innovation", "error")  # engine.nn.generator.OBS_INPUTS
NETWORK_YEARS = (1981, 2020)  # first and last year of the OSSE observing networks
ONI_YEARS = (1950, 2021)  # full years of the shipped Nino-3.4 record the historical run follows


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
        check_fields(self, GRID_RULES, "grid")
        steps = self.resolution / 0.5
        require(
            abs(steps - round(steps)) < 1e-9 and abs(180.0 / self.resolution - round(180.0 / self.resolution)) < 1e-9,
            "grid.resolution", self.resolution,
            "a multiple of 0.5 degree that divides 180 evenly, e.g. 1, 2.5 or 5 (the geography is at 0.5 degree)",
        )  # fmt: skip
        d = self.depths
        require(
            all(b > a for a, b in zip(d, d[1:], strict=False)),
            "grid.depths", list(d), "level depths must increase strictly downwards",
        )  # fmt: skip


GRID_RULES = {
    "resolution": Rule(0.5, 90.0, unit="degrees", note="a multiple of 0.5 that divides 180"),
    # the shipped Levitus climatology reaches 5000 m
    "depths": Rule(0.5, 5000.0, size=(1, 200), unit="m"),
}


@dataclass(frozen=True)
class WorldSpec:
    """The synthetic model world (DESIGN section 5).

    Rates are per pentad step unless named otherwise; a year has ``steps_per_year`` steps.
    ``name`` is what OSSE summaries and checkpoints call the world (the default world is A;
    ``assets/world_b.toml`` and ``world_c.toml`` ship two differently built ones).
    """

    name: str = "A"
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

    def __post_init__(self) -> None:
        check_fields(self, WORLD_RULES, "world")
        pairs = (
            ("min_memory_days", self.min_memory_days, self.max_memory_years * 365.0, "max_memory_years * 365"),
            ("min_length_km", self.min_length_km, self.max_length_km, "max_length_km"),
            ("min_efold_m", self.min_efold_m, self.max_efold_m, "max_efold_m"),
            ("historical_start_year", self.historical_start_year, self.historical_end_year, "historical_end_year"),
        )
        for name, low, high, bound in pairs:
            require(low <= high, f"world.{name}", low, f"at most world.{bound} ({high:g})")


WORLD_RULES = {
    "name": Rule(note="what summaries call the world, e.g. B"),
    "seed": SEED,
    "steps_per_year": Rule(1, 365, note="73 = pentads, 12 = months"),
    "n_modes": Rule(3, 1000, note="the ENSO pair and at least one more"),
    "min_memory_days": Rule(1.0, 36500.0, unit="days"),
    "max_memory_years": Rule(0.01, 1000.0, unit="years"),
    "min_length_km": Rule(10.0, 40000.0, unit="km"),
    "max_length_km": Rule(10.0, 40000.0, unit="km"),
    "min_efold_m": Rule(1.0, 10000.0, unit="m"),
    "max_efold_m": Rule(1.0, 10000.0, unit="m"),
    "enso_period_years": Rule(0.5, 50.0, unit="years"),
    "enso_damping_years": Rule(0.1, 100.0, unit="years"),
    "enso_nino34_std": Rule(0.0, 5.0, unit="degC"),
    "eddy_memory_pentads": Rule(0.1, 1000.0, unit="pentads"),
    "eddy_length_km": Rule(10.0, 5000.0, unit="km"),
    "eddy_variance_fraction": Rule(0.0, 0.95),
    "surface_warming_per_decade": Rule(-2.0, 2.0, unit="degC"),
    "warming_efold_m": Rule(1.0, 10000.0, unit="m"),
    "volcanic_cooling": Rule(-5.0, 5.0, unit="degC"),
    "historical_start_year": Rule(*ONI_YEARS, note="the years of the shipped ENSO record"),
    "historical_end_year": Rule(*ONI_YEARS, note="the years of the shipped ENSO record"),
    "control_start_year": Rule(1, 9999),
}


@dataclass(frozen=True)
class NetworkSpec:
    """The OSSE observing network and its instrument errors (DESIGN section 6)."""

    seed: int = 2
    platforms: tuple[str, ...] = ("argo", "xbt", "ctd", "mooring", "sst")
    deny: tuple[str, ...] = ()
    # Each measurement's own error std (degC): the instrument and the small scales no cell
    # resolves, independent from profile to profile. The error a cell's mean shares is the
    # representativeness error of [obs_error]; without it (representativeness = false)
    # these stand for both, as quoted for 5 degree cells (argo 0.2, xbt 0.3), and are
    # scaled down on finer grids.
    errors: tuple[tuple[str, float], ...] = (
        ("argo", 0.05),
        ("ctd", 0.05),
        ("mooring", 0.05),
        ("xbt", 0.15),
        ("sst", 0.3),
    )
    xbt_bias: bool = False  # add the depth-dependent fall-rate warm bias to XBTs
    argo_floats_2007: int = 3000
    sst_clear_fraction: float = 0.3  # share of ocean cells seen by satellite each pentad

    def __post_init__(self) -> None:
        check_fields(self, NETWORK_RULES, "network")
        require(len(set(self.platforms)) == len(self.platforms), "network.platforms", list(self.platforms),
                "each platform at most once")  # fmt: skip
        require(bool(self.active), "network.deny", list(self.deny),
                f"leave at least one of network.platforms ({', '.join(self.platforms)}) observing")  # fmt: skip
        missing = [p for p in self.active if p not in dict(self.errors)]
        require(not missing, "network.errors", [list(e) for e in self.errors],
                f"an error for every observing platform; add {', '.join(missing)}")  # fmt: skip

    def error(self, platform: str) -> float:
        return dict(self.errors)[platform]

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(p for p in self.platforms if p not in self.deny)


NETWORK_RULES = {
    "seed": SEED,
    "platforms": Rule(choices=PLATFORM_NAMES, size=(1, len(PLATFORM_NAMES))),
    "deny": Rule(choices=PLATFORM_NAMES, size=(0, len(PLATFORM_NAMES))),
    "errors": Rule(0.0, 10.0, choices=PLATFORM_NAMES, unit="degC", note="[platform, error] pairs"),
    "argo_floats_2007": Rule(0, 100000),
    "sst_clear_fraction": Rule(0.0, 1.0),
}


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
    # EOFs of the reduced-space analysis layer (engine.nn.reduced) in front of the U-Net, 0 the
    # reference: a convolution cannot see that an SST anomaly goes with a thermocline one a basin away.
    reduced_space: int = 64
    # Large-scale offset patterns appended to those EOFs (from train.offset_*): a control run has
    # no global-mean change, so its EOFs alone cannot carry a warming trend.
    offset_patterns: int = 8

    def __post_init__(self) -> None:
        check_fields(self, MODEL_RULES, "model")
        require(len(self.kernels) <= self.n_stages, "model.kernels", [list(k) for k in self.kernels],
                f"at most model.n_stages ({self.n_stages}) kernels, one per stage")  # fmt: skip
        require(len(set(self.obs_inputs)) == len(self.obs_inputs), "model.obs_inputs", list(self.obs_inputs),
                "each input at most once")  # fmt: skip
        require(
            self.offset_patterns == 0 or self.reduced_space > 0, "model.offset_patterns", self.offset_patterns,
            "they extend the reduced space's EOFs, and reduced_space is 0; set offset_patterns = 0 or reduced_space > 0",
        )  # fmt: skip


MODEL_RULES = {
    "relu_channels": Rule(1, 1024),
    "tanh_channels": Rule(1, 1024),
    "n_stages": Rule(1, 6, note="each pools 2x2 horizontally"),
    "kernels": Rule(1, 15, size=(1, 6), note="[lon, lat, depth] per stage"),
    "disc_channels": Rule(1, 1024),
    "obs_inputs": Rule(choices=OBS_INPUT_NAMES, size=(1, len(OBS_INPUT_NAMES))),
    "reduced_space": Rule(0, 10000, note="0 is the reference architecture"),
    "offset_patterns": Rule(0, 1000),
}


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
    # generator (Adam); higher rates let the cycled analysis drift (docs/experiments.md)
    learning_rate: float = 2.5e-4
    learning_rate_floor: float = 0.05  # cosine decay of both learning rates to this share by the last step
    # A second phase fine-tunes the best generator with backpropagation through
    # ``finetune_backprop_steps`` cycle steps, so that it learns what an analysis error does to
    # the next backgrounds; fresh optimiser moments and its own cosine decay.
    finetune_steps: int = 150
    finetune_backprop_steps: int = 8
    finetune_learning_rate: float = 1e-4
    # Exponential moving average of the generator's weights, validated and kept instead of the
    # raw weights (which wander around the optimum with batch size 1); 0 is off.
    ema_decay: float = 0.0
    discriminator_learning_rate: float = 1e-4  # slower critic: on CPU budgets it otherwise wins early
    mse_weight: float = 1.0
    # Units of the errors the MSE adds up: "network" (each level's error divided by its
    # standard deviation, so the quiet deep ocean counts as much as the surface) or "degC".
    loss_units: str = "network"
    # The paper's GAN weights the adversarial term 0.1 (the paper preset keeps it); it makes
    # increments as large as real tendencies and costs accuracy. 0: the MSE alone, no critic.
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
    # First and last year of the observing networks a training chain may start in (it then
    # advances with its years); a narrower span than the default trains for one era.
    network_years: tuple[int, int] = NETWORK_YEARS
    # Config files whose [world] joins this config's own for training (several models): each
    # world's control run of control_years, chains drawn from them evenly (deepda train --worlds).
    worlds: tuple[str, ...] = ()
    # Worlds drawn around [world] from the plausible ranges of engine.world.draws, trained on
    # beside the others (a distribution of worlds); the first validation_drawn of them are
    # also validated on.
    drawn_worlds: int = 0
    validation_drawn: int = 3
    # Control runs in CMIP6 layout to train on instead of the synthetic world: each "GLOB" or
    # "NAME=GLOB" (files, a folder or a pattern of one model's thetao); empty: the world.
    control: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_fields(self, TRAIN_RULES, "train")
        first, last = NETWORK_YEARS
        require(self.network_years[0] <= self.network_years[1], "train.network_years", list(self.network_years),
                f"[first, last] within {first}-{last} (the OSSE networks' years), first <= last")  # fmt: skip
        require(self.validation_years < self.control_years, "train.validation_years", self.validation_years,
                f"fewer than train.control_years ({self.control_years}): training needs the years before them")  # fmt: skip
        require(self.batch_size <= self.chains, "train.batch_size", self.batch_size,
                f"1 to train.chains ({self.chains}); raise train.chains to cycle more chains side by side")  # fmt: skip
        for name in ("backprop_steps", "finetune_backprop_steps"):
            require(getattr(self, name) <= self.window, f"train.{name}", getattr(self, name),
                    f"at most train.window ({self.window}), the steps of one window")  # fmt: skip
        require(self.offset_efold_m[0] <= self.offset_efold_m[1], "train.offset_efold_m",
                list(self.offset_efold_m), "[shortest, longest] depth scales, shortest first")  # fmt: skip


STEPS = Rule(0, 10_000_000)
RATE = Rule(1e-8, 1.0)
WEIGHT = Rule(0.0, 1000.0)
TRAIN_RULES = {
    "seed": SEED,
    "control_years": Rule(2, 10000, unit="years"),
    "validation_years": Rule(1, 1000, unit="years"),
    "window": Rule(1, 1000, unit="steps"),
    "chains": Rule(1, 1024),
    "chain_years": Rule(0.01, unit="years", note="a huge value never restarts a chain"),
    "backprop_steps": Rule(1, 1000),
    "steps": STEPS,
    "learning_rate": RATE,
    "learning_rate_floor": Rule(0.0, 1.0),
    "finetune_steps": STEPS,
    "finetune_backprop_steps": Rule(1, 1000),
    "finetune_learning_rate": RATE,
    "ema_decay": Rule(0.0, 0.9999, note="0 is off"),
    "discriminator_learning_rate": RATE,
    "mse_weight": WEIGHT,
    "loss_units": Rule(choices=("network", "degC")),
    "adversarial_weight": WEIGHT,
    "adversarial_warmup": Rule(0.0, 1.0, note="a share of the steps"),
    "discriminator_weight": WEIGHT,
    "checkpoint_every": Rule(1, 10_000_000, unit="windows"),
    "validate_every": Rule(1, 10_000_000, unit="windows"),
    "patience": Rule(1, 1_000_000, unit="validations"),
    "batch_size": Rule(1, 1024),
    "offset_share": Rule(0.0, 1.0),
    "offset_surface_std": Rule(0.0, 5.0, unit="degC"),
    "offset_efold_m": Rule(1.0, 10000.0, unit="m"),
    "network_years": Rule(*NETWORK_YEARS, note="the OSSE networks' years"),
    "worlds": Rule(size=(0, 32), note="config files, e.g. assets/world_b.toml, whose [world] is trained on too"),
    "drawn_worlds": Rule(0, 256, note="worlds drawn around [world] to train on too"),
    "validation_drawn": Rule(0, 256, note="how many of the drawn worlds are validated on"),
    "control": Rule(size=(0, 64), note='each "GLOB" or "NAME=GLOB" of one model\'s thetao files'),
}


@dataclass(frozen=True)
class Config:
    """Everything one run needs."""

    grid: GridSpec = field(default_factory=GridSpec)
    world: WorldSpec = field(default_factory=WorldSpec)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    assimilate: AssimilateSpec = field(default_factory=AssimilateSpec)
    obs_error: ObsErrorSpec = field(default_factory=ObsErrorSpec)
    learn: LearnSpec = field(default_factory=LearnSpec)
