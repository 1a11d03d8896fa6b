"""What every verb shares: one-line errors, progress bars, config and period parsing.

Every user error ends as one line on stderr and exit code 2 (argparse's usage dump is
folded into one line too); Ctrl-C ends with exit code 130 and no partial output.
"""

from __future__ import annotations

import argparse
import sys
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


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=PRESET_NAMES, default="coarse", help="grid preset (default coarse)")
    parser.add_argument("--config", help="TOML or YAML config file (overrides --preset)")


def default_model() -> Path:
    """The shipped coarse checkpoint."""
    return io.shipped_model()


def out_dir(path: str) -> Path:
    """An output folder, created if missing (its parent must exist)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise io.InputError(f"--out {folder} is a file; give a folder")
    if not folder.parent.is_dir():
        raise io.InputError(f"--out {folder}: folder {folder.parent} does not exist; create it first")
    folder.mkdir(exist_ok=True)
    return folder
