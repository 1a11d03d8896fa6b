"""``deepda``: the command line. argparse -> config -> engine functions; no logic of its own.

Every user error ends as one line on stderr and exit code 2 (argparse's usage dump is
folded into one line too); Ctrl-C ends with exit code 130 and no partial output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from engine import io
from engine.config import PRESET_NAMES, Config, preset

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise io.InputError(f"{message} (see '{self.prog} --help')")


def progress_bar(total: int, desc: str, unit: str = "step") -> Any:
    """A tqdm bar on stderr; silent when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=None, file=sys.stderr, dynamic_ncols=True)


def parse_period(text: str) -> tuple[int, int]:
    """'1981-2020' -> (1981, 2020); one year 'YYYY' -> (YYYY, YYYY)."""
    try:
        parts = [int(p) for p in text.split("-")]
    except ValueError:
        raise io.InputError(f"period {text!r} is not YEAR or YEAR-YEAR, e.g. 1981-2020") from None
    first, last = (parts[0], parts[-1]) if len(parts) in (1, 2) else (0, -1)
    if last < first:
        raise io.InputError(f"period {text!r} must be YEAR or FIRST-LAST with FIRST <= LAST, e.g. 1981-2020")
    return first, last


def load_config(args: argparse.Namespace) -> Config:
    """The run's config: --config FILE if given, else the --preset; flags override."""
    config = io.read_config(args.config) if getattr(args, "config", None) else preset(args.preset)
    if getattr(args, "seed", None) is not None:
        config = replace(config, world=replace(config.world, seed=args.seed))
    return config


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=PRESET_NAMES, default="coarse", help="grid preset (default coarse)")
    parser.add_argument("--config", help="TOML or YAML config file (overrides --preset)")


# --- verbs ---------------------------------------------------------------------------------


def add_world(sub: Any) -> None:
    p = sub.add_parser("world", help="generate a model-world run (truth) as CF netCDF")
    _common(p)
    p.add_argument("--run", choices=("control", "historical"), default="control")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--years", type=int, help="control run length in years (default 10)")
    group.add_argument("--period", help="historical period, e.g. 1981-2020 (default: the whole run)")
    p.add_argument("--seed", type=int, help="world seed (default from the config)")
    p.add_argument("--out", required=True, help="output netCDF file")
    p.set_defaults(func=run_world)


def make_world(config: Config, run: str, years: int | None, period: str | None) -> Any:
    """Build the grid and the ModelWorld a CLI verb asked for."""
    from engine.grid import build_grid
    from engine.world import ModelWorld

    grid = build_grid(config.grid, io.load_geography())
    steps = config.world.steps_per_year
    if run == "control":
        if period:
            raise io.InputError("--period is for --run historical; use --years N for a control run")
        n_years = 10 if years is None else years
        if n_years < 1:
            raise io.InputError(f"--years {n_years} must be at least 1")
        return ModelWorld(grid, config.world, run="control", n_steps=n_years * steps)
    if years is not None:
        raise io.InputError("--years is for --run control; use --period FIRST-LAST for a historical run")
    first, last = (
        parse_period(period) if period else (config.world.historical_start_year, config.world.historical_end_year)
    )
    lo, hi = config.world.historical_start_year, config.world.historical_end_year
    if first < lo or last > hi:
        raise io.InputError(f"period {first}-{last} is outside the historical run {lo}-{hi}; choose years within it")
    return ModelWorld(
        grid, config.world, run="historical", n_steps=(last - first + 1) * steps, start_year=first, oni=io.read_oni()
    )


def run_world(args: argparse.Namespace) -> None:
    io.check_writable(args.out)
    world = make_world(load_config(args), args.run, args.years, args.period)
    with progress_bar(world.n_steps, f"world {world.run}") as bar:
        io.write_world(world, args.out, progress=bar.update, command=args.command)
    print(f"wrote {args.out}: {world.run} run, {world.n_steps} steps from year {world.start_year}")


