"""Verbs that score and show: ``evaluate``, ``osse``, ``view``, ``demo``, ``bench``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine import io
from engine.cli.common import (
    BASELINE_NAMES,
    MEMBERS,
    common_options,
    default_model,
    load_config,
    network_period,
    new_folder,
    out_dir,
    progress_bar,
)
from engine.config import preset


def add_evaluate(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="score analyses against the OSSE truth: metrics netCDF, tables, figures")
    common_options(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--analysis", nargs="+", help="analysis file(s); label=FILE names a method")
    what.add_argument("--held-out", metavar="MODEL", help="score a checkpoint on the held-out control years instead")
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
    from engine.evaluate_checks import check_evaluation, check_observations
    from engine.grid import build_grid
    from engine.osse import evaluate_files, held_out_rmse
    from engine.summary import as_markdown

    out_dir(args.out, create=False)
    config = load_config(args)
    if args.held_out:
        with new_folder(args.out) as out:
            table = held_out_rmse(config, args.held_out)
            io.write_text(out / "held_out_rmse.csv", table.to_csv())
            io.write_text(out / "held_out_rmse.md", as_markdown(table) + "\n")
        print(table.to_string())
        return
    analyses = _labelled(args.analysis)
    check_evaluation(config, build_grid(config.grid, io.load_geography()), analyses, args.truth)
    if args.obs:
        check_observations(args.obs)
    with new_folder(args.out) as out:
        written = evaluate_files(config, analyses, out, args.truth, args.obs, args.command)
    print(written["headline"].to_string(index=False))
    print(f"wrote {', '.join(str(p) for k, p in written.items() if k != 'headline')}")


def add_osse(sub: Any) -> None:
    p = sub.add_parser("osse", help="the headline experiment end to end: truth, observations, every method, scores")
    common_options(p)
    p.add_argument("--period", help="years, e.g. 1981-2020 (default: the whole historical run)")
    p.add_argument("--model", help="checkpoint (default: the shipped one)")
    p.add_argument("--methods", default="deepda,oi,kf,persistence,climatology", help="comma-separated methods")
    p.add_argument("--members", type=MEMBERS, default=1, help="DeepDA ensemble members (default 1)")
    p.add_argument("--out", required=True, help="output folder (created; reruns reuse finished files)")
    p.set_defaults(func=run_osse)


def run_osse(args: argparse.Namespace) -> None:
    from engine.osse import evaluate_files, make_truth_and_obs, run_methods

    out_dir(args.out, create=False)
    config = load_config(args)
    period = network_period(config, args.period)
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

    with new_folder(args.out) as out:
        paths = make_truth_and_obs(config, out, period, report, args.command)
        analyses = run_methods(
            config, methods, paths["obs"], out, period, {"deepda": args.members}, report, args.command
        )
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
    # no --warm: building a throw-away session at start-up only delays the first page (the
    # imports are paid once either way; see viewer/bench.py bench_first_page)
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

    out = out_dir(args.out) if args.out else io.cache_dir()
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
