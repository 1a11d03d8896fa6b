"""Copies of a folder of Argo profile files as other floats, to measure reading at scale.

Copy ``k`` of each file gets a new WMO number and its times moved by ``k`` days, so that
its profiles are new ones (not duplicates: duplicates are same platform, time and
position) while keeping the real files' sizes, levels and flags. Usage, from the
repository root::

    python3 scripts/argo_copies.py SRC_FOLDER DST_FOLDER COPIES
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import netCDF4
import numpy as np


def copy_as_new_float(source: Path, out: Path, wmo: int, days: float) -> None:
    """``source`` copied to ``out`` with PLATFORM_NUMBER ``wmo`` and JULD moved by ``days``."""
    shutil.copyfile(source, out)
    out.chmod(0o644)
    with netCDF4.Dataset(out, "a") as nc:
        nc.set_auto_mask(False)
        number = nc["PLATFORM_NUMBER"]
        text = np.array([str(wmo).ljust(number.shape[1])] * number.shape[0], dtype=f"S{number.shape[1]}")
        number[:] = netCDF4.stringtochar(text)
        juld = nc["JULD"]
        values = juld[:]
        juld[:] = np.where(np.abs(values) < 99999.0, values + days, values)


def main(src: str, dst: str, copies: int) -> None:
    files = sorted(Path(src).glob("*.nc"))
    Path(dst).mkdir(parents=True, exist_ok=True)
    for k in range(copies):
        for i, file in enumerate(files):
            copy_as_new_float(file, Path(dst) / f"c{k:03d}_{file.name}", 7_000_000 + i * 1000 + k, float(k))
    print(f"{copies * len(files)} files in {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