def add_observe(sub: Any) -> None:
    p = sub.add_parser("observe", help="OSSE observations of the model world, or read a real observation file")
    _common(p)
    p.add_argument("--run", choices=("historical",), default="historical", help="world run observed")
    p.add_argument("--network", choices=("historical",), default="historical", help="observing network history")
    p.add_argument("--period", help="years observed, e.g. 1981-2020 (default: the whole run)")
    p.add_argument("--deny", default="", help="platforms switched off, e.g. argo,xbt (denial experiment)")
    p.add_argument("--seed", type=int, help="world seed (default from the config)")
    p.add_argument("--read", metavar="FILE", help="read a real observation file instead of simulating")
    p.add_argument("--format", choices=("dsg", "en4", "argo", "csv"), help="format of --read (default: by suffix)")
    p.add_argument("--columns", help="CSV column mapping, e.g. time=date,temperature=temp_c")
    p.add_argument("--counts", action="store_true", help="print profiles per year and platform, write nothing")
    p.add_argument("--out", help="output profile file (CF DSG netCDF, or CSV by suffix)")
    p.set_defaults(func=run_observe)


def _network(config: Config, deny: str) -> Any:
    from engine.observing import ObservingNetwork
    from engine.profiles import PLATFORMS

    denied = tuple(p for p in deny.split(",") if p)
    unknown = [p for p in denied if p not in PLATFORMS[:-1]]
    if unknown:
        raise io.InputError(f"--deny {','.join(unknown)}: unknown platform; choose from {', '.join(PLATFORMS[:-1])}")
    grid = None
    from engine.grid import build_grid

    grid = build_grid(config.grid, io.load_geography())
    return ObservingNetwork(grid, replace(config.network, deny=denied))


def run_observe(args: argparse.Namespace) -> None:
    if args.read:
        return _read_observations(args)
    config = load_config(args)
    if args.counts:
        from engine.observing import yearly_counts

        first, last = parse_period(args.period) if args.period else (1981, 2020)
        counts = yearly_counts(_network(config, args.deny), range(first, last + 1), config.world.steps_per_year)
        print(counts.to_string())
        return
    if not args.out:
        raise io.InputError("--out is required (or --counts to print the yearly counts only)")
    from engine.observing import iter_observe

    io.check_writable(args.out)
    network = _network(config, args.deny)
    world = make_world(config, "historical", None, args.period)
    with progress_bar(world.n_steps, "observe") as bar:
        chunks = iter_observe(world, network, progress=bar.update)
        rows = io.write_profiles_incremental(args.out, chunks, {"source": "DeepDA OSSE"}, args.command)
    print(f"wrote {args.out}: {rows} measurements, platforms {','.join(network.platforms)}")


def _read_observations(args: argparse.Namespace) -> None:
    from engine.grid import build_grid

    if not args.out:
        raise io.InputError("--out is required with --read")
    io.check_writable(args.out)
    columns = None
    if args.columns:
        try:
            columns = dict(item.split("=", 1) for item in args.columns.split(","))
        except ValueError:
            raise io.InputError(f"--columns {args.columns!r} must look like time=date,temperature=temp_c") from None
    config = load_config(args)
    grid = build_grid(config.grid, io.load_geography())
    table, summary = io.open_observations(args.read, args.format, columns=columns, grid=grid, period=args.period)
    print(summary.to_string(index=False))
    if str(args.out).endswith(".csv"):
        io.write_profiles_csv(table, args.out)
    else:
        io.write_profiles(table, args.out, {"source": str(args.read)})
    print(f"wrote {args.out}: {len(table)} measurements, {int((table['qc'] == 0).sum())} good (flagged rows kept)")


def add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train the DeepDA generator on the control run (GAN, recurrent cycling)")
    _common(p)
    p.add_argument("--out", required=True, help="checkpoint file (written every N steps, on Ctrl-C and at the end)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--steps", type=int, help="optimiser steps (default from the config)")
    p.add_argument("--log", help="CSV loss log (default: OUT with .log.csv)")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> None:
    from engine.grid import build_grid
    from engine.observing import ObservingNetwork
    from engine.samples import TrainingSamples
    from engine.train import init_distributed, train, with_steps
    from engine.world import ModelWorld

    io.check_writable(args.out)
    if args.resume and not Path(args.out).exists():
        raise io.InputError(f"--resume needs an existing checkpoint, and {args.out} does not exist; drop --resume")
    if not args.resume and Path(args.out).exists():
        raise io.InputError(f"{args.out} exists; add --resume to continue it or choose another --out")
    if args.steps is not None and args.steps < 1:
        raise io.InputError(f"--steps {args.steps} must be at least 1")
    config = with_steps(load_config(args), args.steps)
    rank = init_distributed()
    grid = build_grid(config.grid, io.load_geography())
    world = ModelWorld(
        grid, config.world, run="control", n_steps=config.train.control_years * config.world.steps_per_year
    )
    samples = TrainingSamples(config, grid, world, ObservingNetwork(grid, config.network))
    log_path = args.log or str(Path(args.out).with_suffix("")) + ".log.csv"
    bar = progress_bar(config.train.steps, "train", unit="window")
    bar.update(0)

    def report(row: dict[str, float]) -> None:
        if rank == 0:
            io.append_csv_row(log_path, row)
        bar.n = int(row["step"])
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k in ("g_mse", "d_loss", "val_rmse")}, refresh=True)

    try:
        state = train(config, grid, samples, args.out, args.resume, {"command": args.command}, progress=report)
    except KeyboardInterrupt:
        bar.close()
        print(f"deepda: interrupted; checkpoint saved in {args.out}; continue with --resume", file=sys.stderr)
        raise SystemExit(130) from None
    bar.close()
    if rank == 0:
        print(f"wrote {args.out}: {state.step} steps, best validation RMSE {state.best_val_rmse:.4f} degC")


