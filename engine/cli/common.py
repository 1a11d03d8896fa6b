"""What every verb shares: one-line errors, progress bars, config and period parsing.

Every user error ends as one line on stderr and exit code 2 (argparse's usage dump is
folded into one line too); Ctrl-C ends with exit code 130 and no partial output.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from engine import io
from engine.config import NETWORK_YEARS, PRESET_NAMES, SEED, Config, preset
from engine.errors import file_error
from engine.progress import Eta, format_duration

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage dump) and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise io.InputError(f"{message} (see '{self.prog} --help')")


def progress_bar(total: int, desc: str, unit: str = "step") -> Any:
    """A tqdm bar on stderr when it is a terminal, else :class:`LineProgress` (plain lines
    in a log or a pipe, where a bar would print nothing or a mess of carriage returns)."""
    if not sys.stderr.isatty():
        return LineProgress(total, desc, unit)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


class LineProgress:
    """The part of tqdm's interface the verbs use, printing whole lines: at every tenth of
    the work, every ``every_s`` seconds, when the description changes, and at the end.

    A line: ``demo: analysis 1981-2020: 1234/2920 step (42 %), 5 min 10 s, about 7 min left``.
    """

    def __init__(self, total: int, desc: str, unit: str = "step", every_s: float = 30.0) -> None:
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.n = 0
        self.postfix = ""
        self.eta = Eta()
        self.started = time.monotonic()
        self._last: tuple[float, int, str] | None = None  # (time, tenth, description) of the last line

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        self.refresh()

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc
        if refresh:
            self.refresh()

    def set_postfix(self, values: dict[str, Any] | None = None, refresh: bool = True) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in (values or {}).items())
        if refresh:
            self.refresh()

    def refresh(self) -> None:
        fraction = self.n / self.total if self.total else 0.0
        left = self.eta.left(fraction)
        tenth = int(10 * fraction)
        now = time.monotonic()
        last = self._last
        if last is None or tenth != last[1] or self.desc != last[2] or now - last[0] >= self.every_s:
            self._print(fraction, left)
            self._last = (now, tenth, self.desc)

    def close(self) -> None:
        """The final line (unless the last one already said all of it)."""
        if self._last is None or self._last[1] < 10 or self.desc != self._last[2]:
            self._print(self.n / self.total if self.total else 1.0, 0.0)
            self._last = (time.monotonic(), 10, self.desc)

    def _print(self, fraction: float, left: float | None) -> None:
        if self.unit == "%":
            count = f"{100 * fraction:.0f} %"
        elif self.total:
            count = f"{self.n}/{self.total} {self.unit} ({100 * fraction:.0f} %)"
        else:
            count = f"{self.n} {self.unit}"
        text = f"{self.desc}: {count}, {format_duration(time.monotonic() - self.started)}"
        if left is not None and fraction < 1.0:
            text += f", about {format_duration(left)} left"
        if self.postfix:
            text += f", {self.postfix}"
        print(text, file=sys.stderr, flush=True)


def whole(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``lo`` to ``hi`` (the range is in the message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text!r} must be a whole number from {lo} to {hi}")
        return value

    return parse


YEARS = whole(1, 100_000)  # control-run years; the memory estimate has the last word
MEMBERS = whole(1, 1000)
SEEDS = whole(int(SEED.lo or 0), int(SEED.hi or 0))


def parse_period(text: str, within: tuple[int, int] | None = None, what: str = "") -> tuple[int, int]:
    """'1981-2020' -> (1981, 2020); one year 'YYYY' -> (YYYY, YYYY); inside ``within``
    (first, last), which ``what`` names, when given."""
    try:
        parts = [int(p) for p in text.split("-")]
    except ValueError:
        raise io.InputError(f"--period {text!r} is not YEAR or YEAR-YEAR, e.g. 1981-2020") from None
    first, last = (parts[0], parts[-1]) if len(parts) in (1, 2) else (0, -1)
    if last < first:
        raise io.InputError(f"--period {text!r} must be YEAR or FIRST-LAST with FIRST <= LAST, e.g. 1981-2020")
    if within and not within[0] <= first <= last <= within[1]:
        raise io.InputError(
            f"--period {text} is outside {what} ({within[0]}-{within[1]}); choose years within {within[0]}-{within[1]}"
        )
    return first, last


def network_period(config: Config, text: str | None) -> tuple[int, int]:
    """An OSSE period: inside both the observing networks' years and the historical run's."""
    lo = max(NETWORK_YEARS[0], config.world.historical_start_year)
    hi = min(NETWORK_YEARS[1], config.world.historical_end_year)
    return (
        parse_period(text, (lo, hi), "the years the OSSE networks and the historical run cover") if text else (lo, hi)
    )


def load_config(args: argparse.Namespace) -> Config:
    """The run's config: --config FILE if given, else the --preset; flags override."""
    path = getattr(args, "config", None)
    try:
        config = io.read_config(path) if path else preset(args.preset)
    except IsADirectoryError:
        raise file_error(path, "is a folder", "give --config a .toml or .yaml file") from None
    except PermissionError:
        raise file_error(path, "cannot be read (permission denied)", "give --config a file you can read") from None
    except UnicodeDecodeError:
        raise file_error(path, "is not a text file", "give --config a .toml or .yaml file") from None
    except OSError as err:
        raise file_error(path, f"cannot be read ({err.strerror})", "give --config a readable file") from None
    if getattr(args, "seed", None) is not None:
        config = replace(config, world=replace(config.world, seed=args.seed))
    return config


def truth_config(config: Any, path: str | None) -> Any:
    """``config`` with the [world] of the config file ``path`` (the truth's), or ``config``
    itself; one line naming the problem when that world cannot give this run's truth."""
    if not path:
        return config
    try:
        world = load_config(argparse.Namespace(config=path, preset=None)).world
    except io.InputError as err:
        raise io.InputError(f"--truth-config: {err}") from None
    if world.steps_per_year != config.world.steps_per_year:
        raise io.InputError(
            f"--truth-config {path}: its world has {world.steps_per_year} steps a year and this run "
            f"{config.world.steps_per_year}; set [world] steps_per_year = {config.world.steps_per_year} in {path}"
        )
    return replace(config, world=world)


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=PRESET_NAMES, default="coarse", help="grid preset (default coarse)")
    parser.add_argument("--config", help="TOML or YAML config file (overrides --preset)")


def default_model() -> Path:
    """The shipped coarse checkpoint."""
    return io.shipped_model()


def out_dir(path: str, create: bool = True) -> Path:
    """An output folder, created if missing (its parent must exist); ``create=False`` only checks."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise io.InputError(f"--out {folder} is a file; give a folder")
    if not folder.parent.is_dir():
        raise io.InputError(f"--out {folder}: folder {folder.parent} does not exist; create it first")
    if create:
        folder.mkdir(exist_ok=True)
    return folder


@contextlib.contextmanager
def new_folder(path: str) -> Iterator[Path]:
    """:func:`out_dir`, removed again when the verb fails and leaves the folder it made empty."""
    existed = Path(path).exists()
    folder = out_dir(path)
    try:
        yield folder
    except BaseException:
        if not existed and not any(folder.iterdir()):
            folder.rmdir()
        raise
