"""Geography, configs, gridded CF netCDF fields, logs and safe writing.

Errors a user can cause (missing file, unwritable path, wrong format) are raised as
:class:`InputError` with one line naming the problem and the fix; the CLI turns them into
exit code 2. Writers go through a temporary file that is renamed only on success, so an
error never leaves a partial output behind (long runs keep their partial file on purpose,
so that they can resume).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from engine.config import Config, GridSpec, config_from_dict, config_to_dict
from engine.errors import InputError, file_error
from engine.grid import Grid, build_grid
from engine.io.nclock import NETCDF_LOCK, open_netcdf
from engine.io.safety import clean_stale_temps, temp_sibling

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def assets_dir() -> Path:
    """The folder of shipped data (geography, ONI, coastlines, default checkpoint)."""
    return ASSETS


def shipped_model() -> Path:
    """The shipped default checkpoint, trained on the coarse preset."""
    return ASSETS / "deepda_coarse.pt"


def load_grid(spec: GridSpec) -> Grid:
    """The grid ``spec`` on the shipped geography (land, bathymetry, climatology)."""
    return build_grid(spec, load_geography())


def cache_dir() -> Path:
    """Where the embedded default's data are computed on first use ($DEEPDA_CACHE or ~/.cache/deepda)."""
    return Path(os.environ.get("DEEPDA_CACHE", Path.home() / ".cache" / "deepda"))


@functools.lru_cache(maxsize=2)
def load_geography(path: str | None = None) -> xr.Dataset:
    """Open the shipped 1 degree geography (land, sea-floor depth, Levitus climatology).

    Cached: it is read once per process.
    """
    file = Path(path) if path else assets_dir() / "geography_1deg.nc"
    if not file.exists():
        raise InputError(f"geography file {file} is missing; reinstall DeepDA or run scripts/make_assets.py")
    with open_netcdf(file) as ds:
        return ds.load()


def history_line(command: str | None = None) -> str:
    """A CF ``history`` entry: UTC timestamp and the command that made the file."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp}: {command or ' '.join(['deepda', *sys.argv[1:]])}"


# --- config files ------------------------------------------------------------------------


def read_config(path: str | Path) -> Config:
    """Read a TOML or YAML config file (a ``preset`` key picks the starting preset)."""
    file = Path(path)
    if not file.exists():
        raise InputError(f"config file {file} does not exist; give an existing .toml or .yaml file")
    if file.is_dir():
        raise file_error(file, "is a folder", "give a .toml or .yaml config file")
    try:
        text = file.read_text()
    except PermissionError:
        raise file_error(file, "cannot be read (permission denied)", "give a config file you can read") from None
    except UnicodeDecodeError:
        raise file_error(file, "is not a text file", "give a .toml or .yaml config file") from None
    kind = "YAML" if file.suffix in (".yaml", ".yml") else "TOML"
    try:
        if kind == "YAML":
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = tomllib.loads(text)
    except Exception as err:  # tomllib's and yaml's own error classes
        problem = f"is not valid {kind} ({str(err).splitlines()[0]})"
        raise file_error(file, problem, f"correct the {kind} syntax at the place named") from None
    try:
        return config_from_dict(values)
    except (ValueError, TypeError) as err:  # a SettingError is both an InputError and a ValueError
        raise InputError(f"config file {file}: {err}") from None


def write_config(config: Config, path: str | Path) -> None:
    """Write a config as TOML or YAML (by suffix)."""
    file = Path(path)
    values = config_to_dict(config)
    with atomic_path(file) as tmp:
        if file.suffix in (".yaml", ".yml"):
            import yaml

            tmp.write_text(yaml.safe_dump(values, sort_keys=False))
        else:
            import tomli_w

            tmp.write_text(tomli_w.dumps(values))


# --- safe writing ------------------------------------------------------------------------


def check_writable(path: str | Path) -> Path:
    """Fail early, with one line, if ``path`` cannot be created."""
    file = Path(path)
    parent = file.parent if str(file.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {file}: folder {parent} does not exist; create it or choose another --out")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write {file}: folder {parent} is not writable; choose another --out")
    if file.is_dir():
        raise InputError(f"cannot write {file}: it is a folder; give a file name")
    return file


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds.

    Temporaries that killed runs left for the same ``path`` are removed first.
    """
    file = check_writable(path)
    clean_stale_temps(file)
    tmp = temp_sibling(file)
    try:
        yield tmp
        os.replace(tmp, file)
    finally:
        if tmp.exists():
            tmp.unlink()


def append_csv_row(path: str | Path, row: dict[str, Any]) -> None:
    """Append one row to a CSV log, writing the header first if the file is new.

    A later row may carry a column the header lacks (e.g. a validation score); the whole
    file is then rewritten with the wider header so every column stays aligned.
    """
    file = Path(path)
    frame = pd.DataFrame([row])
    if not file.exists():
        check_writable(file)
        frame.to_csv(file, index=False)
        return
    header = pd.read_csv(file, nrows=0).columns.tolist()
    if set(frame.columns) <= set(header):
        frame.reindex(columns=header).to_csv(file, mode="a", header=False, index=False)
    else:
        merged = pd.concat([pd.read_csv(file), frame], ignore_index=True)
        with atomic_path(file) as tmp:
            merged.to_csv(tmp, index=False)


