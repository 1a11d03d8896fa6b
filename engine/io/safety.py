"""Outputs never replace inputs, and temporary files of killed runs never linger.

Every output is written under a temporary sibling name and renamed when complete. The
temporary name carries the writer's process id, so two runs never share one and the
leftovers of a run killed with ``kill -9`` (which no ``finally`` sees) are recognised
and removed by the next run writing the same output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from engine.errors import InputError

PathsLike = str | Path | Iterable[str | Path] | None
_FLAG = re.compile(r"-*[a-z-]*")  # the flag that starts a label such as "--out's unfinished run"
_TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.part")


def temp_sibling(path: str | Path) -> Path:
    """This process's temporary name for ``path``: hidden, beside it, tagged with the pid."""
    file = Path(path)
    return file.with_name(f".{file.name}.{os.getpid()}.part")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(path: str | Path) -> list[Path]:
    """Remove temporaries of ``path`` left by runs that are no longer alive; return them."""
    file = Path(path)
    folder = file.parent if str(file.parent) else Path(".")
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.fullmatch(entry.name)
        if match and match["name"] == file.name and not _alive(int(match["pid"])):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _same_file(a: Path, b: Path) -> bool:
    """Same path after following links, or the same inode (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _paths(items: Mapping[str, PathsLike]) -> list[tuple[str, Path]]:
    out = []
    for label, value in items.items():
        values = [value] if isinstance(value, str | Path) else list(value or [])
        out += [(label, Path(v)) for v in values if v]
    return out


def check_outputs_distinct(inputs: Mapping[str, PathsLike], outputs: Mapping[str, PathsLike]) -> None:
    """Refuse, in one line, an output that is one of the inputs (same path, hard link or symlink).

    ``inputs`` and ``outputs`` map a label (the CLI's flag, e.g. ``--obs``, optionally
    followed by words) to a path, several paths, or None (not given). Nothing is created
    or opened for writing.
    """
    sources = _paths(inputs)
    for out_label, out in _paths(outputs):
        for in_label, source in sources:
            if _same_file(out, source):
                how = "the same file" if out.resolve() == source.resolve() else "a hard link to the same file"
                raise InputError(
                    f"{out_label} {out} is {how} as {in_label} {source}: writing it would destroy that input; "
                    f"choose another {_FLAG.match(out_label).group()}"
                )
