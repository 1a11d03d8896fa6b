"""Verbs that make data: ``world`` and ``observe``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine import io
from engine.cli.common import (
    SEEDS,
    YEARS,
    common_options,
    load_config,
    network_period,
    parse_period,
    progress_bar,
)
from engine.config import Config


def add_world(sub: Any) -> None:
    p = sub.add_parser("world", help="generate a model-world run (truth) as CF netCDF")
    common_options(p)
    p.add_argument(
        "--run",
        choices=("control", "historical"),
        default="control",
        help="control: no trend, what training sees; historical: 1981-2020 with warming and volcanoes (default control)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--years", type=YEARS, help="control run length in years (default 10)")
    group.add_argument("--period", help="historical period, e.g. 1981-2020 (default: the whole run)")
    p.add_argument("--seed", type=SEEDS, help="world seed (default from the config)")
    p.add_argument(
        "--layout",
        choices=("netcdf", "cmip"),
        default="netcdf",
        help="netcdf: one CF file on the preset grid (default); cmip: a folder of decade files as a CMIP6 "
        "modeller writes them (thetao in K, lev in cm, bounds) on --grid, e.g. as test data for train --control",
    )
    p.add_argument(
        "--grid",
        choices=("1deg", "curvilinear"),
        help="with --layout cmip: a 1 degree regular grid (default) or a curvilinear one with 2-D coordinates",
    )
    p.add_argument("--out", required=True, help="output netCDF file (a new folder with --layout cmip)")
    p.set_defaults(func=run_world)


def make_world(config: Config, run: str, years: int | None, period: str | None) -> Any:
    """Build the grid and the ModelWorld a CLI verb asked for."""
    from engine.osse import historical_world
    from engine.world.synthetic import ModelWorld

    grid = io.load_grid(config.grid)
    steps = config.world.steps_per_year
    if run == "control":
        if period:
            raise io.InputError("--period is for --run historical; use --years N for a control run")
        n_years = 10 if years is None else years
        return ModelWorld(grid, config.world, run="control", n_steps=n_years * steps)
    if years is not None:
        raise io.InputError("--years is for --run control; use --period FIRST-LAST for a historical run")
    lo, hi = config.world.historical_start_year, config.world.historical_end_year
    first, last = parse_period(period, (lo, hi), "the historical run") if period else (lo, hi)
    return historical_world(config, grid, (first, last))


def run_world(args: argparse.Namespace) -> None:
    io.check_outputs_distinct({"--config": args.config}, {"--out": args.out})
    if args.layout == "cmip":
        return _world_cmip(args)
    if args.grid:
        raise io.InputError("--grid is for --layout cmip; the netcdf layout is on the preset grid")
    io.check_writable(args.out)
    world = make_world(load_config(args), args.run, args.years, args.period)
    with progress_bar(world.n_steps, f"world {world.run}") as bar:
        io.write_world(world, args.out, progress=bar.update, command=args.command)
    print(f"wrote {args.out}: {world.run} run, {world.n_steps} steps from year {world.start_year}")


def _world_cmip(args: argparse.Namespace) -> None:
    from engine.io.cmip_write import write_cmip_world
    from engine.world.cmip_layout import make_layout

    if Path(args.out).exists():
        raise io.InputError(f"{args.out} exists; --layout cmip writes a new folder, choose another --out")
    io.check_writable(args.out)
    world = make_world(load_config(args), args.run, args.years, args.period)
    layout = make_layout(args.grid or "1deg", world.grid, io.load_geography()["land"].values)
    with progress_bar(world.n_steps, f"world {world.run}, CMIP layout") as bar:
        files = write_cmip_world(world, layout, args.out, progress=bar.update, command=args.command)
    print(f"wrote {args.out}: {len(files)} files, {world.run} run, {world.n_steps} steps on the {layout.kind} grid")


def add_observe(sub: Any) -> None:
    p = sub.add_parser("observe", help="OSSE observations of the model world, or read a real observation file")
    common_options(p)
    p.add_argument("--run", choices=("historical",), default="historical", help="world run observed")
    p.add_argument("--network", choices=("historical",), default="historical", help="observing network history")
    p.add_argument("--period", help="years observed, e.g. 1981-2020 (default: the whole run)")
    p.add_argument("--deny", default="", help="platforms switched off, e.g. argo,xbt (denial experiment)")
    p.add_argument("--seed", type=SEEDS, help="world seed (default from the config)")
    p.add_argument(
        "--read",
        nargs="+",
        metavar="FILE",
        help="read real observation files instead of simulating: files, folders or patterns, of mixed formats",
    )
    p.add_argument(
        "--format",
        choices=("dsg", "en4", "argo", "wod", "csv"),
        help="format of every --read file (default: each file by its suffix and variables)",
    )
    p.add_argument(
        "--columns",
        help="CSV column mapping, e.g. time=date,temperature=temp_c; qc=COL for DeepDA QC codes (0 good), "
        "source_qc=COL for IOC/Argo flags (1 good, 3/4 bad)",
    )
    p.add_argument("--counts", action="store_true", help="print profiles per year and platform, write nothing")
    p.add_argument("--out", help="output profile file (CF DSG netCDF, or CSV by suffix)")
    p.set_defaults(func=run_observe)


def denied_platforms(deny: str) -> tuple[str, ...]:
    """The platforms named in ``--deny`` (comma-separated), each checked to exist."""
    from engine.observe.profiles import PLATFORMS

    denied = tuple(p for p in deny.split(",") if p)
    unknown = [p for p in denied if p not in PLATFORMS[:-1]]
    if unknown:
        raise io.InputError(f"--deny {','.join(unknown)}: unknown platform; choose from {', '.join(PLATFORMS[:-1])}")
    return denied


def _network(config: Config, deny: str) -> Any:
    from engine.observe.network import ObservingNetwork

    return ObservingNetwork(io.load_grid(config.grid), replace(config.network, deny=denied_platforms(deny)))


def run_observe(args: argparse.Namespace) -> None:
    read = io.observation_paths(args.read) if args.read else None
    io.check_outputs_distinct({"--read": read, "--config": args.config}, {"--out": args.out})
    if read:
        args.read = read
        return _read_observations(args)
    config = load_config(args)
    if args.counts:
        from engine.observe.network import yearly_counts

        first, last = network_period(config, args.period)
        counts = yearly_counts(_network(config, args.deny), range(first, last + 1), config.world.steps_per_year)
        print(counts.to_string())
        return
    if not args.out:
        raise io.InputError("--out is required (or --counts to print the yearly counts only)")
    from engine.osse import write_osse_observations

    io.check_writable(args.out)
    first, last = network_period(config, args.period)
    config = replace(config, network=replace(config.network, deny=denied_platforms(args.deny)))
    world = make_world(config, "historical", None, f"{first}-{last}")
    with progress_bar(world.n_steps, "observe") as bar:
        network, rows = write_osse_observations(world, config, args.out, bar.update, args.command)
    print(f"wrote {args.out}: {rows} measurements, platforms {','.join(network.platforms)}")


def qc_line(summary: Any) -> str:
    """A file's QC summary in one line: measurements, good, and each reason flagged."""
    counts = dict(zip(summary["reason"], summary["rows"].astype(int), strict=True))
    rows = sum(counts.values())
    good = counts.pop("good", 0)
    flagged = ", ".join(f"{reason} {n}" for reason, n in counts.items())
    return f"{rows} measurements, {good} good, {rows - good} flagged" + (f" ({flagged})" if flagged else "")


