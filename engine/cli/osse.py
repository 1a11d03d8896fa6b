"""``deepda osse``: the headline experiment, truth from a synthetic world or a model's run."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from engine import io
from engine.cli.common import (
    MEMBERS,
    common_options,
    default_model,
    load_config,
    network_period,
    new_folder,
    out_dir,
    parse_period,
    progress_bar,
    truth_config,
)
from engine.config import NETWORK_YEARS, Config, WorldSpec
from engine.da.registry import METHODS


def add_osse(sub: Any) -> None:
    p = sub.add_parser("osse", help="the headline experiment end to end: truth, observations, every method, scores")
    common_options(p)
    p.add_argument("--period", help="years, e.g. 1981-2020 (default: the whole historical run)")
    p.add_argument("--model", help="checkpoint (default: the shipped one)")
    p.add_argument(
        "--methods",
        help=f"comma-separated, from {', '.join(METHODS)} (default all; all but kf with --truth)",
    )
    p.add_argument("--members", type=MEMBERS, default=1, help="DeepDA ensemble members (default 1)")
    truth = p.add_mutually_exclusive_group()
    truth.add_argument(
        "--truth-config",
        metavar="OTHER.toml",
        help="take the truth from the [world] of this config (a fraternal twin, e.g. assets/world_c.toml): "
        "the historical run and the Kalman filter are that world's, the model keeps what it was trained on",
    )
    truth.add_argument(
        "--truth",
        metavar="[NAME=]GLOB",
        help="take the truth from a model's historical run in CMIP6 layout (thetao files, a folder or a "
        "pattern), regridded to the preset once and cached; its step length is the run's",
    )
    p.add_argument("--out", required=True, help="output folder (created; reruns reuse finished files)")
    p.set_defaults(func=run_osse)


def model_truth(pattern: str, config: Config, period_text: str | None, cache: str | None = None) -> tuple[Any, Config]:
    """The model's historical run of ``--truth`` over the OSSE period, and ``config`` at its
    step length. Regridded once (cached, as a control run for training is)."""
    from engine.io.cmip import open_thetao
    from engine.io.control import open_control_run, regrid_control_run
    from engine.train.control_data import parse_control
    from engine.world.control import HistoricalRun

    ((name, glob),) = parse_control([pattern])
    grid = io.load_grid(config.grid)
    with open_thetao(glob) as native:  # its years and step length, before regridding
        whole = HistoricalRun(native, grid, name)
    spy, asked = whole.steps_per_year, config.world.steps_per_year
    if asked not in (spy, WorldSpec.steps_per_year):
        raise io.InputError(
            f"--truth {pattern}: the run has {spy} steps a year and the config asks for {asked}; "
            f"set [world] steps_per_year = {spy} or leave it out"
        )
    run_years = (whole.start_year, whole.start_year + whole.years - 1)
    lo, hi = max(NETWORK_YEARS[0], run_years[0]), min(NETWORK_YEARS[1], run_years[1])
    if lo > hi:
        raise io.InputError(
            f"--truth {pattern}: the run covers {run_years[0]}-{run_years[1]}, outside the observing networks' "
            f"years {NETWORK_YEARS[0]}-{NETWORK_YEARS[1]}; give a historical run that overlaps them"
        )
    what = "the years both the truth's run and the OSSE networks cover"
    period = parse_period(period_text, (lo, hi), what) if period_text else (lo, hi)
    with progress_bar(1, "osse: regridding the truth", unit="step") as bar:

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.update(done)

        path, _ = regrid_control_run(glob, grid, cache=cache, progress=report)
    truth = HistoricalRun(open_control_run(path), grid, name, years=period)
    return truth, replace(config, world=replace(config.world, steps_per_year=spy))


def _methods(args: argparse.Namespace, with_kf: bool) -> dict[str, Any]:
    names = args.methods.split(",") if args.methods else [m for m in METHODS if with_kf or m != "kf"]
    methods = {}
    for name in [m for m in names if m]:
        if name not in METHODS:
            raise io.InputError(f"--methods: unknown method {name!r}; choose from {', '.join(METHODS)}")
        if name == "kf" and not with_kf:
            raise io.InputError(
                "--methods kf: the Kalman filter is built in the truth's world modes, which a model's run "
                "(--truth) has not; leave kf out"
            )
        methods[name] = (args.model or default_model()) if name == "deepda" else name
    return methods


def model_step_length(config: Config, methods: dict[str, Any], fixed: bool) -> Config:
    """``config`` at its DeepDA checkpoint's step length (a monthly model gets a monthly
    truth, observations and baselines), unless ``fixed`` (the truth's run set it) or the
    config asks for another: then one line naming the mismatch."""
    from engine.train.checkpoint import load_checkpoint

    if "deepda" not in methods:
        return config
    spy, asked = load_checkpoint(methods["deepda"]).config.world.steps_per_year, config.world.steps_per_year
    if spy == asked:
        return config
    if fixed or asked != WorldSpec.steps_per_year:
        by = "the truth's run has" if fixed else "the config asks for"
        raise io.InputError(
            f"--model {methods['deepda']} was trained on {spy} steps a year and {by} {asked}; "
            f"give a model trained at {asked} steps a year"
        )
    return replace(config, world=replace(config.world, steps_per_year=spy))


def run_osse(args: argparse.Namespace) -> None:
    from engine.osse import evaluate_files, make_truth_and_obs, run_methods
    from engine.twins import ModelTruth, twin_records

    out_dir(args.out, create=False)
    config, truth, truth_name = load_config(args), None, None
    methods = _methods(args, with_kf=not args.truth)
    if args.truth:
        truth, config = model_truth(args.truth, config, args.period)
        period = (truth.start_year, truth.start_year + truth.years - 1)
        truth_name = ModelTruth(truth.name, truth.describe())
    else:
        config = truth_config(config, args.truth_config)
        period = network_period(config, args.period)
    config = model_step_length(config, methods, fixed=truth is not None)
    bar = progress_bar(100, "osse", unit="%")

    def report(stage: str, fraction: float) -> None:
        bar.set_description(f"osse: {stage}")
        bar.n = int(100 * fraction)
        bar.refresh()

    described = truth_name or config.world
    twins = (described, twin_records(described, methods))
    if truth is not None and twins[1].get("deepda", {}).get("twin") == "identical":
        # the truth is a run of the model DeepDA learned: its own climatology is the truth's
        config = replace(config, assimilate=replace(config.assimilate, climatology="model"))
    with new_folder(args.out) as out:
        paths = make_truth_and_obs(config, out, period, report, args.command, truth=truth)
        analyses = run_methods(
            config, methods, paths["obs"], out, period, {"deepda": args.members}, report, args.command
        )
        bar.close()
        written = evaluate_files(config, analyses, out, paths["world"], paths["obs"], args.command, twins=twins)
    print(written["headline"].to_string(index=False))
