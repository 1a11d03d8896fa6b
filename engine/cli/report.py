"""Verbs that score and show: ``evaluate``, ``view``, ``demo``, ``bench``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine import io
from engine.cli.common import (
    common_options,
    default_model,
    load_config,
    new_folder,
    out_dir,
    progress_bar,
)
from engine.config import preset
from engine.errors import with_flag


def add_evaluate(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="score analyses against the OSSE truth: metrics netCDF, tables, figures")
    common_options(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--analysis", nargs="+", help="analysis file(s); label=FILE names a method")
    what.add_argument("--held-out", metavar="MODEL", help="score a checkpoint on the held-out control years instead")
    p.add_argument(
        "--truth",
        help="world file with the truth (default: regenerate the historical run, for OSSE observations only)",
    )
    p.add_argument(
        "--obs",
        help="observation file: O-B and O-A by depth, platform, region and year, and the observation-error line; "
        "real observations (no truth) are scored this way alone",
    )
    p.add_argument("--withheld", help="observations withheld from every analysis (A.withheld.nc): RMSE by depth band")
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
    from engine.da.held_out import held_out_rmse
    from engine.evaluate.checks import check_evaluation, check_observations
    from engine.evaluate.summary import as_markdown
    from engine.osse import evaluate_files

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
    for path in filter(None, (args.obs, args.withheld)):
        check_observations(path)
    with_truth = args.truth is not None or not args.obs or io.is_osse_file(args.obs)
    if with_truth:
        check_evaluation(config, io.load_grid(config.grid), analyses, args.truth)
    with new_folder(args.out) as out:
        written = evaluate_files(config, analyses, out, args.truth, args.obs, args.command) if with_truth else {}
        written |= write_observation_space(config, analyses, out, args.obs, args.withheld)
    if "headline" in written:
        print(written.pop("headline").to_string(index=False))
    print(f"wrote {', '.join(str(p) for p in written.values())}")


def write_observation_space(
    config: Any, analyses: dict[str, Path], out: Path, obs: str | None, withheld: str | None
) -> dict[str, Path]:
    """The observation-space tables (each analysis against ``obs``) and the withheld scores."""
    from engine.evaluate.summary import as_markdown
    from engine.realdata import observation_space_tables, withheld_scores

    written = {}
    for label, path in analyses.items() if obs else ():
        for by, table in observation_space_tables(path, obs, config).items():
            name = f"obs_space_{by}_{label}" if len(analyses) > 1 else f"obs_space_{by}"
            io.write_text(out / f"{name}.csv", table.to_csv())
            written[name] = out / f"{name}.csv"
    if withheld:
        table = withheld_scores(analyses, withheld, config)
        io.write_text(out / "withheld_scores.csv", table.to_csv())
        io.write_text(out / "withheld_scores.md", as_markdown(table.round(4)) + "\n")
        print(table.round(3).to_string())
        written["withheld"] = out / "withheld_scores.csv"
    return written


def add_view(sub: Any) -> None:
    p = sub.add_parser(
        "view",
        help="the dashboard on localhost: your files, or the embedded default (computed in the background on the first start)",
    )
    p.add_argument("--world", help="truth (model world) netCDF, e.g. from 'deepda world'")
    p.add_argument("--obs", help="observation (profile) file: CF DSG, CSV, EN4 or Argo")
    p.add_argument("--analysis", action="append", help="analysis netCDF, e.g. from 'deepda assimilate' (repeatable)")
    p.add_argument(
        "--cache",
        help="folder of the embedded default and the dashboard's runs (default $DEEPDA_CACHE or ~/.cache/deepda)",
    )
    p.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    p.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.set_defaults(func=run_view)


VIEWER_PACKAGES = ("panel", "holoviews", "geoviews", "datashader", "cartopy")  # the [viewer] extra's


def view_app() -> Path:
    """The dashboard's ``panel serve`` target, wherever the ``viewer`` package is installed
    (found without importing it: the engine never imports the viewer)."""
    import importlib.util

    spec = importlib.util.find_spec("viewer")
    app = Path(spec.origin).parent / "app.py" if spec is not None and spec.origin else None
    if app is None or not app.exists():
        raise io.InputError(
            "the dashboard (package viewer) is not installed; run 'python3 -m pip install -e .[viewer]' in DeepDA"
        )
    missing = [name for name in VIEWER_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise io.InputError(
            f"the dashboard needs {', '.join(missing)}, which the engine alone does not install; "
            "run 'python3 -m pip install -e .[viewer]' in DeepDA (or pip install 'deepda[viewer]')"
        )
    return app


def check_view_files(args: argparse.Namespace) -> list[str]:
    """The app's arguments for the given files, each checked first (one line, exit 2)."""
    if args.obs and not (args.world or args.analysis):
        raise io.InputError("--obs needs a gridded file to show with it: add --world W.nc or --analysis A.nc")
    app_args = []
    checks = [("--world", args.world, io.check_fields), ("--obs", args.obs, io.check_observations)]
    for flag, path, check in checks + [("--analysis", a, io.check_fields) for a in args.analysis or []]:
        if path:
            try:
                check(path)
            except io.InputError as err:
                raise with_flag(flag, err) from None
            app_args += [flag, str(Path(path).expanduser().resolve())]
    return app_args


