"""Observing-system simulation experiments: composition of world, observing, methods, metrics.

No logic of its own beyond wiring: the truth comes from :mod:`engine.world.synthetic`, the
observations from :mod:`engine.observe.network`, the analyses from :mod:`engine.da`
(DeepDA and the baselines), the scores from :mod:`engine.evaluate.metrics`, files from
:mod:`engine.io`. ``deepda osse``, ``deepda evaluate``, ``deepda demo`` and the
dashboard's first start all come through here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from engine import io
from engine.config import Config
from engine.da.base import Cancelled
from engine.da.reanalysis import assimilate_to_file
from engine.evaluate import summary
from engine.evaluate.checks import check_evaluation
from engine.evaluate.scoring import ObservedCells, OsseScores
from engine.grid import Grid, step_day_of_year, time_to_step
from engine.observe.network import ObservingNetwork, iter_observe
from engine.observe.qc import run_qc
from engine.progress import Stages
from engine.train.checkpoint import load_checkpoint
from engine.twins import twin_attributes, twin_markdown
from engine.world.synthetic import ModelWorld

if TYPE_CHECKING:
    from engine.config import WorldSpec
    from engine.world.control import HistoricalRun

ERAS = [1981, 2000, 2021]  # pre-Argo and Argo eras
REGIONS = ("global", "tropics", "northern_extratropics", "southern_extratropics", "nino34")
Progress = Callable[[str, float], None]


def historical_world(config: Config, grid: Grid, period: tuple[int, int]) -> ModelWorld:
    """The historical run over ``period`` (inclusive years)."""
    n_steps = (period[1] - period[0] + 1) * config.world.steps_per_year
    return ModelWorld(grid, config.world, run="historical", n_steps=n_steps, start_year=period[0], oni=io.read_oni())


def _stage(progress: Progress | None, name: str, total: int) -> Callable[[int], None]:
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress:
            progress(name, min(done[0] / max(total, 1), 1.0))

    return step


def osse_observations(
    world: ModelWorld, network: ObservingNetwork, grid: Grid, progress: Callable[[int], None] | None = None
) -> Iterator[pd.DataFrame]:
    """The OSSE profile table chunk by chunk, each chunk through QC with the grid.

    Stored QC codes then say what an assimilation reading the file will use (e.g. polar
    values below -2.5 degC are flagged); QC per chunk is QC of the whole file, because
    duplicates share a time and a time never spans two chunks.
    """
    for chunk in iter_observe(world, network, progress=progress):
        yield run_qc(chunk, grid)


def make_truth_and_obs(
    config: Config,
    out_dir: Path,
    period: tuple[int, int],
    progress: Progress | None = None,
    command: str | None = None,
    finished: Callable[[dict[str, Path]], None] | None = None,
    truth: HistoricalRun | None = None,
) -> dict[str, Path]:
    """Write the historical world (truth) and its OSSE observations into ``out_dir``.

    The truth is ``config``'s synthetic world over ``period``, or ``truth``, a model's
    historical run over it (:class:`engine.world.control.HistoricalRun`). Files that already
    exist are kept (an interrupted experiment picks up where it was); ``finished(paths)`` is
    called with the files done so far after each one.
    """
    grid = io.load_grid(config.grid)
    world = truth if truth is not None else historical_world(config, grid, period)
    paths = {"world": out_dir / "world.nc", "obs": out_dir / "obs.nc"}
    if paths["world"].exists():
        check_reused_truth(paths["world"], config.world, truth)
    else:
        io.write_world(world, paths["world"], progress=_stage(progress, "truth", world.n_steps), command=command)
    if finished:
        finished({"world": paths["world"]})
    if not paths["obs"].exists():
        write_osse_observations(world, config, paths["obs"], _stage(progress, "observations", world.n_steps), command)
    if finished:
        finished(paths)
    return paths


def check_reused_truth(path: Path, spec: WorldSpec, truth: HistoricalRun | None = None) -> None:
    """An InputError unless the world file ``path`` kept from an earlier run is of ``spec``'s
    world, or of ``truth``'s model run (a folder reused with another truth would score
    against the wrong one)."""
    with io.open_fields(path) as ds:
        attrs = dict(ds.attrs)
    if truth is not None or "model" in attrs:
        wanted = truth.dataset(0, 1).attrs if truth is not None else {}
        if any(attrs.get(key) != wanted.get(key) for key in ("model", "model_files", "start_year", "run_steps")):
            raise io.InputError(
                f"{path} holds another truth ({attrs.get('model', 'world ' + str(attrs.get('seed')))}, from "
                f"{attrs.get('start_year')}) than this run's; choose another --out"
            )
        return
    kept = {"seed": attrs.get("seed"), "n_modes": attrs.get("n_modes")}
    if kept != {"seed": spec.seed, "n_modes": spec.n_modes}:
        raise io.InputError(
            f"{path} holds the truth of another world (seed {kept['seed']}, {kept['n_modes']} modes) than this "
            f"run's world {spec.name} (seed {spec.seed}, {spec.n_modes} modes); choose another --out"
        )


def write_osse_observations(
    world: ModelWorld,
    config: Config,
    out: Path,
    progress: Callable[[int], None] | None = None,
    command: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[ObservingNetwork, int]:
    """Observe ``world`` with the OSSE network of ``config`` (its denials too) into a profile
    file; returns the network and the number of measurements written.

    The one place OSSE observation files are made (CLI, dashboard, experiments). When
    ``should_stop()`` turns true the run stops with :class:`Cancelled` and writes nothing.
    """
    network = ObservingNetwork(world.grid, config.network, obs_error=config.obs_error)

    def chunks() -> Iterator[pd.DataFrame]:
        for chunk in osse_observations(world, network, world.grid, progress):
            if should_stop and should_stop():
                raise Cancelled("stopped; nothing was written")
            yield chunk

    attrs = {"source": "DeepDA OSSE", "platforms": ",".join(network.platforms)}
    return network, io.write_profiles_incremental(out, chunks(), attrs, command)


def run_methods(
    config: Config,
    methods: dict[str, str | Path],
    obs_path: Path,
    out_dir: Path,
    period: tuple[int, int],
    members: dict[str, int] | None = None,
    progress: Progress | None = None,
    command: str | None = None,
) -> dict[str, Path]:
    """Assimilate ``obs_path`` with every method {label: checkpoint or baseline name}.

    A finished analysis is reused; an interrupted one resumes from its ``.part`` file.
    """
    paths = {}
    for label, method in methods.items():
        out = out_dir / f"analysis_{label}.nc"
        if not out.exists():
            part = out.with_name(out.name + ".part")
            stage = (lambda done, total, label=label: progress(f"analysis {label}", done / total)) if progress else None
            assimilate_to_file(
                method, obs_path, out, period=period, members=(members or {}).get(label, 1), resume=part.exists(),
                progress=stage, config=config, command=command,
            )  # fmt: skip
        paths[label] = out
    return paths


# Seconds per model year of each stage on two busy CPU cores (coarse grid, one member),
# measured: they only share out the first start's one progress bar between its stages.
STAGE_SECONDS_PER_YEAR = {"truth": 0.7, "observations": 3.3, "analysis": 13.5}


def default_plan(config: Config, first_year: bool) -> list[tuple[str, tuple[int, int]]]:
    """The embedded default's parts in the order computed: (label, period); with
    ``first_year``, the first year alone first (what the dashboard shows meanwhile)."""
    period = (config.world.historical_start_year, config.world.historical_end_year)
    first = [(f"first year {period[0]}", (period[0], period[0]))] if first_year else []
    return [*first, (f"{period[0]}-{period[1]}", period)]


def default_stages(plan: list[tuple[str, tuple[int, int]]]) -> Stages:
    """One progress over every stage of every part, each weighted by its expected time."""
    weights = {}
    for label, (y0, y1) in plan:
        for stage, seconds in STAGE_SECONDS_PER_YEAR.items():
            weights[f"{stage} {label}"] = seconds * (y1 - y0 + 1)
    return Stages(weights)


def prepare_default(
    cache_dir: Path, progress: Progress | None = None, config: Config | None = None, first_year: bool = False
) -> dict[str, Path]:
    """The dashboard's embedded default: coarse historical world 1981-2020, its OSSE
    observations, and the shipped model's reanalysis, computed once into ``cache_dir``.

    ``progress(stage, fraction)`` gets the fraction of the whole computation (every stage,
    weighted by its expected time). With ``first_year``, the first year is computed whole
    first into ``cache_dir/first_year`` (with its own manifest), for the dashboard to show
    while the rest follows. Finished files are kept: a restart continues from them.
    """
    from engine.config import preset

    config = config or preset("coarse")
    model = io.shipped_model()
    # keyed by the model's creation time: a newer shipped model never reuses an old analysis
    created = str(load_checkpoint(model).provenance.get("created", ""))
    label = "deepda_" + "".join(c for c in created if c.isdigit())[:14]
    plan = default_plan(config, first_year and io.cached_default(cache_dir, model) is None)
    stages = default_stages(plan)
    paths: dict[str, Path] = {}
    for part, period in plan:
        folder = cache_dir if part == plan[-1][0] else cache_dir / io.first_start.FIRST_YEAR
        folder.mkdir(parents=True, exist_ok=True)

        def report(stage: str, fraction: float, part: str = part) -> None:
            name = f"{stage.split()[0]} {part}"  # "analysis deepda_..." -> "analysis 1981-2020"
            if progress:
                progress(name, stages.overall(name, fraction))

        # each file is in the manifest once written: the dashboard shows the first year's
        # truth within seconds, its observations and analysis as they follow
        def finished(done: dict[str, Path], folder: Path = folder) -> None:
            io.write_default_manifest(folder, done, model)

        paths = make_truth_and_obs(config, folder, period, report, finished=finished)
        analyses = run_methods(config, {label: model}, paths["obs"], folder, period, progress=report)
        paths = {**paths, "analysis": analyses[label]}
        io.write_default_manifest(folder, paths, model)
    return paths


# --- evaluation --------------------------------------------------------------------------


def truth_anomaly(truth: xr.Dataset, grid: Grid, steps_per_year: int) -> xr.DataArray:
    """Anomaly of a world file's ``thetao`` against the grid's climatology + seasonal cycle."""
    times = truth["time"].values
    year0 = pd.DatetimeIndex(times).year.min()
    doy = step_day_of_year(len(times), steps_per_year)[time_to_step(times, year0, steps_per_year) % steps_per_year]
    clim = grid.climatology[None] + grid.seasonal_anomaly(doy)
    return (
        truth["thetao"] - xr.DataArray(clim, dims=("time", "depth", "lat", "lon"), coords=truth["thetao"].coords)
    ).rename("thetao_anomaly")


def observation_error(obs_path: Path, grid: Grid, truth: xr.DataArray, steps_per_year: int) -> xr.DataArray:
    """RMSE of the super-observations against the truth by depth (observed cells only,
    area-weighted); see :func:`observed_cell_rmse`."""
    return observed_cell_rmse(obs_path, grid, truth, steps_per_year)["observations"]


def observed_cell_rmse(
    obs_path: Path,
    grid: Grid,
    truth: xr.DataArray,
    steps_per_year: int,
    estimates: dict[str, xr.DataArray] | None = None,
) -> xr.Dataset:
    """RMSE by depth at the observed cells of each step (area-weighted): of the
    super-observations (``observations``) and of each estimate, the like-for-like
    comparison of an analysis with the observation error.

    The file is read and gridded a year at a time with the assimilation's QC (grid
    included); ``estimates`` are anomalies on ``truth``'s times.
    """
    estimates = estimates or {}
    cells = ObservedCells(grid, estimates)
    steps = list(_obs_steps(obs_path, grid, truth["time"].values, steps_per_year))
    cells.add(steps, truth.values, {name: est.values for name, est in estimates.items()})
    return cells.result(truth["depth"])


def _obs_steps(obs_path: Path, grid: Grid, times: np.ndarray, steps_per_year: int) -> Iterator[Any]:
    """The gridded observations of each of ``times`` (consecutive steps), chunk by chunk."""
    from engine.observe.gridding import obs_steps_from_file

    first = int(pd.DatetimeIndex(times).year.min())
    steps = time_to_step(times, first, steps_per_year)
    return obs_steps_from_file(obs_path, grid, first, steps_per_year, int(steps[0]), len(steps))


def summary_table(analyses: dict[str, xr.Dataset], truth: xr.DataArray, grid: Grid) -> pd.DataFrame:
    """RMSE and bias by method, region, era and depth, as a flat table."""
    anomalies = {name: ds["thetao_anomaly"].sel(time=truth["time"]) for name, ds in analyses.items()}
    ds = summary.summarise(anomalies, truth, grid.weights(), eras=ERAS, regions=REGIONS, mask=grid.mask())
    return _flat_summary(ds)


def _flat_summary(ds: xr.Dataset) -> pd.DataFrame:
    table = summary.to_table(ds)
    values = table.drop(columns=["metric", "method", "region", "era"])
    return table[values.notna().any(axis=1)].reset_index(drop=True)  # eras outside the period have no rows


def _truth_blocks(
    config: Config, grid: Grid, times: np.ndarray, truth_path: Path | str | None, block_steps: int
) -> Iterator[xr.DataArray]:
    """The truth anomaly on ``times``, ``block_steps`` at a time, NaN on land: from a world
    file, or recomputed from the historical world (consecutive steps from the first year)."""
    spy = config.world.steps_per_year
    ocean = grid.mask() > 0
    if truth_path:
        world_file = io.open_fields(truth_path)
    else:
        years = pd.DatetimeIndex(times).year
        world = historical_world(config, grid, (int(years.min()), int(years.max())))
        steps = time_to_step(times, int(years.min()), spy)
    for start in range(0, len(times), block_steps):
        block = times[start : start + block_steps]
        if truth_path:
            truth = truth_anomaly(world_file.sel(time=block), grid, spy)
        else:
            values = world.anomaly(int(steps[start]), int(steps[start]) + len(block))
            coords = {"time": block, **grid.coords()}
            truth = xr.DataArray(values, dims=("time", "depth", "lat", "lon"), coords=coords, attrs={"units": "degC"})
        yield truth.where(ocean).load()


def evaluate_files(
    config: Config,
    analyses: dict[str, Path],
    out_dir: Path,
    truth_path: Path | str | None = None,
    obs_path: Path | str | None = None,
    command: str | None = None,
    block_steps: int = 73,
    twins: tuple[WorldSpec, dict[str, dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """Score analysis files and write metrics.nc, summary.md/csv and PNG figures to ``out_dir``.

    The files are read ``block_steps`` at a time (a year by default) and every score is
    pooled over the blocks (:mod:`engine.evaluate.scoring`), so memory does not grow with the period.
    ``twins`` (the truth's world and :func:`twin_records`) names the truth and the training
    worlds in every output: a ``truth`` and a ``trained_on`` column, attributes, a section.
    """
    from engine.evaluate import figures

    grid = io.load_grid(config.grid)
    keep = ("thetao_anomaly", "thetao_spread", "thetao_anomaly_member")  # members: the CRPS
    checked = check_evaluation(config, grid, analyses, truth_path)
    opened = {name: d[[v for v in keep if v in d]] for name, d in checked.items()}
    times = next(iter(opened.values()))["time"].values
    years = pd.DatetimeIndex(times).year
    period = (int(years.min()), int(years.max()))
    methods = list(analyses)
    scores = OsseScores(grid, methods, with_observations=bool(obs_path))
    regional = summary.RegionEraScores(
        methods, grid.coords()["lat"], grid.coords()["lon"], grid.weights(), ERAS, REGIONS, grid.mask()
    )
    obs_steps = _obs_steps(Path(obs_path), grid, times, config.world.steps_per_year) if obs_path else None
    for truth in _truth_blocks(config, grid, times, truth_path, block_steps):
        block = {name: d.sel(time=truth["time"]).load() for name, d in opened.items()}
        scores.add(block, truth, list(itertools.islice(obs_steps, truth.sizes["time"])) if obs_steps else ())
        regional.add({name: d["thetao_anomaly"] for name, d in block.items()}, truth)
    ds = scores.result()
    table = _flat_summary(regional.result())
    twin_text = ""
    if twins:
        ds.attrs.update(twin_attributes(*twins))
        table["truth"] = twins[0].name
        table["trained_on"] = table["method"].map(lambda m: twins[1].get(m, {}).get("trained_on", ""))
        twin_text = twin_markdown(*twins)
    top = summary.headline(ds, methods)
    depth_table = summary.rmse_by_depth_table(ds, methods)
    written = {
        "metrics": out_dir / "metrics.nc",
        "summary_md": out_dir / "summary.md",
        "summary_csv": out_dir / "summary.csv",
    }
    io.write_dataset(ds, written["metrics"], command)
    io.write_text(written["summary_csv"], table.to_csv(index=False))
    text = f"# OSSE summary {period[0]}-{period[1]}\n\n{twin_text}## Headline\n\n{summary.as_markdown(top)}\n\n## RMSE by depth (degC)\n\n{summary.as_markdown(depth_table)}\n"
    io.write_text(written["summary_md"], text)
    drawn = figures.all_figures(ds, methods)
    for stem, fig in drawn.items():
        written[stem] = out_dir / f"{stem}.png"
        io.write_figure(fig, written[stem])
    figures.close(drawn)
    written["headline"] = top
    return written