def add_assimilate(sub: Any) -> None:
    p = sub.add_parser("assimilate", help="cycle DeepDA (or a baseline) through an observation file")
    _common(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--model", help="checkpoint (default: the shipped assets/deepda_coarse.pt)")
    group.add_argument("--method", choices=BASELINE_NAMES, help="a classical baseline instead of DeepDA")
    p.add_argument("--obs", required=True, help="observation file (CF DSG profile netCDF from 'deepda observe')")
    p.add_argument("--period", help="years to analyse, e.g. 1981-2020 (default: the years observed)")
    p.add_argument("--members", type=int, default=1, help="ensemble members (default 1)")
    p.add_argument("--save-members", action="store_true", help="also write every member")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run (OUT.part)")
    p.add_argument("--out", required=True, help="output analysis netCDF")
    p.set_defaults(func=run_assimilate)


BASELINE_NAMES = ("oi", "kf", "persistence", "climatology")


def default_model() -> Path:
    """The shipped coarse checkpoint."""
    return io.assets_dir() / "deepda_coarse.pt"


def run_assimilate(args: argparse.Namespace) -> None:
    from engine.assimilate import Cancelled, assimilate_to_file

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
            config=load_config(args), command=args.command, save_members=args.save_members,
        )  # fmt: skip
    except (KeyboardInterrupt, Cancelled):
        bar.close()
        print(f"deepda: interrupted; finished steps kept in {args.out}.part; continue with --resume", file=sys.stderr)
        raise SystemExit(130) from None
    bar.close()
    print(f"wrote {path}")


def add_evaluate(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="score analyses against the OSSE truth: metrics netCDF, tables, figures")
    _common(p)
    p.add_argument("--analysis", required=True, nargs="+", help="analysis file(s); label=FILE names a method")
    p.add_argument("--truth", help="world file with the truth (default: regenerate the historical run)")
    p.add_argument("--obs", help="observation file, to add the observation-error line")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.set_defaults(func=run_evaluate)


