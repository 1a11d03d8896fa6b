"""An observation file and a method in, an analysis file out, step by step and resumable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.config import Config
from engine.config import preset as preset_config
from engine.da.base import Cancelled, cycle, ensemble_fields, initial_backgrounds
from engine.da.registry import BASELINES, make_method
from engine.da.running_mean import RunningMean
from engine.errors import InputError
from engine.grid import Grid, step_day_of_year, step_times
from engine.io import (
    good_profile_times,
    history_line,
    open_observations,
    profile_times,
    read_observation_groups,
    read_profile_summary,
    write_profiles_incremental,
)
from engine.io.analysis import AnalysisWriter
from engine.memory import assimilate_bytes, check_fits
from engine.observe.gridding import obs_steps_from_file
from engine.observe.representativeness import representativeness_error
from engine.observe.withhold import Withholding, float_keys
from engine.train.distributed import pick_device


def years_with_observations(obs_path: str | Path, grid: Grid) -> list[int]:
    """The years (sorted) that hold observations.

    From the profile index and stored QC when the file has them (DeepDA DSG files);
    otherwise from the rows that pass QC.
    """
    times = good_profile_times(obs_path)
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
    withhold: Withholding | None = None,
    device: str | None = None,
) -> Path:
    """Assimilate an observation file over a period and write ANALYSIS.nc step by step.

    ``method`` is a checkpoint path or one of :data:`BASELINES`. ``progress(done, total)``
    is called after every step; when ``should_stop()`` turns true the run stops with
    :class:`Cancelled` and keeps its finished steps for ``resume=True``. With ``withhold``
    the withheld profiles are left out and written to :func:`withheld_path` first, to be
    scored on later. DeepDA runs on ``device`` (default: a GPU when there is one).
    """
    assimilator, grid, config, attrs = _set_up(method, config or preset_config(preset), members, device)
    first, last = check_period(obs_path, grid, period)
    spy = config.world.steps_per_year
    n_steps = (last - first + 1) * spy
    times = step_times(first, n_steps, spy, "standard")
    attrs = _file_attributes(attrs, obs_path, command, members > 1 and getattr(assimilator, "recentre", False))
    attrs.update(_running_mean_attributes(config), steps_per_year=spy)  # readers need not guess it from the times
    withheld = _withhold(withhold, obs_path, out_path, grid, (first, last), resume, command, attrs)
    writer = AnalysisWriter(out_path, grid, times, members, attrs, resume=resume, save_members=save_members)
    try:
        done = writer.steps_done
        background = writer.restart_state() if done else _first_backgrounds(assimilator, grid, members, config)
        running = None
        if config.assimilate.running_mean_steps:
            running = RunningMean(assimilator, config.assimilate.running_mean_steps, writer.restart_mean())
        repr_error = representativeness_error(grid, config.obs_error)
        steps = obs_steps_from_file(
            obs_path, grid, first, spy, done, n_steps - done, withheld=withheld, repr_error=repr_error
        )
        for obs, analysis in cycle(running or assimilator, steps, background, seed=config.assimilate.seed):
            step = obs.step
            fields = ensemble_fields(analysis, grid, obs.day_of_year, writer.save_members)
            writer.write(step, fields, analysis, None if running is None else running.mean)
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


def _set_up(method: str | Path, config: Config, members: int, device: str | None) -> tuple[Any, Grid, Config, dict]:
    """The method ready to cycle on ``device`` (a GPU when there is one), checked to fit in memory."""
    if members < 1:
        raise InputError(f"--members {members} must be at least 1")
    setup = make_method(method, config, device or str(pick_device()))
    need = assimilate_bytes(setup.config, members, deepda=str(method) not in BASELINES)
    what = f"an assimilation with {members} members on the {setup.config.grid.name} grid"
    check_fits(need, what, "use fewer --members")
    return setup.method, setup.grid, setup.config, setup.attrs


def _withhold(
    withhold: Withholding | None,
    obs_path: str | Path,
    out_path: str | Path,
    grid: Grid,
    period: tuple[int, int],
    resume: bool,
    command: str | None,
    attrs: dict[str, str],
) -> Callable[[pd.DataFrame], np.ndarray] | None:
    """Write the withheld profiles beside the analysis (first, so a resumed run keeps them),
    name them in ``attrs``; the row filter that leaves them out, or None."""
    if withhold is not None and withhold.float_fraction > 0:
        withhold = withhold.choose_floats(observed_floats(obs_path, grid, *period))
    if withhold is None or not withhold.active:
        return None
    attrs["withheld_observations"] = f"{withhold.describe()}, in {withheld_path(out_path).name}"
    if not (resume and withheld_path(out_path).exists()):
        write_withheld(obs_path, withheld_path(out_path), withhold, grid, command)
    return withhold.withheld


def _file_attributes(
    method_attrs: dict[str, str], obs_path: str | Path, command: str | None, recentred: bool
) -> dict[str, str]:
    """The analysis file's global attributes: the method, its observations, its history."""
    attrs = {
        **method_attrs,
        "title": f"DeepDA analysis ({method_attrs['method']})",
        "observations": str(obs_path),
        "history": history_line(command),
    }
    if recentred:
        attrs["ensemble_mean"] = (
            "control analysis: members recentred every step on the analysis of their mean background"
            " with the unperturbed observations"
        )
    return attrs


