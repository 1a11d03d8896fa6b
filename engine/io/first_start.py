"""The files of the embedded default's first start in the cache, besides its data.

The computation runs in its own process (``deepda demo --data-only``, started by
``deepda view``); the dashboard follows it through these files:

* ``first_start.lock``: held (``flock``) by the process computing, so that one runs at a time;
* ``first_start.json``: its progress (stage, overall fraction, seconds left, or its error);
* ``first_start.log``: its output;
* ``first_year/``: the first year of the default, whole (world, observations, analysis and
  a manifest), shown by the dashboard while the full period is computed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from engine.io.core import write_text

LOCK = "first_start.lock"
PROGRESS = "first_start.json"
LOG = "first_start.log"
FIRST_YEAR = "first_year"


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created) for the block; yields False at once,
    without waiting, when another process holds it. The lock goes with the process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_locked(path: Path) -> bool:
    """Whether a process holds the lock on ``path`` now."""
    if not path.exists():
        return False
    with exclusive_lock(path) as free:
        return not free


def write_progress(cache: Path, entry: dict[str, Any]) -> None:
    """Record the first start's progress (atomically: a reader never sees half a file)."""
    cache.mkdir(parents=True, exist_ok=True)
    write_text(cache / PROGRESS, json.dumps({**entry, "pid": os.getpid(), "time": time.time()}))


def read_progress(cache: Path) -> dict[str, Any] | None:
    """The last progress recorded in ``cache``, or None when there is none (or unreadable)."""
    try:
        entry = json.loads((cache / PROGRESS).read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


def open_log(cache: Path) -> IO[str]:
    """The first start's log, opened for appending (the caller closes it)."""
    cache.mkdir(parents=True, exist_ok=True)
    return open(cache / LOG, "a")  # noqa: SIM115 - handed to a child process