def _labelled(items: list[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        label, _, path = item.rpartition("=")
        path = Path(path)
        out[label or path.stem.removeprefix("analysis_")] = path
    return out


def run_evaluate(args: argparse.Namespace) -> None:
    from engine.osse import evaluate_files

    out = _out_dir(args.out)
    config = load_config(args)
    written = evaluate_files(config, _labelled(args.analysis), out, args.truth, args.obs, args.command)
    print(written["headline"].to_string(index=False))
    print(f"wrote {', '.join(str(p) for k, p in written.items() if k != 'headline')}")


def _out_dir(path: str) -> Path:
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise io.InputError(f"--out {folder} is a file; give a folder")
    if not folder.parent.is_dir():
        raise io.InputError(f"--out {folder}: folder {folder.parent} does not exist; create it first")
    folder.mkdir(exist_ok=True)
    return folder


def add_osse(sub: Any) -> None:
    p = sub.add_parser("osse", help="the headline experiment end to end: truth, observations, every method, scores")
    _common(p)
    p.add_argument("--period", help="years, e.g. 1981-2020 (default: the whole historical run)")
    p.add_argument("--model", help="checkpoint (default: the shipped one)")
    p.add_argument("--methods", default="deepda,oi,kf,persistence,climatology", help="comma-separated methods")
    p.add_argument("--members", type=int, default=1, help="DeepDA ensemble members (default 1)")
    p.add_argument("--out", required=True, help="output folder (created; reruns reuse finished files)")
    p.set_defaults(func=run_osse)


def run_osse(args: argparse.Namespace) -> None:
    from engine.osse import evaluate_files, make_truth_and_obs, run_methods

    out = _out_dir(args.out)
    config = load_config(args)
    period = (
        parse_period(args.period)
        if args.period
        else (config.world.historical_start_year, config.world.historical_end_year)
    )
    methods = {}
    for name in [m for m in args.methods.split(",") if m]:
        if name not in ("deepda", *BASELINE_NAMES):
            raise io.InputError(f"--methods: unknown method {name!r}; choose from deepda, {', '.join(BASELINE_NAMES)}")
        methods[name] = (args.model or default_model()) if name == "deepda" else name
    bar = progress_bar(100, "osse", unit="%")

    def report(stage: str, fraction: float) -> None:
        bar.set_description(f"osse: {stage}")
        bar.n = int(100 * fraction)
        bar.refresh()

    paths = make_truth_and_obs(config, out, period, report, args.command)
    analyses = run_methods(config, methods, paths["obs"], out, period, {"deepda": args.members}, report, args.command)
    bar.close()
    written = evaluate_files(config, analyses, out, paths["world"], paths["obs"], args.command)
    print(written["headline"].to_string(index=False))


def add_view(sub: Any) -> None:
    p = sub.add_parser("view", help="the dashboard (panel serve) on localhost")
    p.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    p.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.set_defaults(func=run_view)


def run_view(args: argparse.Namespace) -> None:
    import subprocess

    app = Path(__file__).resolve().parent.parent / "viewer" / "app.py"
    command = [sys.executable, "-m", "panel", "serve", str(app), "--address", args.address, "--port", str(args.port)]
    command += [
        "--allow-websocket-origin",
        f"{args.address}:{args.port}",
        "--allow-websocket-origin",
        f"localhost:{args.port}",
    ]
    if args.show:
        command.append("--show")
    print(f"DeepDA dashboard on http://{args.address}:{args.port}/app (Ctrl-C to stop)", file=sys.stderr)
    raise SystemExit(subprocess.call(command))


def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="the embedded default end to end, headless (world, OSSE, DeepDA, scores)")
    p.add_argument("--out", help="folder for the results (default: the cache, $DEEPDA_CACHE or ~/.cache/deepda)")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> None:
    from engine.osse import evaluate_files, prepare_default

    out = _out_dir(args.out) if args.out else io.cache_dir()
    bar = progress_bar(100, "demo", unit="%")

    def report(stage: str, fraction: float) -> None:
        bar.set_description(f"demo: {stage}")
        bar.n = int(100 * fraction)
        bar.refresh()

    paths = prepare_default(out, report)
    bar.close()
    config = preset("coarse")
    scores = out / "scores"
    scores.mkdir(exist_ok=True)
    written = evaluate_files(config, {"deepda": paths["analysis"]}, scores, paths["world"], paths["obs"], args.command)
    print(written["headline"].to_string(index=False))
    print(f"results in {out}; open the dashboard with 'deepda view'")


def add_bench(sub: Any) -> None:
    from engine.bench import CASES

    p = sub.add_parser("bench", help="time and memory of the pipeline stages, as JSON")
    p.add_argument("cases", nargs="*", metavar="CASE", help=f"cases to run (default all): {', '.join(CASES)}")
    p.add_argument("--out", help="write the JSON here (default: stdout)")
    p.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> None:
    from engine.bench import run_cases

    if args.out:
        io.check_writable(args.out)
    try:
        report = run_cases(args.cases, progress=lambda name: print(f"bench: {name}", file=sys.stderr))
    except ValueError as err:
        raise io.InputError(str(err)) from None
    text = json.dumps(report, indent=2)
    if args.out:
        io.write_text(args.out, text)
    else:
        print(text)


VERBS: list[Callable[[Any], None]] = [
    add_world,
    add_observe,
    add_train,
    add_assimilate,
    add_evaluate,
    add_osse,
    add_view,
    add_demo,
    add_bench,
]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="deepda", description="Deep-learning global ocean data assimilation.")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=OneLineParser)
    for add in VERBS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deepda`` console script; returns the exit code."""
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        args.command = " ".join(["deepda", *argv])  # recorded in provenance and history
        args.func(args)
    except io.InputError as err:
        print(f"deepda: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("deepda: interrupted; no partial output was kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
