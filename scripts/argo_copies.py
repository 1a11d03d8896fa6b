"""Copies of a folder of Argo profile files as other floats, to measure reading at scale.

Copy ``k`` of each file gets a new WMO number and its times moved by ``k`` days
(:func:`engine.io.argo_write.copy_argo_as_new_float`), so that its profiles are new ones
(duplicates are same platform, time and position) while keeping the real files' sizes,
levels and flags; a float's repeated profiles stay repeated within each copy. Usage,
from the repository root::

    python3 scripts/argo_copies.py SRC_FOLDER DST_FOLDER COPIES
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.io.argo_write import copy_argo_as_new_float  # noqa: E402


def main(src: str, dst: str, copies: int) -> None:
    files = sorted(Path(src).glob("*.nc"))
    Path(dst).mkdir(parents=True, exist_ok=True)
    for k in range(copies):
        for i, file in enumerate(files):
            copy_argo_as_new_float(file, Path(dst) / f"c{k:03d}_{file.name}", 7_000_000 + i * 1000 + k, float(k))
    print(f"{copies * len(files)} files in {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
