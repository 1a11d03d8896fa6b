"""What ``deepda evaluate`` checks before it creates anything: that the analyses and the
truth can be scored together (the same grid, the same times), naming the file that does not
fit. Files are opened lazily: only coordinates and variable names are read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from engine import io
from engine.config import Config
from engine.errors import file_error
from engine.grid import Grid

FIELD_DIMS = ("time", "depth", "lat", "lon")


def _kind(ds: xr.Dataset) -> str:
    """What a netCDF file looks like it is, in words, for messages."""
    if ds.attrs.get("featureType") == "profile" or "profile" in ds.dims:
        return "an observation (profile) file"
    if "thetao_anomaly" in ds:
        return "an analysis file"
    if "thetao" in ds:
        return "a world (truth) file"
    return "neither an analysis nor a world file"


def _open(path: Path, variable: str, role: str, made_by: str, foreign: str = "") -> xr.Dataset:
    """``path`` opened lazily; an InputError unless it holds ``variable`` as a 4-D field
    (and not ``foreign``, the variable of the other kind of file)."""
    ds = io.open_fields(path)
    if variable not in ds or ds[variable].dims != FIELD_DIMS or foreign in ds:
        kind = _kind(ds)
        ds.close()
        detail = f" (no {variable} on {', '.join(FIELD_DIMS)})" if kind.startswith("neither") else ""
        raise file_error(path, f"is {kind}, not {role}{detail}", f"give {made_by}")
    return ds


def _check_grid(ds: xr.Dataset, path: Path, grid: Grid, role: str) -> None:
    """An InputError unless ``ds`` is on ``grid`` (levels and cell centres)."""
    ours = {name: np.asarray(c.values, "f8") for name, c in grid.coords().items()}
    for name in ("depth", "lat", "lon"):
        theirs = np.asarray(ds[name].values, "f8")
        if theirs.shape != ours[name].shape or not np.allclose(theirs, ours[name], atol=1e-6):
            shape = "x".join(str(ds.sizes[d]) for d in ("depth", "lat", "lon"))
            raise file_error(
                path,
                f"{role} is on a {shape} (depth x lat x lon) grid whose {name} differs from the "
                f"{grid.spec.name} grid {'x'.join(str(n) for n in grid.shape)}",
                f"give --preset or --config of the grid it was made on, or files made on the {grid.spec.name} grid",
            )


def _years(times: xr.DataArray) -> str:
    years = times.dt.year.values
    return f"{int(years.min())}-{int(years.max())} ({len(years)} steps)"


def check_evaluation(
    config: Config, grid: Grid, analyses: dict[str, Path], truth_path: Path | str | None
) -> dict[str, xr.Dataset]:
    """Open every analysis (lazily) and check that it can be scored: an analysis file on
    ``grid``, all on the same times, and the truth (a world file, or the historical run
    when none is given) on the grid covering those times. Returns the opened analyses."""
    opened: dict[str, xr.Dataset] = {}
    reference: tuple[str, xr.DataArray] | None = None
    for label, path in analyses.items():
        ds = opened[label] = _open(Path(path), "thetao_anomaly", "an analysis", "a file written by 'deepda assimilate'")
        _check_grid(ds, Path(path), grid, f"analysis {label}")
        if reference is None:
            reference = (label, ds["time"])
        elif ds.sizes["time"] != reference[1].size or not np.array_equal(ds["time"].values, reference[1].values):
            raise file_error(
                path,
                f"analysis {label} covers {_years(ds['time'])} and analysis {reference[0]} {_years(reference[1])}",
                "give analyses of the same period (assimilate them with the same --period)",
            )
    if reference is None:
        raise io.InputError("no analysis to evaluate; give --analysis FILE")
    times = reference[1]
    if truth_path:
        truth = _open(
            Path(truth_path), "thetao", "a world (truth) file", "a file written by 'deepda world'", "thetao_anomaly"
        )
        with truth:
            _check_grid(truth, Path(truth_path), grid, "the truth")
            if truth["time"].dtype != times.dtype or not np.isin(times.values, truth["time"].values).all():
                raise file_error(
                    truth_path,
                    f"the truth covers {_years(truth['time'])}, not every step of the analyses, {_years(times)}",
                    "give the world file of the run the observations were drawn from (deepda world --run historical)",
                )
    else:
        lo, hi = config.world.historical_start_year, config.world.historical_end_year
        years = times.dt.year.values
        if years.min() < lo or years.max() > hi:
            raise io.InputError(
                f"the analyses cover {_years(times)}, outside the historical run {lo}-{hi}; "
                "give --truth WORLD.nc, or a --config whose historical run covers them"
            )
    return opened


def check_observations(path: Path | str) -> None:
    """An InputError unless ``path`` is an observation file (a gridded file is the usual mix-up)."""
    file = Path(path)
    if file.suffix.lower() not in (".csv", ".txt"):
        with io.open_fields(file) as ds:
            if "thetao" in ds or "thetao_anomaly" in ds:
                raise file_error(
                    file, f"is {_kind(ds)}, not observations", "give the profile file 'deepda observe' wrote"
                )
    io.observation_format(file, None)