def _read_observations(args: argparse.Namespace) -> None:

    if not args.out:
        raise io.InputError("--out is required with --read")
    io.check_writable(args.out)
    columns = None
    if args.columns:
        try:
            columns = dict(item.split("=", 1) for item in args.columns.split(","))
        except ValueError:
            raise io.InputError(f"--columns {args.columns!r} must look like time=date,temperature=temp_c") from None
    from engine.observe.background_check import climatology_check

    config = load_config(args)
    grid = io.load_grid(config.grid)
    options = {"columns": columns, "grid": grid, "period": args.period, "check": climatology_check(grid, config)}
    many = len(args.read) > 1
    bar = progress_bar(len(args.read), "read", unit="file") if many else None  # a QC line per file, then the total

    def report(path: Path, summary: Any) -> None:
        if bar is not None:
            print(f"{path}: {qc_line(summary)}", file=sys.stderr)
            bar.update(1)

    try:
        rows, total = io.write_observation_files(args.read, args.out, args.format, report, args.command, **options)
    finally:
        if bar is not None:
            bar.close()
    print(total.to_string(index=False))
    good = int(total.loc[total["reason"] == "good", "rows"].sum())
    files = f" from {len(args.read)} files" if many else ""
    print(f"wrote {args.out}: {rows} measurements{files}, {good} good (flagged rows kept)")
