"""Verbs that train and run models: ``train`` and ``assimilate``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import io
from engine.cli.common import (
    MEMBERS,
    common_options,
    default_model,
    load_config,
    parse_period,
    progress_bar,
    whole,
)
from engine.da.registry import BASELINES
from engine.observe.profiles import PLATFORMS
from engine.observe.withhold import Withholding

if TYPE_CHECKING:
    from engine.config import Config


def add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train the DeepDA generator on the control run (GAN, recurrent cycling)")
    common_options(p)
    p.add_argument("--out", required=True, help="checkpoint file (written every N steps, on Ctrl-C and at the end)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument(
        "--steps",
        type=whole(0, 10_000_000),
        help="windows of the one-step phase (default from the config); [train] finetune_steps more follow",
    )
    p.add_argument(
        "--init",
        metavar="MODEL.pt",
        help="start from this checkpoint's generator (same model and grid; [model] offset_patterns may grow) "
        "instead of random weights, e.g. to fine-tune the shipped model; kept unless training beats its validation RMSE",
    )
    p.add_argument(
        "--worlds",
        nargs="+",
        metavar="CONFIG",
        help="train on the [world] of each of these configs too (e.g. assets/world_b.toml), beside the config's "
        "own: chains drawn evenly from every world's control run (default: [train] worlds)",
    )
    p.add_argument("--log", help="CSV loss log (default: OUT with .log.csv)")
    p.add_argument(
        "--obs",
        metavar="OBS.nc",
        help="fine-tune the --init model on these real observations instead of the model world "
        "(self-supervised: profiles kept out of its input are the targets; [learn] settings)",
    )
    p.add_argument("--period", help="with --obs: the years learned from, e.g. 2005-2012 (default: the years observed)")
    p.add_argument(
        "--control",
        action="append",
        metavar="[NAME=]GLOB",
        help="train on this model's control run in CMIP6 layout (thetao files, a folder or a pattern) instead of "
        "the synthetic world; regridded to the preset once and cached (also [train] control in the config); "
        "repeat it to train on several models at once, each chain cycling through one of them",
    )
    p.set_defaults(func=run_train)


def _training_config(args: argparse.Namespace) -> Config:
    """The run's config with --steps, --worlds and --control applied, checked to fit in memory."""
    from engine.memory import check_fits, train_bytes
    from engine.train.trainer import with_steps

    steps = args.steps
    if args.resume and steps is None:  # the run goes on as it was started (e.g. --steps 0 for a fine-tune)
        from engine.train.checkpoint import load_checkpoint

        steps = load_checkpoint(args.out).config.train.steps
    config = with_steps(load_config(args), steps)
    if args.worlds:
        config = replace(config, train=replace(config.train, worlds=tuple(args.worlds)))
    if args.control:
        config = replace(config, train=replace(config.train, control=tuple(args.control)))
    if config.train.control and config.train.worlds:
        raise io.InputError(
            "[train] control and worlds together: train on CMIP control runs or on synthetic worlds, not both yet"
        )
    if not config.train.control:
        check_fits(
            train_bytes(config), f"training on the {config.grid.name} grid ({config.train.control_years} control years)",
            "lower [train] control_years, window or batch_size, or train on a coarser grid",
        )  # fmt: skip
    return config


def _training_samples(config: Config, grid: Any) -> tuple[Any, Config, dict[str, Any]]:
    """Training windows from CMIP control runs (regridded once, cached; the config then has
    their steps a year) or from the synthetic world(s); the sources for the provenance."""
    from engine.train.samples import TrainingSamples

    if not config.train.control:
        return TrainingSamples.from_config(config, grid, training_worlds(config)), config, {}
    from engine.train.control_data import control_samples

    bars: list[Any] = []  # made at the first chunk: a cached or refused run prints none

    def regridded(steps: int, total: int) -> None:
        if not bars:
            bars.append(progress_bar(total, "regrid control run"))
        bars[0].update(steps)

    try:
        return control_samples(config, grid, progress=regridded)
    finally:
        for bar in bars[:1]:
            bar.close()


