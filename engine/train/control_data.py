"""Training samples from another model's control run (``deepda train --control``).

Composition only: the CMIP-layout files are regridded to the preset and cached
(:func:`engine.io.regrid_control_run`), wrapped as a :class:`~engine.world.control.ControlRun`
(the run's own climatology), and handed to :class:`~engine.train.samples.TrainingSamples`
in place of the synthetic world, several runs side by side. The config follows the runs:
their steps a year (12 for monthly means) and the shortest one's whole years as
``train.control_years``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from engine.config import Config
from engine.errors import InputError, setting_error
from engine.grid import Grid, step_day_of_year


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


def check_runs(runs: list[Any]) -> None:
    """One line unless the control runs can train side by side: a name each, one step length."""
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        raise InputError(f"two control runs are both named {max(names, key=names.count)}; name each with NAME=GLOB")
    if len({run.steps_per_year for run in runs}) > 1:
        listed = ", ".join(f"{run.name} {run.steps_per_year}" for run in runs)
        raise InputError(
            f"the control runs have different steps a year ({listed}); give runs of one step length "
            "(e.g. all monthly means)"
        )


def control_samples(
    config: Config, grid: Grid, cache: str | None = None, progress: Callable[[int, int], None] | None = None
) -> tuple[Any, Config, dict[str, Any]]:
    """Samples from ``config.train.control``, the config they train under, and the
    provenance (models, files, regridding) for the checkpoint.

    With several runs each chain cycles through one model's run, drawn evenly, each with
    its own climatology removed; they must share a step length, and every run is trained
    on its first ``control_years`` years, the shortest run's whole years.
    """
    from engine.io.control import open_control_run, regrid_control_run
    from engine.observe.network import ObservingNetwork
    from engine.train.samples import TrainingSamples
    from engine.world.control import ControlRun

    runs, records = [], []
    for name, pattern in parse_control(config.train.control):
        path, cached = regrid_control_run(pattern, grid, cache=cache, progress=progress)
        runs.append(ControlRun(open_control_run(path), grid, name))
        records.append({**runs[-1].provenance(), "cache": str(path), "from_cache": cached})
    check_runs(runs)
    runs.sort(key=lambda run: run.years)  # the shortest first: it sets the years every run trains on
    config = config_for_run(config, runs[0].steps_per_year, runs[0].years)
    network = ObservingNetwork(grid, config.network, obs_error=config.obs_error)
    samples = TrainingSamples(config, grid, runs[0], network, runs[1:])
    first, last = config.train.network_years
    joined = " + ".join(run.name for run in runs)
    samples.description = (
        f"control run{'s' * (len(runs) > 1)} of {joined}, {runs[0].years} years of {runs[0].steps_per_year} "
        f"steps{' each' * (len(runs) > 1)} (last {config.train.validation_years} held out), each with its own "
        f"seasonal climatology; OSSE network seed {config.network.seed}, chains starting in network years "
        f"{first}-{last}"
    )
    samples.climatology = model_climatology(runs, grid)
    return samples, config, {"control": records}


def model_climatology(runs: list[Any], grid: Grid) -> dict[str, Any]:
    """The checkpoint's climatology section: the runs' mean seasonal climatology as a
    departure from the grid's (mean and two harmonics), zero where a model has land."""
    from engine.train.normalize import climatology, fit_seasonal_offset

    spy = runs[0].steps_per_year
    grid_clim = climatology(grid, step_day_of_year(spy, spy))
    offset = np.mean([np.where(run.ocean[None], run.climatology - grid_clim, 0.0) for run in runs], axis=0)
    names = " + ".join(run.name for run in runs)
    return {
        "offset_harmonics": torch.from_numpy(fit_seasonal_offset(offset, spy)),
        "source": f"seasonal climatology of the control run{'s' * (len(runs) > 1)} of {names}"
        + (" (their mean)" if len(runs) > 1 else ""),
    }
