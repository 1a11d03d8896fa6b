"""``deepda``: the command line. argparse -> config -> engine functions; no logic of its own.

Every user error ends as one line on stderr and exit code 2 (argparse's usage dump is
folded into one line too); Ctrl-C ends with exit code 130 and no partial output.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from engine import io
from engine.cli.common import EXIT_BAD_INPUT, OneLineParser
from engine.cli.data import add_observe, add_world
from engine.cli.model import add_assimilate, add_calibrate, add_train
from engine.cli.osse import add_osse
from engine.cli.report import add_bench, add_demo, add_evaluate, add_view

VERBS: list[Callable[[Any], None]] = [
    add_world,
    add_observe,
    add_train,
    add_assimilate,
    add_calibrate,
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


def _stop_on_terminate() -> None:
    """SIGTERM (``kill``, a batch scheduler's preemption) and, for a run started in the
    background (where the shell ignores it), SIGINT stop a run as Ctrl-C does: a training
    or an assimilation saves what it has done, to go on with ``--resume``."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deepda`` console script; returns the exit code."""
    if argv is None:  # a process of its own, not a call from Python
        _stop_on_terminate()
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