def run_train(args: argparse.Namespace) -> None:
    from engine.train.distributed import init_distributed
    from engine.train.trainer import train

    io.check_outputs_distinct({"--init": args.init, "--config": args.config}, {"--out": args.out, "--log": args.log})
    io.check_writable(args.out)
    if args.resume and not Path(args.out).exists():
        raise io.InputError(f"--resume needs an existing checkpoint, and {args.out} does not exist; drop --resume")
    if not args.resume and Path(args.out).exists():
        raise io.InputError(f"{args.out} exists; add --resume to continue it or choose another --out")
    if args.steps is not None and args.steps < (0 if args.init else 1):
        raise io.InputError(f"--steps {args.steps} must be at least {0 if args.init else 1}")
    if args.init and args.resume:
        raise io.InputError("--init starts a new run and --resume continues one; give only one of them")
    if args.obs or args.period:
        from engine.cli.learn import run_learn

        return run_learn(args)
    config = _training_config(args)
    rank = init_distributed()
    grid = io.load_grid(config.grid)
    provenance = {"command": args.command, **({"init": str(args.init)} if args.init else {})}
    samples, config, sources = _training_samples(config, grid)
    provenance.update(sources)
    init = None
    if args.init:
        from engine.train.checkpoint import initial_weights

        init = initial_weights(args.init, config, grid)
    log_path = args.log or str(Path(args.out).with_suffix("")) + ".log.csv"
    if args.resume and rank == 0:
        from engine.train.checkpoint import load_checkpoint

        io.trim_csv_log(log_path, int(load_checkpoint(args.out).training.get("step", 0)))
    total = config.train.steps + config.train.finetune_steps
    bar = progress_bar(total, "train", unit="window") if rank == 0 else _Silent()  # once, not once a rank
    bar.update(0)

    def report(row: dict[str, float]) -> None:
        if rank == 0:
            io.append_csv_row(log_path, row)
        bar.n = int(row["step"])
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k in ("g_mse", "d_loss", "val_rmse")}, refresh=True)

    try:
        state = train(config, grid, samples, args.out, args.resume, provenance, progress=report, init=init)
    except KeyboardInterrupt:
        bar.close()
        print(f"deepda: interrupted; checkpoint saved in {args.out}; continue with --resume", file=sys.stderr)
        raise SystemExit(130) from None
    bar.close()
    if rank == 0:
        print(f"wrote {args.out}: {state.step} steps, best validation RMSE {state.best_val_rmse:.4f} degC")


class _Silent:
    """The progress bar of the ranks other than 0 under torchrun: rank 0 prints for all."""

    n = 0

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, values: dict[str, Any] | None = None, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def training_worlds(config: Any) -> list[Any]:
    """The [world] of each config in ``config.train.worlds``, checked to train beside
    ``config.world`` (same step, a name of its own); one line naming the problem otherwise."""
    worlds, names = [], [config.world.name]
    for path in config.train.worlds:
        try:
            world = load_config(argparse.Namespace(config=path, preset=None)).world
        except io.InputError as err:
            raise io.InputError(f"--worlds: {err}") from None
        if world.steps_per_year != config.world.steps_per_year:
            raise io.InputError(
                f"--worlds {path}: its world has {world.steps_per_year} steps a year and the run's "
                f"{config.world.steps_per_year}; set [world] steps_per_year = {config.world.steps_per_year} in {path}"
            )
        if world.name in names:
            raise io.InputError(
                f"--worlds {path}: world name {world.name!r} is taken by another training world; "
                f'give its [world] a name of its own (name = "...")'
            )
        worlds.append(world)
        names.append(world.name)
    return worlds