def _running_mean_attributes(config: Config) -> dict[str, str]:
    """What the analysis was cycled around: the climatology, or a running mean of the analyses."""
    steps = config.assimilate.running_mean_steps
    if not steps:
        return {"running_mean_steps": "0"}
    return {
        "running_mean_steps": f"{steps:g}",
        "background_reference": f"running mean of the analyses, e-folding {steps:g} steps (not the climatology)",
    }


def _first_backgrounds(method: Any, grid: Grid, members: int, config: Config) -> np.ndarray:
    """Members' first backgrounds around the climatology (a model's own, for a model trained
    on it), with the method's anomaly scale."""
    spy = config.world.steps_per_year
    normalizer = getattr(method, "normalizer", None)
    scale = normalizer.scale if normalizer is not None else np.full(grid.shape[0], 0.5, "f4")
    backgrounds = initial_backgrounds(grid, members, scale, np.random.default_rng([config.assimilate.seed, 7]))
    own = getattr(method, "climatology_anomaly", lambda day: None)(float(step_day_of_year(1, spy)[0]))
    return backgrounds if own is None else (backgrounds + own).astype("f4")


def withheld_path(out_path: str | Path) -> Path:
    """Where an analysis's withheld observations go: ``A.nc`` -> ``A.withheld.nc``."""
    out = Path(out_path)
    return out.with_name(f"{out.stem}.withheld{out.suffix or '.nc'}")


def observed_floats(obs_path: str | Path, grid: Grid, first: int, last: int) -> np.ndarray:
    """The Argo floats (WMO numbers) with measurements passing QC in the years first-last;
    an InputError when there are none to withhold."""
    try:
        table, _ = read_profile_summary(obs_path)
        table = table[table["good"].to_numpy() > 0]
    except InputError:  # not a DeepDA DSG file: read whole
        table, _ = open_observations(obs_path, grid=grid)
        table = table[table["qc"].to_numpy() == 0]
    years = pd.DatetimeIndex(table["time"]).year
    floats = np.unique(float_keys(table[(years >= first) & (years <= last)]))
    if not (floats >= 0).any():
        raise InputError(
            f"{obs_path} has no Argo float in {first}-{last} to withhold; withhold a share of the profiles, e.g. --withhold 0.2"
        )
    return floats


def write_withheld(obs_path: str | Path, out: Path, withhold: Withholding, grid: Grid, command: str | None) -> int:
    """Copy the withheld profiles of ``obs_path`` into a profile file; returns the rows written."""
    times = profile_times(obs_path)
    years = pd.DatetimeIndex(times[~np.isnat(times)]).year if times is not None else None
    groups = range(int(years.min()), int(years.max()) + 1) if years is not None and len(years) else None
    if groups is None:
        tables = iter([open_observations(obs_path, grid=grid)[0]])
    else:
        tables = read_observation_groups(obs_path, lambda t: pd.DatetimeIndex(t).year.to_numpy(), groups, grid=grid)
    chunks = (table[withhold.withheld(table)] for table in tables)
    attrs = {"source": f"withheld from {obs_path}: {withhold.describe()}"}
    return write_profiles_incremental(out, chunks, attrs, command)
