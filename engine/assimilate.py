"""Cycling assimilation: background = previous analysis, analysis = method(background, obs).

Every method (DeepDA here, the baselines in ``engine.baselines``) is a small class with
one ``assimilate(background, obs)`` method working on a batch of ensemble members, the
way DAPPER writes its methods. :func:`cycle` runs any of them over a period, with
ensembles from perturbed initial backgrounds and perturbed observations (DESIGN
section 8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import gaussian_filter

from engine.checkpoint import Checkpoint, load_checkpoint
from engine.config import Config
from engine.config import preset as preset_config
from engine.grid import Grid, build_grid, step_day_of_year, step_times
from engine.gridding import grid_profiles, table_steps
from engine.inflation import additive_inflation, inflate
from engine.io import (
    InputError,
    history_line,
    load_geography,
    open_observations,
    profile_times,
    read_observation_groups,
    read_oni,
)
from engine.io.analysis import AnalysisWriter
from engine.memory import assimilate_bytes, check_fits
from engine.normalize import to_absolute


@dataclass
class ObsStep:
    """One step's super-observations, anomalies in degC, each (depth, lat, lon).

    ``anomaly`` may also be (members, depth, lat, lon) once perturbed per member.
    """

    anomaly: np.ndarray
    mask: np.ndarray  # 1 where observed
    error: np.ndarray  # super-observation error std (degC), 0 where unobserved
    step: int  # index in the period
    day_of_year: float
    original: np.ndarray | None = None  # (depth, lat, lon) the observations before perturbation

    def perturbed(self, members: int, rng: np.random.Generator) -> ObsStep:
        """Per-member observations with N(0, error) noise (member 0 unperturbed)."""
        noise = rng.standard_normal((members,) + self.mask.shape).astype("f4") * self.error
        noise[0] = 0.0
        values = (self.anomaly[None] + noise) * self.mask
        return ObsStep(values.astype("f4"), self.mask, self.error, self.step, self.day_of_year, self.anomaly)

    def unperturbed(self) -> np.ndarray:
        """The observations as observed, (depth, lat, lon), whether or not perturbed per member."""
        return self.anomaly if self.original is None else self.original


class Method(Protocol):
    """What every assimilation method provides."""

    name: str

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        """Analysis anomalies (members, depth, lat, lon) from background anomalies of that shape."""
        ...


class DeepDA:
    """The trained generator as an assimilation method.

    Parameters
    ----------
    checkpoint, grid
        The trained model and the grid it runs on (checked to match).
    device
        Where the generator runs.
    inflation
        Multiplicative inflation of each member's departure from the ensemble mean after
        every analysis (:func:`engine.inflation.inflate`: capped at the background's
        spread and the level's climatological anomaly scale); ``None`` takes the
        calibration's value, 1 when it has none.
    calibration
        The ensemble calibration (:mod:`engine.calibrate`); ``None`` takes the
        checkpoint's. Its additive inflation, if any, perturbs every member's background
        before the analysis (:class:`engine.inflation.AdditiveInflation`), drawn from a
        generator seeded by (``seed``, step), so a resumed run draws what the
        uninterrupted one would have.
    seed
        Seed of the additive perturbations.
    recentre
        Recentre an ensemble on its control analysis after every step: the analysis of the
        ensemble-mean background with the unperturbed observations, computed in the same
        batch as the members. The members keep their departures from their own mean (the
        spread), and the ensemble mean is then the deterministic run, what one member
        gives from the same first background. Perturbing a nonlinear network's inputs
        costs the mean of the perturbed analyses accuracy (on the coarse OSSE, 10
        members' mean 0-700 m RMSE 0.1988 degC before 2000 against 0.1984 for one
        member); operational hybrid systems recentre their ensemble on the deterministic
        analysis for the same reason (Wang et al. 2013, *Mon. Wea. Rev.* 141, 4098).
    """

    name = "deepda"

    def __init__(
        self,
        checkpoint: Checkpoint,
        grid: Grid,
        device: str | torch.device = "cpu",
        inflation: float | None = None,
        calibration: dict[str, Any] | None = None,
        seed: int = 0,
        recentre: bool = True,
    ) -> None:
        checkpoint.check_grid(grid)
        self.generator = checkpoint.generator.to(device).eval()
        self.normalizer = checkpoint.normalizer
        self.device = torch.device(device)
        calibration = checkpoint.ensemble if calibration is None else calibration
        self.inflation = float(calibration.get("inflation", 1.0) if inflation is None else inflation)
        reduced = self.generator.reduced
        self.additive = additive_inflation(calibration, None if reduced is None else reduced.patterns)
        self.seed = seed
        self.recentre = recentre
        self.ocean = torch.from_numpy(grid.ocean.astype("f4"))[None, None].to(self.device)

    def _tensor(self, values: np.ndarray) -> torch.Tensor:
        # a copy: broadcast inputs are read-only views, which torch must not wrap
        return torch.from_numpy(np.array(values, dtype="f4"))[:, None].to(self.device)

    @torch.inference_mode()
    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        members = background.shape[0]
        values = np.broadcast_to(obs.anomaly, background.shape)
        bg = self.normalizer.encode(background)
        control = members > 1 and self.recentre
        if members > 1 and self.additive is not None:
            # a stream apart from the observation perturbations' (seeded by (seed, step))
            bg = bg + self.additive.draw(members, np.random.default_rng([self.seed, obs.step, 1]))
        if control:  # the control run goes first in the batch; the perturbations are centred
            bg = np.concatenate([bg.mean(axis=0, keepdims=True), bg])
            values = np.concatenate([obs.unperturbed()[None], values])
        analysis = self._generate(bg, values, obs)
        if control:
            control_analysis, analysis = analysis[:1], analysis[1:]
        if members > 1 and self.inflation != 1.0:
            prior = background.std(axis=0, ddof=1)
            analysis = inflate(analysis, self.inflation, self.normalizer.scale, prior)
        if control:
            analysis = (analysis - analysis.mean(axis=0, keepdims=True) + control_analysis).astype("f4")
        return analysis

    def _generate(self, background: np.ndarray, values: np.ndarray, obs: ObsStep) -> np.ndarray:
        """The generator's analyses (degC) of a batch of encoded backgrounds and observations."""
        batch = background.shape[0]
        mask = np.broadcast_to(obs.mask, background.shape)
        ob = self._tensor(self.normalizer.encode(values) * mask)
        error = self._tensor(self.normalizer.encode(np.broadcast_to(obs.error, background.shape)) * mask)
        ocean = self.ocean.expand(batch, -1, -1, -1, -1)
        out = self.generator(self._tensor(background), ob, self._tensor(mask), ocean, error)
        return self.normalizer.decode(out[:, 0].float().cpu().numpy())


class Climatology:
    """Zero anomaly whatever is observed: the floor every method must beat."""

    name = "climatology"

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        return np.zeros_like(background)


class Persistence:
    """Observed cells take the observation; the others keep their last value."""

    name = "persistence"

    def assimilate(self, background: np.ndarray, obs: ObsStep) -> np.ndarray:
        return np.where(obs.mask > 0, obs.anomaly, background).astype("f4")


def initial_backgrounds(grid: Grid, members: int, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """First backgrounds centred on the climatology (zero anomaly): one member is the
    climatology; several are smooth random departures from it with the climatological
    amplitude ``scale`` (degC per level) and zero ensemble mean, so members differ."""
    states = np.zeros((members,) + grid.shape, dtype="f4")
    if members == 1:
        return states
    for m in range(members):
        noise = gaussian_filter(
            rng.standard_normal(grid.shape), sigma=(0.7, 1.5, 1.5), mode=("nearest", "nearest", "wrap")
        )
        noise /= noise.std() + 1e-12
        states[m] = noise * scale[:, None, None] * grid.ocean
    return states - states.mean(axis=0, keepdims=True)


def _chunk_bounds(first_step: int, n_steps: int, chunk: int) -> list[tuple[int, int]]:
    """[c0, c1) step ranges of ``chunk`` steps covering first_step .. first_step + n_steps."""
    end = first_step + n_steps
    return [(c0, min(c0 + chunk, end)) for c0 in range(first_step, end, chunk)]


def _grid_chunk(
    rows: pd.DataFrame, grid: Grid, start_year: int, steps_per_year: int, c0: int, c1: int
) -> Iterator[ObsStep]:
    """The super-observation steps c0 .. c1 - 1 of one chunk's profile rows."""
    fields = grid_profiles(rows, grid, start_year, steps_per_year, first_step=c0, n_steps=c1 - c0)
    doy = step_day_of_year(c1 - c0, steps_per_year, c0)
    for t in range(c1 - c0):
        mask = fields["obs_mask"].values[t]
        yield ObsStep(
            np.nan_to_num(fields["obs_anomaly"].values[t]) * mask,
            mask,
            np.nan_to_num(fields["obs_error"].values[t]) * mask,
            c0 + t,
            float(doy[t]),
        )


def obs_steps(
    table: pd.DataFrame,
    grid: Grid,
    start_year: int,
    steps_per_year: int,
    first_step: int,
    n_steps: int,
    chunk: int = 73,
) -> Iterator[ObsStep]:
    """Grid an in-memory profile table one chunk (a year of pentads) at a time, yielding each step."""
    steps = table_steps(table["time"].to_numpy(), start_year, steps_per_year) if len(table) else np.zeros(0, int)
    if np.any(np.diff(steps) < 0):  # sort once (stable: a profile's rows share a time and stay together)
        order = np.argsort(steps, kind="stable")
        table, steps = table.iloc[order], steps[order]
    for c0, c1 in _chunk_bounds(first_step, n_steps, chunk):
        rows = table.iloc[np.searchsorted(steps, c0) : np.searchsorted(steps, c1)]
        yield from _grid_chunk(rows, grid, start_year, steps_per_year, c0, c1)


def obs_steps_from_file(
    obs_path: str | Path,
    grid: Grid,
    start_year: int,
    steps_per_year: int,
    first_step: int,
    n_steps: int,
    chunk: int = 73,
) -> Iterator[ObsStep]:
    """Like :func:`obs_steps` for an observation file, read and QC'd one chunk at a time
    (:func:`engine.io.read_observation_groups`): a 40-year OSSE file never sits in memory whole."""
    bounds = _chunk_bounds(first_step, n_steps, chunk)

    def chunk_of(times: np.ndarray) -> np.ndarray:
        return (table_steps(times, start_year, steps_per_year) - first_step) // chunk

    tables = read_observation_groups(obs_path, chunk_of, range(len(bounds)), grid=grid)
    for (c0, c1), rows in zip(bounds, tables, strict=True):
        yield from _grid_chunk(rows, grid, start_year, steps_per_year, c0, c1)


def years_with_observations(obs_path: str | Path, grid: Grid) -> list[int]:
    """The years (sorted) that hold observations.

    From the profile times alone when the file has a profile index (DeepDA DSG files);
    otherwise from the rows that pass QC.
    """
    times = profile_times(obs_path)
    if times is None:
        table, _ = open_observations(obs_path, grid=grid)
        times = table["time"][table["qc"].to_numpy() == 0].to_numpy()
    times = times[~np.isnat(times)]
    if not len(times):
        raise InputError(f"{obs_path} has no observations to assimilate; check its QC summary")
    return sorted(int(y) for y in np.unique(pd.DatetimeIndex(times).year))


def year_spans(years: list[int]) -> str:
    """[1981, 1982, 1983, 1990] -> '1981-1983, 1990'."""
    spans: list[list[int]] = []
    for y in years:
        if spans and y == spans[-1][1] + 1:
            spans[-1][1] = y
        else:
            spans.append([y, y])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in spans)


def check_period(obs_path: str | Path, grid: Grid, period: tuple[int, int] | None) -> tuple[int, int]:
    """The period to assimilate (default: the years observed); an InputError when any of
    its years has no observations, since the analysis there would be the first guess alone."""
    years = years_with_observations(obs_path, grid)
    first, last = period or (years[0], years[-1])
    missing = sorted(set(range(first, last + 1)) - set(years))
    if missing:
        raise InputError(
            f"{obs_path} has no observations in {year_spans(missing)} of the period {first}-{last}; "
            f"choose a period within the observed years {year_spans(years)}"
        )
    return first, last


def cycle(
    method: Method,
    steps: Iterator[ObsStep],
    background: np.ndarray,
    seed: int,
    perturb: bool = True,
) -> Iterator[tuple[ObsStep, np.ndarray]]:
    """Run ``method`` over the observation steps; yield (obs, analysis members) each step.

    ``background`` (members, depth, lat, lon) is the first background; each analysis
    becomes the next background. With several members and ``perturb``, each member sees
    its own perturbed observations, drawn from a generator seeded by (seed, step) so a
    resumed run draws exactly what the uninterrupted one would have.
    """
    members = background.shape[0]
    for obs in steps:
        seen = obs.perturbed(members, np.random.default_rng([seed, obs.step])) if perturb and members > 1 else obs
        background = method.assimilate(background, seen)
        yield obs, background


def ensemble_fields(analysis: np.ndarray, grid: Grid, day_of_year: float, save_members: bool) -> dict[str, np.ndarray]:
    """Mean anomaly, absolute temperature (NaN on land), spread and optionally members."""
    mean = analysis.mean(axis=0)
    fields = {
        "thetao_anomaly": np.where(grid.ocean, mean, np.nan),
        "thetao": to_absolute(mean[None], grid, np.array([day_of_year]))[0],
    }
    if analysis.shape[0] > 1:
        fields["thetao_spread"] = np.where(grid.ocean, analysis.std(axis=0, ddof=1), np.nan)
    if save_members:
        fields["thetao_anomaly_member"] = np.where(grid.ocean, analysis, np.nan)
    return fields


class Cancelled(Exception):
    """Raised when a run is asked to stop; the finished steps stay in ``OUT.part``."""


BASELINES = ("oi", "kf", "persistence", "climatology")


def make_method(method: str | Path, grid: Grid, config: Config, device: str = "cpu") -> tuple[Method, dict[str, Any]]:
    """The method named (a baseline) or stored in a checkpoint, with attributes describing it."""
    from engine import baselines
    from engine.world import ModelWorld

    name = str(method)
    if name == "climatology":
        return Climatology(), {"method": name}
    if name == "persistence":
        return Persistence(), {"method": name}
    if name == "oi":
        return baselines.OptimalInterpolation.for_grid(grid, config), {"method": name}
    if name == "kf":
        # the historical world's structure: its modes plus the forced warming and volcanic
        # patterns as slow random-walk states, so the filter can follow a trend
        world = ModelWorld(grid, config.world, run="historical", n_steps=1, oni=read_oni())
        return baselines.KalmanFilter.from_world(world), {"method": name, "source": "model-world modes"}
    checkpoint = load_checkpoint(method, device)
    provenance = {k: str(v) for k, v in checkpoint.provenance.items()}
    return DeepDA(checkpoint, grid, device), {
        "method": "deepda",
        "checkpoint": str(method),
        **{f"model_{k}": v for k, v in provenance.items()},
    }


def assimilate_to_file(
    method: str | Path,
    obs_path: str | Path,
    out_path: str | Path,
    preset: str = "coarse",
    period: tuple[int, int] | None = None,
    members: int = 1,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    config: Config | None = None,
    command: str | None = None,
    save_members: bool = False,
) -> Path:
    """Assimilate an observation file over a period and write ANALYSIS.nc step by step.

    ``method`` is a checkpoint path or one of :data:`BASELINES`. ``progress(done, total)``
    is called after every step; when ``should_stop()`` turns true the run stops with
    :class:`Cancelled` and keeps its finished steps for ``resume=True``.
    """
    config = config or preset_config(preset)
    if members < 1:
        raise InputError(f"--members {members} must be at least 1")
    baseline = str(method) in BASELINES
    check_fits(
        assimilate_bytes(config, members, deepda=not baseline),
        f"an assimilation with {members} members on the {config.grid.name} grid", "use fewer --members",
    )  # fmt: skip
    grid = build_grid(config.grid, load_geography())
    first, last = check_period(obs_path, grid, period)
    assimilator, attrs = make_method(method, grid, config)
    spy = config.world.steps_per_year
    n_steps = (last - first + 1) * spy
    times = step_times(first, n_steps, spy, "standard")
    attrs = {
        **attrs,
        "title": f"DeepDA analysis ({attrs['method']})",
        "observations": str(obs_path),
        "history": history_line(command),
    }
    if members > 1 and getattr(assimilator, "recentre", False):
        attrs["ensemble_mean"] = (
            "control analysis: members recentred every step on the analysis of their mean background"
            " with the unperturbed observations"
        )
    writer = AnalysisWriter(out_path, grid, times, members, attrs, resume=resume, save_members=save_members)
    try:
        done = writer.steps_done
        if done:
            background = writer.restart_state()
        else:
            scale = getattr(assimilator, "normalizer", None)
            scale = scale.scale if scale is not None else np.full(grid.shape[0], 0.5, "f4")
            background = initial_backgrounds(grid, members, scale, np.random.default_rng([config.network.seed, 7]))
        steps = obs_steps_from_file(obs_path, grid, first, spy, done, n_steps - done)
        for obs, analysis in cycle(assimilator, steps, background, seed=config.network.seed):
            step = obs.step
            writer.write(step, ensemble_fields(analysis, grid, obs.day_of_year, save_members), analysis)
            if progress:
                progress(step + 1, n_steps)
            if should_stop and should_stop() and step + 1 < n_steps:
                raise Cancelled(f"stopped after step {step + 1} of {n_steps}; resume to continue")
    except InputError:
        # A bad observation file shows itself on the first read; leave no output behind.
        writer.discard() if writer.steps_done == 0 else writer.close()
        raise
    except BaseException:
        writer.close()
        raise
    return writer.finish()
