"""The one list of assimilation methods: the CLI, the dashboard and the OSSE all read it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.config import Config, WorldSpec
from engine.da.base import Method
from engine.da.deepda import DeepDA
from engine.da.kf import KalmanFilter
from engine.da.oi import OptimalInterpolation
from engine.da.simple import Climatology, Persistence
from engine.errors import InputError
from engine.grid import Grid
from engine.io import load_grid, read_oni
from engine.train.checkpoint import load_checkpoint
from engine.world.synthetic import ModelWorld


def _kalman_filter(grid: Grid, config: Config) -> KalmanFilter:
    # the historical world's structure: its modes plus the forced warming and volcanic
    # patterns as slow random-walk states, so the filter can follow a trend
    world = ModelWorld(grid, config.world, run="historical", n_steps=1, oni=read_oni())
    return KalmanFilter.from_world(world)


@dataclass(frozen=True)
class Baseline:
    """A classical method: its name, what the dashboard calls it, and how it is built."""

    name: str
    label: str
    build: Callable[[Grid, Config], Method]
    source: str | None = None  # what it knows beyond the observations, for the file's attributes


BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline("oi", "optimal interpolation (oi)", OptimalInterpolation.for_grid),
        Baseline("kf", "Kalman filter in the model world's modes (kf)", _kalman_filter, "model-world modes"),
        Baseline("persistence", "persistence", lambda grid, config: Persistence()),
        Baseline("climatology", "climatology", lambda grid, config: Climatology()),
    )
}
METHODS = ("deepda", *BASELINES)  # every method, in the order tables list them


@dataclass(frozen=True)
class MethodSetup:
    """A method ready to cycle, with the grid and config it runs on and attributes describing it."""

    method: Method
    grid: Grid
    config: Config
    attrs: dict[str, Any]


def _climatology_attribute(kept: dict[str, Any], own: bool) -> str:
    """What the analysis file says of the climatology DeepDA cycled around."""
    if own:
        return f"{kept['source']} (the model's own, as trained)"
    note = ' (the model kept its own; [assimilate] climatology = "model" uses it)' if kept else ""
    return f"the grid's observed climatology{note}"


def make_method(method: str | Path, config: Config, device: str = "cpu") -> MethodSetup:
    """The baseline named, or the DeepDA checkpoint at ``method``, set up to run.

    A checkpoint's config is the config: it runs on the grid, model and step length it was
    trained with. A step length other than the default that the checkpoint was not trained
    with is refused: it was asked for, and would otherwise be dropped without a word.
    """
    name = str(method)
    if name in BASELINES:
        baseline = BASELINES[name]
        grid = load_grid(config.grid)
        attrs = {"method": name} | ({"source": baseline.source} if baseline.source else {})
        return MethodSetup(baseline.build(grid, config), grid, config, attrs)
    checkpoint = load_checkpoint(method, device)
    trained = checkpoint.config
    asked, steps = config.world.steps_per_year, trained.world.steps_per_year
    if asked not in (steps, WorldSpec.steps_per_year):
        raise InputError(
            f"{name} was trained on {steps} steps a year and the config asks for {asked}; "
            f"leave steps_per_year out to assimilate at the model's {steps}, or train a model on {asked} steps a year"
        )
    config = replace(
        config,
        grid=trained.grid,
        model=trained.model,
        world=replace(config.world, steps_per_year=trained.world.steps_per_year),
    )
    grid = load_grid(config.grid)
    provenance = {k: str(v) for k, v in checkpoint.provenance.items()}
    attrs = {"method": "deepda", "checkpoint": str(method), **{f"model_{k}": v for k, v in provenance.items()}}
    own = config.assimilate.climatology == "model" and bool(checkpoint.climatology)
    attrs["background_climatology"] = _climatology_attribute(checkpoint.climatology, own)
    return MethodSetup(DeepDA(checkpoint, grid, device, own_climatology=own), grid, config, attrs)