def read_csv_table(path: str | Path) -> pd.DataFrame:
    """A small CSV table (an OSSE summary, a loss log) with one clear error if unreadable."""
    file = Path(path)
    try:
        return pd.read_csv(file)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"{file} is not a readable CSV table ({type(err).__name__}); check the path") from None


def trim_csv_log(path: str | Path, last_step: int) -> None:
    """Drop log rows after ``last_step`` (a resumed run redoes them from its checkpoint)."""
    file = Path(path)
    if file.exists():
        log = pd.read_csv(file)
        with atomic_path(file) as tmp:
            log[log["step"] <= last_step].to_csv(tmp, index=False)


def write_figure(figure: Any, path: str | Path, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")


def write_dataset(ds: xr.Dataset, path: str | Path, command: str | None = None) -> None:
    """Write a small Dataset (metrics, a subset) as CF netCDF atomically, with history."""
    ds = ds.assign_attrs(Conventions=ds.attrs.get("Conventions", "CF-1.8"), history=history_line(command))
    encoding = {str(name): {"_FillValue": None} for name in ds.coords if name in ds.dims}  # CF 2.5.1
    ds = ds.load()  # read its sources first: dask's threads would wait on the lock held below
    with atomic_path(path) as tmp, NETCDF_LOCK:
        ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes (an uploaded file) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Write a small text file (JSON, Markdown, CSV) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


DEFAULT_MANIFEST = "default.json"


def _model_stamp(model: Path) -> dict[str, Any]:
    stat = model.stat()
    return {"model": str(model.resolve()), "model_bytes": stat.st_size, "model_mtime": stat.st_mtime}


def write_default_manifest(cache: Path, paths: dict[str, Path], model: Path) -> None:
    """Record the embedded default's files and the checkpoint they were made with, so that
    later starts find them without loading the checkpoint (and torch)."""
    entry = {**{k: str(v) for k, v in paths.items()}, **_model_stamp(model)}
    write_text(cache / DEFAULT_MANIFEST, json.dumps(entry, indent=1))


def default_files(cache: Path, model: Path) -> dict[str, Path]:
    """Those of the embedded default's files ("world", "obs", "analysis") that the manifest
    in ``cache`` (:func:`write_default_manifest`) records and that exist, if they were made
    with ``model`` as it is now (same size and time); else none. A default being computed
    records each file as it is finished."""
    try:
        entry = json.loads((cache / DEFAULT_MANIFEST).read_text())
        paths = {k: Path(entry[k]) for k in ("world", "obs", "analysis") if k in entry}
        current = all(entry[k] == v for k, v in _model_stamp(model).items())
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {k: p for k, p in paths.items() if p.exists()} if current else {}


def cached_default(cache: Path, model: Path) -> dict[str, Path] | None:
    """The embedded default's files recorded in ``cache`` by :func:`write_default_manifest`,
    if all three exist and were made with ``model`` as it is now; else None."""
    paths = default_files(cache, model)
    return paths if len(paths) == 3 else None


def read_natural_earth(kind: str) -> list[Any]:
    """The shipped Natural Earth 110m ``land`` or ``coastline`` geometries (shapely, lon/lat).

    Read with pyshp from ``assets/natural_earth`` (the folder that cartopy is also pointed
    at), without importing cartopy, which imports matplotlib.
    """
    import shapefile
    import shapely.geometry

    path = assets_dir() / "natural_earth" / "shapefiles" / "natural_earth" / "physical" / f"ne_110m_{kind}.shp"
    if not path.exists():
        raise InputError(f"Natural Earth file {path} is missing; reinstall DeepDA")
    with shapefile.Reader(str(path)) as reader:
        return [shapely.geometry.shape(shape.__geo_interface__) for shape in reader.shapes()]


def read_colormap_table(name: str) -> np.ndarray:
    """cmocean's RGB table of colormap ``name`` (n x 3, 0-1), read from the installed
    package without importing it (``import cmocean`` imports ``matplotlib.pyplot``)."""
    import importlib.util

    folder = importlib.util.find_spec("cmocean").submodule_search_locations[0]
    return np.loadtxt(Path(folder) / "rgb" / f"{name}-rgb.txt")


def read_oni() -> pd.DataFrame:
    """The shipped NOAA CPC Nino-3.4 record: columns time (mid-month), nino34_anomaly, oni."""

    table = pd.read_csv(assets_dir() / "oni.csv")
    table["time"] = pd.to_datetime({"year": table["year"], "month": table["month"], "day": 15})
    return table[["time", "nino34_anomaly", "oni"]]