def run_view(args: argparse.Namespace) -> None:
    import os
    import signal
    import subprocess

    app = view_app()
    app_args = check_view_files(args)
    cache = Path(args.cache).expanduser().resolve() if args.cache else io.cache_dir()
    computing = None if app_args else start_default_data(cache)
    command = [sys.executable, "-m", "panel", "serve", str(app), "--address", args.address, "--port", str(args.port)]
    # no --warm: building a throw-away session at start-up only delays the first page (the
    # imports are paid once either way; see viewer/bench.py bench_first_page)
    for host in (args.address, "localhost", "127.0.0.1"):
        command += ["--allow-websocket-origin", f"{host}:{args.port}"]
    if args.show:
        command.append("--show")
    command += ["--args", *app_args, "--cache", str(cache)] + (["--no-start"] if computing is not None else [])
    # the served app imports the viewer and the engine from where this one was found
    root = str(app.parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    env["BOKEH_RESOURCES"] = "server"  # every script and stylesheet from this server, whatever the environment says
    print(f"DeepDA dashboard on http://{args.address}:{args.port}/app (Ctrl-C to stop)", file=sys.stderr)
    if computing is not None:
        log = cache / io.first_start.LOG
        print(
            f"first start: computing the embedded default in the background (progress on the page, log {log})",
            file=sys.stderr,
        )
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated view stops its children too
    server = subprocess.Popen(command, env=env)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not orphan the computation
            signal.signal(sig, signal.SIG_IGN)
        for child in (server, computing):
            _stop(child)
    if computing is not None:
        print("stopped; the next 'deepda view' continues the embedded default from the cache", file=sys.stderr)
    raise SystemExit(code)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop(child: Any) -> None:
    """Stop a child process (a no-op when it has ended): SIGINT first, so that a computation
    keeps its finished steps, then harder."""
    import signal
    import subprocess

    if child is None or child.poll() is not None:
        return
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=15)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def start_default_data(cache: Path) -> Any:
    """Start ``deepda demo --data-only`` on ``cache`` in a background process, unless the
    default is already there or being computed; returns the process (or None). Its output
    goes to the cache's ``first_start.log``, its progress to ``first_start.json``."""
    import subprocess

    if io.cached_default(cache, default_model()) is not None:
        return None
    if io.first_start.is_locked(cache / io.first_start.LOCK):
        return None
    command = [sys.executable, "-m", "engine.cli", "demo", "--data-only", "--out", str(cache)]
    with io.first_start.open_log(cache) as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="the embedded default end to end, headless (world, OSSE, DeepDA, scores)")
    p.add_argument("--out", help="folder for the results (default: the cache, $DEEPDA_CACHE or ~/.cache/deepda)")
    p.add_argument(
        "--data-only",
        action="store_true",
        help="compute the default's files (its first year first, for the dashboard) and stop: what 'deepda view' runs",
    )
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> None:
    from engine.osse import evaluate_files, prepare_default

    out = out_dir(args.out) if args.out else io.cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    if args.data_only:
        return _default_data(out)
    bar = progress_bar(100, "demo", unit="%")

    def report(stage: str, fraction: float) -> None:
        bar.set_description(f"demo ({stage})", refresh=False)
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


def _default_data(cache: Path) -> None:
    """The first start's computation, one process at a time, its progress in the cache."""
    import signal
    import time

    from engine.osse import prepare_default
    from engine.progress import Eta

    # Ctrl-C and a terminating parent stop it between steps (kept for the next start), even
    # where it was started with SIGINT ignored (a background job of a shell script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    with io.first_start.exclusive_lock(cache / io.first_start.LOCK) as held:
        if not held:
            print(f"the embedded default is already being computed into {cache} by another process")
            return
        bar, eta, last = progress_bar(100, "first start", unit="%"), Eta(), [0.0]

        def report(stage: str, fraction: float) -> None:
            bar.set_description(f"first start ({stage})", refresh=False)
            bar.n = int(100 * fraction)
            bar.refresh()
            left = eta.left(fraction)
            if time.monotonic() - last[0] >= 0.5:
                io.first_start.write_progress(cache, {"stage": stage, "fraction": fraction, "seconds_left": left})
                last[0] = time.monotonic()

        try:
            paths = prepare_default(cache, report, first_year=True)
        except KeyboardInterrupt:
            print("first start: interrupted; the next start continues from the files in the cache")
            raise SystemExit(130) from None
        except Exception as err:  # the dashboard shows it
            io.first_start.write_progress(cache, {"error": f"{type(err).__name__}: {err}"})
            raise
        bar.close()
        io.first_start.write_progress(cache, {"stage": "done", "fraction": 1.0, "seconds_left": 0.0})
        print(f"the embedded default is in {cache}: {', '.join(p.name for p in paths.values())}")


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