def add_assimilate(sub: Any) -> None:
    p = sub.add_parser("assimilate", help="cycle DeepDA (or a baseline) through an observation file")
    common_options(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--model", help="checkpoint (default: the shipped assets/deepda_coarse.pt)")
    group.add_argument("--method", choices=tuple(BASELINES), help="a classical baseline instead of DeepDA")
    p.add_argument("--obs", required=True, help="observation file (CF DSG profile netCDF from 'deepda observe')")
    p.add_argument("--period", help="years to analyse, e.g. 1981-2020 (default: the years observed)")
    p.add_argument("--members", type=MEMBERS, default=1, help="ensemble members (default 1)")
    p.add_argument("--save-members", action="store_true", help="also write every member")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (OUT.part)")
    p.add_argument(
        "--withhold",
        metavar="FRACTION|floats:FRACTION|PLATFORMS",
        help="keep whole profiles out to score the run on: a share of them (e.g. 0.1), a share of the Argo "
        "floats, each whole (floats:0.2), and/or platforms (e.g. argo,mooring), written to OUT's stem + .withheld.nc",
    )
    p.add_argument("--withhold-seed", type=int, default=0, help="seed of the withheld share (default 0)")
    p.add_argument(
        "--running-mean",
        metavar="STEPS",
        type=float,
        help="cycle around a running mean of the analyses (e-folding STEPS, e.g. 73: a year of pentads) instead of "
        "the climatology, for real observations whose climatology is biased for the period; 0: the climatology "
        "(default: [assimilate] running_mean_steps, 0)",
    )
    p.add_argument("--out", required=True, help="output analysis netCDF")
    p.set_defaults(func=run_assimilate)


def parse_withhold(text: str | None, seed: int) -> Withholding | None:
    """``--withhold 0.1``, ``--withhold floats:0.2``, ``--withhold argo,xbt`` or together (``0.1,mooring``)."""
    if not text:
        return None
    fraction, floats, platforms = 0.0, 0.0, []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        try:
            if item.startswith("floats:"):
                floats = float(item.removeprefix("floats:"))
            else:
                fraction = float(item)
        except ValueError:
            if item.startswith("floats:"):
                raise io.InputError(
                    f"--withhold {item}: give the share of floats as a number, e.g. floats:0.2"
                ) from None
            platforms.append(item)
    unknown = [p for p in platforms if p not in PLATFORMS]
    if unknown:
        raise io.InputError(f"--withhold {','.join(unknown)}: unknown platform; choose from {', '.join(PLATFORMS)}")
    for share in (fraction, floats):
        if not 0.0 <= share < 1.0:
            raise io.InputError(f"--withhold {share:g}: the withheld share must be at least 0 and below 1, e.g. 0.1")
    return Withholding(fraction, tuple(platforms), seed, floats)


def run_assimilate(args: argparse.Namespace) -> None:
    from engine.da.base import Cancelled
    from engine.da.reanalysis import assimilate_to_file, withheld_path

    withhold = parse_withhold(args.withhold, args.withhold_seed)
    inputs = {"--obs": args.obs, "--model": args.model, "--config": args.config}
    outputs = {"--out": args.out, "--out's unfinished run": io.partial_path(args.out)}
    if withhold is not None:
        outputs["--withhold's file"] = withheld_path(args.out)
    io.check_outputs_distinct(inputs, outputs)
    io.check_writable(args.out)
    method = args.method or args.model or default_model()
    period = parse_period(args.period) if args.period else None
    bar = progress_bar(0, "assimilate")

    def report(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        path = assimilate_to_file(
            method, args.obs, args.out, period=period, members=args.members, resume=args.resume, progress=report,
            config=_assimilate_config(args), command=args.command, save_members=args.save_members, withhold=withhold,
        )  # fmt: skip
    except (KeyboardInterrupt, Cancelled):
        bar.close()
        print(f"deepda: interrupted; finished steps kept in {args.out}.part; continue with --resume", file=sys.stderr)
        raise SystemExit(130) from None
    bar.close()
    print(f"wrote {path}")


def _assimilate_config(args: argparse.Namespace) -> Config:
    """The config with ``--running-mean`` applied (checked by the config's own rules)."""
    config = load_config(args)
    if args.running_mean is None:
        return config
    try:
        return replace(config, assimilate=replace(config.assimilate, running_mean_steps=args.running_mean))
    except io.InputError as err:
        raise io.InputError(f"--running-mean {args.running_mean:g}: {err}") from None


def add_calibrate(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate", help="tune a model's ensemble inflation on held-out control years (stored in the checkpoint)"
    )
    p.add_argument("--model", help="checkpoint to calibrate (default: the shipped one)")
    p.add_argument(
        "--out", help="write the calibrated checkpoint here (default: --model in place; required without --model)"
    )
    p.add_argument("--members", type=whole(2, 1000), default=10, help="ensemble size to calibrate for (default 10)")
    p.add_argument(
        "--obs",
        metavar="OBS.nc",
        help="instead: fit the [obs_error] heave and floor to the departures of --analysis from these "
        "observations (Desroziers); --out is then the config file written",
    )
    p.add_argument("--analysis", metavar="ANALYSIS.nc", help="with --obs: an analysis of those observations")
    common_options(p)
    p.set_defaults(func=run_calibrate)


def run_fit_obs_error(args: argparse.Namespace) -> None:
    from engine.realdata import fit_obs_error

    if not (args.analysis and args.out):
        raise io.InputError("--obs fits the observation errors: give --analysis ANALYSIS.nc and --out ERRORS.toml")
    if args.model:
        raise io.InputError("--model calibrates an ensemble; --obs fits observation errors: give one of them")
    io.check_outputs_distinct({"--obs": args.obs, "--analysis": args.analysis}, {"--out": args.out})
    io.check_writable(args.out)
    config = load_config(args)
    fitted, levels = fit_obs_error(args.analysis, args.obs, config)
    print(levels.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    io.write_config(replace(config, obs_error=fitted), args.out)
    print(f"wrote {args.out}: [obs_error] heave_m = {fitted.heave_m:.1f} m (was {config.obs_error.heave_m:g} m); "
          f"assimilate again with --config {args.out}")  # fmt: skip


def run_calibrate(args: argparse.Namespace) -> None:
    from engine.da.calibrate import tune_inflation

    if args.obs or args.analysis:
        if not args.obs:
            raise io.InputError("--analysis goes with --obs (fitting observation errors); add --obs OBS.nc")
        return run_fit_obs_error(args)
    from engine.train.checkpoint import load_checkpoint, update_ensemble_calibration
    from engine.train.samples import TrainingSamples

    path = Path(args.model) if args.model else default_model()
    out = Path(args.out) if args.out else path
    if args.members < 2:
        raise io.InputError(f"--members {args.members}: an ensemble needs at least 2 members")
    if not args.model and not args.out:
        # rewriting the shipped model unasked would stale every analysis cached from it (the dashboard's default)
        raise io.InputError(
            "calibrate the shipped model into a copy: give --out NEW.pt (or --model M.pt to calibrate M.pt)"
        )
    checkpoint = load_checkpoint(path)
    io.check_writable(out)
    config = checkpoint.config
    grid = io.load_grid(config.grid)
    checkpoint.check_grid(grid)
    samples = TrainingSamples.from_config(config, grid)

    key = "additive_inflation" if checkpoint.generator.reduced is not None else "inflation"  # see tune_inflation
    knob = key.replace("_", " ")

    def report(factor: float, ratio: float) -> None:
        print(f"{knob} {factor:.3f}: held-out spread/RMSE {ratio:.3f}", file=sys.stderr)

    calibration = tune_inflation(checkpoint, samples, members=args.members, progress=report)
    update_ensemble_calibration(path, {**calibration, "command": args.command}, out)
    print(
        f"wrote {knob} {calibration[key]} into {out} "
        f"(held-out spread/RMSE {calibration['held_out_spread_skill']}, target {calibration['target_spread_skill']})"
    )
