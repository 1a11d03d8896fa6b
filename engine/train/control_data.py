"""Training samples from another model's control run (``deepda train --control``).

Composition only: the CMIP-layout files are regridded to the preset and cached
(:func:`engine.io.regrid_control_run`), wrapped as a :class:`~engine.world.control.ControlRun`
(the run's own climatology), and handed to :class:`~engine.train.samples.TrainingSamples`
in place of the synthetic world. The config follows the run: its steps a year (12 for
monthly means) and its whole years as ``train.control_years``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from engine.config import Config
from engine.errors import InputError, setting_error
from engine.grid import Grid


def parse_control(items: tuple[str, ...] | list[str]) -> list[tuple[str | None, str]]:
    """``GLOB`` or ``NAME=GLOB`` items as (name or None, glob)."""
    out = []
    for item in items:
        name, sep, pattern = item.partition("=")
        named = sep and name.strip() and pattern.strip() and "/" not in name  # a path may hold "="
        out.append((name.strip(), pattern.strip()) if named else (None, item.strip()))
    return out


def config_for_run(config: Config, steps_per_year: int, years: int) -> Config:
    """``config`` with the run's steps a year and its whole years as the control years."""
    spec = config.train
    if spec.validation_years >= years:
        raise setting_error(
            "train.validation_years", spec.validation_years,
            f"fewer than the control run's {years} whole years; lower it or give a longer run",
        )  # fmt: skip
    if (years - spec.validation_years) * steps_per_year < 3 * spec.window:
        raise InputError(
            f"the control run's {years - spec.validation_years} training years are too short for windows of "
            f"{spec.window} steps; give a longer run or lower train.window"
        )
    return replace(
        config,
        world=replace(config.world, steps_per_year=steps_per_year),
        train=replace(config.train, control_years=years),
    )


def control_samples(
    config: Config, grid: Grid, cache: str | None = None, progress: Callable[[int, int], None] | None = None
) -> tuple[Any, Config, dict[str, Any]]:
    """Samples from ``config.train.control``, the config they train under, and the
    provenance (models, files, regridding) for the checkpoint."""
    from engine.io.control import open_control_run, regrid_control_run
    from engine.observe.network import ObservingNetwork
    from engine.train.samples import TrainingSamples
    from engine.world.control import ControlRun

    sources = parse_control(config.train.control)
    if len(sources) != 1:
        raise InputError(
            f"{len(sources)} control runs given; training on several models at once is not built yet, give one --control"
        )
    name, pattern = sources[0]
    path, cached = regrid_control_run(pattern, grid, cache=cache, progress=progress)
    run = ControlRun(open_control_run(path), grid, name)
    config = config_for_run(config, run.steps_per_year, run.years)
    samples = TrainingSamples(config, grid, run, ObservingNetwork(grid, config.network, obs_error=config.obs_error))
    first, last = config.train.network_years
    samples.description = (
        f"control run of {run.name}, {run.years} years of {run.steps_per_year} steps (last "
        f"{config.train.validation_years} held out), its own seasonal climatology; OSSE network seed "
        f"{config.network.seed}, chains starting in network years {first}-{last}"
    )
    record = {**run.provenance(), "cache": str(path), "from_cache": cached}
    return samples, config, {"control": [record]}
