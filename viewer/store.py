"""The data store: every file the dashboard shows, opened once per server, and cut into slices.

One :class:`DataStore` per server process (see :func:`get_store`) holds the registry of
sources (truth worlds, analyses, observation files) and hands out slices as plain
``xarray`` objects. Gridded files are opened lazily through ``engine.io.open_fields``; a
variable small enough (``DEEPDA_VIEWER_MAX_MB``, default 1500 MB) is loaded into memory the
first time a time series or a statistic needs it, so that later slices are instantaneous.
Everything cached here is keyed on the file's path and modification time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import param
import xarray as xr

from engine import io
from engine.errors import with_flag
from engine.grid import Grid, grid_spec_for
from engine.observe.qc import normalise_longitude
from engine.train.normalize import climatology_at_times

KINDS = ("truth", "analysis", "observations")
VARIABLES = {"absolute": "thetao", "anomaly": "thetao_anomaly", "spread": "thetao_spread"}
MAX_MB = float(os.environ.get("DEEPDA_VIEWER_MAX_MB", "1500"))
SYNC_READ_MB = 64.0  # read at once for a time series (well under a second); larger: in the background

_memo: dict[Hashable, Any] = {}
_locks: dict[Hashable, threading.Lock] = {}
_guard = threading.Lock()


def memo(key: Hashable, compute: Callable[[], Any]) -> Any:
    """Compute ``compute()`` once per server for ``key`` (thread-safe, one lock per key)."""
    if key in _memo:
        return _memo[key]
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _memo:
            _memo[key] = compute()
    return _memo[key]


def file_key(path: Path) -> tuple[str, float]:
    """(path, modification time): a cache key that changes when the file is rewritten."""
    return str(path), path.stat().st_mtime


@dataclass(frozen=True)
class Source:
    """One registered file."""

    name: str
    path: Path
    kind: str  # one of KINDS


def grid_for(ds: xr.Dataset) -> Grid:
    """The engine Grid matching a gridded file's coordinates (built once per server)."""
    spec = grid_spec_for(ds["lat"].values, ds["depth"].values, str(ds.attrs.get("grid", "custom")))
    return memo(("grid", spec), lambda: io.load_grid(spec))


def steps_per_year(ds: xr.Dataset) -> int:
    """Steps per year of a file's time axis (attribute, else from the time spacing)."""
    if "steps_per_year" in ds.attrs:
        return int(ds.attrs["steps_per_year"])
    times = pd.DatetimeIndex(ds["time"].values)
    if len(times) < 2:
        return 73
    days = float(np.median(np.diff(times.values)) / np.timedelta64(1, "D"))
    return 12 if days > 20 else 73


class DataStore(param.Parameterized):
    """Registry of sources and the slices the pages draw (shared by every session)."""

    version = param.Integer(default=0, doc="bumped whenever a source is added")
    status = param.String(default="", doc="what the store is doing (default data preparation)")
    progress = param.Number(default=1.0, bounds=(0.0, 1.0))
    ready = param.Boolean(default=False, doc="the default (or given) data are registered")
    error = param.String(default="")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.sources: dict[str, Source] = {}
        self._lock = threading.Lock()
        self._loading: set[Hashable] = set()
        self._failed: set[Hashable] = set()
        self._tasks: dict[Hashable, threading.Thread] = {}
        self._task_errors: dict[Hashable, str] = {}
        self.origins: dict[Path, pd.DataFrame] = {}  # observation file -> QC per file it was read from

    # --- registry -------------------------------------------------------------------------

    def add(self, path: str | Path, kind: str, name: str | None = None, replace: bool = False) -> str:
        """Register a file (checked: a gridded file for a truth or an analysis) and return
        its name in the selectors; ``replace`` points an existing ``name`` at ``path``."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; use one of {KINDS}")
        file = Path(path).expanduser().resolve()
        if not file.exists():
            raise io.InputError(f"{file} does not exist; give the path of an existing file")
        if kind != "observations":
            io.check_fields(file)
        base = name or (kind if kind != "analysis" else file.stem.removeprefix("analysis_"))
        with self._lock:
            label, n = base, 1
            while label in self.sources and self.sources[label].path != file and not replace:
                n += 1
                label = f"{base} ({n})"
            self.sources[label] = Source(label, file, kind)
        self.version += 1
        return label

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, in registration order."""
        return [s.name for s in list(self.sources.values()) if s.kind == kind]

    def source(self, name: str) -> Source:
        if name not in self.sources:
            raise KeyError(f"no dataset named {name!r}; known: {', '.join(self.sources) or 'none'}")
        return self.sources[name]

    # --- gridded fields -------------------------------------------------------------------

    def fields(self, name: str) -> xr.Dataset:
        """The lazily opened Dataset of a gridded source."""
        key = file_key(self.source(name).path)
        return memo(("open", key), lambda: io.open_fields(key[0]))

    def grid(self, name: str) -> Grid:
        return grid_for(self.fields(name))

    def variables(self, name: str) -> list[str]:
        """The variable choices (absolute / anomaly / spread) a gridded source offers."""
        ds = self.fields(name)
        out = ["absolute", "anomaly"] if "thetao" in ds else []
        return out + (["spread"] if "thetao_spread" in ds else [])

    def times(self, name: str) -> np.ndarray:
        return self.fields(name)["time"].values

    def depths(self, name: str) -> np.ndarray:
        return self.fields(name)["depth"].values

    def _derived(self, variable: str, ds: xr.Dataset) -> bool:
        return variable == "anomaly" and VARIABLES["anomaly"] not in ds

    def _raw(self, name: str, variable: str) -> xr.DataArray:
        ds = self.fields(name)
        var = "thetao" if self._derived(variable, ds) else VARIABLES[variable]
        if var not in ds:
            raise KeyError(f"{name} has no {variable} field ({var})")
        return ds[var]

    def in_memory(self, name: str, variable: str) -> bool:
        """Whether the whole variable fits the memory budget (then it is loaded once)."""
        return self._raw(name, variable).nbytes / 1e6 <= MAX_MB

    def data(self, name: str, variable: str) -> xr.DataArray:
        """The whole (time, depth, lat, lon) variable, loaded once when it fits in memory."""
        raw = self._raw(name, variable)
        if not self.in_memory(name, variable):
            return raw
        return memo(self._data_key(name, variable), lambda: self._load(name, variable))

    def _load(self, name: str, variable: str) -> xr.DataArray:
        ds = self.fields(name)
        lazy = self._raw(name, variable)
        # a year at a time: each read holds the netCDF library's process-wide lock, which a
        # whole 40-year variable would keep for seconds from every other slice (a map, a tap)
        block = steps_per_year(ds)
        steps = range(0, lazy.sizes["time"], block)
        values = np.concatenate(
            [lazy.isel(time=slice(k, k + block)).values for k in steps], axis=lazy.dims.index("time")
        )
        raw = lazy.copy(data=values)
        if not self._derived(variable, ds):
            return raw
        clim = climatology_at_times(self.grid(name), ds["time"].values, steps_per_year(ds), {})
        return (raw - clim.transpose(*raw.dims)).astype("f4").rename("thetao_anomaly")

    def _data_key(self, name: str, variable: str) -> Hashable:
        """The memo key of a whole variable in memory (changes when the file is rewritten)."""
        return ("data", file_key(self.source(name).path), variable)

    def loaded(self, name: str, variable: str) -> bool:
        return self._data_key(name, variable) in _memo

    def series_ready(self, name: str, variable: str) -> bool:
        """Whether a time series of ``variable`` can be cut at once: the variable is in memory,
        or small enough to read now (``SYNC_READ_MB``), or too large ever to be loaded (then
        it is read lazily). Otherwise it should be loaded first (:meth:`load_in_background`)."""
        size_mb = self._raw(name, variable).nbytes / 1e6
        # a failed load counts as ready: the series is then read in the page, which shows the error
        failed = self._data_key(name, variable) in self._failed
        return self.loaded(name, variable) or failed or size_mb <= SYNC_READ_MB or size_mb > MAX_MB

    def load_in_background(self, name: str, variable: str) -> None:
        """Load a whole variable into memory in a worker thread (one per variable)."""
        key = self._data_key(name, variable)
        with self._lock:
            if key in self._loading or key in _memo:
                return
            self._loading.add(key)

        def run() -> None:
            try:
                self.data(name, variable)
            except Exception:  # noqa: BLE001 - series_ready then lets the page read it and show the error
                self._failed.add(key)
            finally:
                self._loading.discard(key)

        threading.Thread(target=run, name=f"deepda-load-{name}-{variable}", daemon=True).start()

    def background(self, key: Hashable, compute: Callable[[], Any]) -> tuple[str, Any]:
        """``compute()`` in a worker thread, once per server for ``key``: ("done", its value),
        ("failed", the message) or ("running", None); the first call starts it. A page calls
        this again from its periodic poll until it is done."""
        if key in _memo:
            return "done", _memo[key]
        if key in self._task_errors:
            return "failed", self._task_errors[key]

        def run() -> None:
            try:
                memo(key, compute)
            except Exception as err:  # noqa: BLE001 - shown on the page that asked
                message = str(err) if isinstance(err, io.InputError) else f"{type(err).__name__}: {err}"
                self._task_errors[key] = message

        with self._lock:
            if key not in self._tasks:
                self._tasks[key] = threading.Thread(target=run, name="deepda-task", daemon=True)
                self._tasks[key].start()
        return "running", None

    def wait(self, key: Hashable, timeout: float | None = None) -> None:
        """Block until the background task of ``key`` ends (tests and scripts only)."""
        thread = self._tasks.get(key)
        if thread is not None:
            thread.join(timeout)

    def select(self, name: str, variable: str, **isel: Any) -> xr.DataArray:
        """A loaded slice by index (``time``, ``depth``, ``lat``, ``lon``)."""
        if self.loaded(name, variable) or "time" not in isel:
            return self.data(name, variable).isel(isel).load()
        ds = self.fields(name)
        out = self._raw(name, variable).isel(isel).load()
        if self._derived(variable, ds):
            times = np.atleast_1d(ds["time"].values[isel["time"]])
            clim = climatology_at_times(self.grid(name), times, steps_per_year(ds), isel)
            clim = clim.isel(time=0) if np.ndim(isel["time"]) == 0 else clim
            out = (out - clim.transpose(*out.dims)).rename("thetao_anomaly")
        return out

    def time_index(self, name: str, time: np.datetime64) -> int:
        """Index of the step of ``name`` nearest to ``time``."""
        times = self.times(name)
        return int(np.abs(times - np.datetime64(time)).argmin())

    def nearest_cell(self, name: str, lat: float, lon: float) -> tuple[int, int]:
        """(lat index, lon index) of the cell nearest to a point (lon taken modulo 360)."""
        ds = self.fields(name)
        j = int(np.abs(ds["lat"].values - lat).argmin())
        dlon = (ds["lon"].values - lon % 360.0 + 180.0) % 360.0 - 180.0
        return j, int(np.abs(dlon).argmin())

    # --- observations ---------------------------------------------------------------------

    def observations(self, name: str, format: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(profile table with QC, QC summary) of an observation source, read once."""
        key = ("obs", file_key(self.source(name).path), format)
        return memo(key, lambda: io.open_observations(key[1][0], format))

    def is_osse(self, name: str) -> bool:
        """Whether an observation source holds OSSE observations (sampled from a model world)."""
        path = self.source(name).path
        return memo(("is osse", file_key(path)), lambda: io.is_osse_file(path))

    def profiles(self, name: str, format: str | None = None) -> pd.DataFrame:
        """One row per profile (time, lat, lon, platform, rows, good rows, map x), read once.

        DeepDA DSG files are read from their profile dimension and QC codes alone (see
        :meth:`profile_summary`); other formats (small) through the full table.
        """
        return self.profile_summary(name, format)[0]

    def qc_summary(self, name: str, format: str | None = None) -> pd.DataFrame:
        """Rows per QC outcome (``engine.observe.profiles.qc_summary`` layout), read once."""
        return self.profile_summary(name, format)[1]

    def profile_summary(self, name: str, format: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(profiles, QC summary) of an observation source, without the full table for DSG files.

        A 40-year OSSE file has tens of millions of rows but a few million profiles, and
        the Observations page draws only profiles. For a DeepDA DSG file the QC codes are
        the ones stored in the file (``engine.io.read_profile_summary``); other formats
        are read and QC'd in full by :meth:`observations`.
        """
        path = self.source(name).path
        key = ("profile summary", file_key(path), format)

        def compute() -> tuple[pd.DataFrame, pd.DataFrame]:
            if io.observation_format(path, format) == "dsg":
                try:
                    headers, qc = io.read_profile_summary(path)
                except io.InputError:
                    pass  # a CF profile file from elsewhere: only the full reader knows its names
                else:
                    headers["lon"] = normalise_longitude(headers["lon"].to_numpy())  # as QC does for the table
                    return with_map_x(headers[["time", "lat", "lon", "platform", "rows", "good"]]), qc
            table, qc = self.observations(name, format)
            return with_map_x(profiles_from_table(table)), qc

        return memo(key, compute)


def profiles_from_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per profile (time, lat, lon, platform, rows, good) of a full profile table."""
    ids = table["profile_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, dtype=np.int64)
    first = table.iloc[starts][["time", "lat", "lon", "platform"]].reset_index(drop=True)
    first["rows"] = np.diff(np.r_[starts, len(table)]).astype(np.int64)
    good = (table["qc"].to_numpy() == 0).astype("i8")
    first["good"] = np.add.reduceat(good, starts) if len(starts) else np.zeros(0, dtype=np.int64)
    return first


def with_map_x(profiles: pd.DataFrame) -> pd.DataFrame:
    """``profiles`` (a copy) with ``x``, the Pacific-centred map coordinate (lon - 180)."""
    out = profiles.reset_index(drop=True)
    out["x"] = out["lon"].to_numpy() % 360.0 - 180.0
    return out


def get_store() -> DataStore:
    """The store of this server process (one per process, shared by every session)."""
    return memo(("store",), DataStore)


def configure(store: DataStore, world: str | None, obs: str | None, analyses: list[str]) -> bool:
    """Register explicitly given files; True when at least a truth or an analysis was given.

    Raises InputError, naming the option, for a file that is missing or of the wrong kind.
    """
    if obs and not (world or analyses):
        raise io.InputError("--obs needs a gridded file to show with it: add --world W.nc or --analysis A.nc")
    given = [("--world", world, "truth"), ("--obs", obs, "observations")] + [
        ("--analysis", a, "analysis") for a in analyses
    ]
    for flag, path, kind in given:
        if not path:
            continue
        try:
            if kind == "observations":
                io.check_observations(path)
            store.add(path, kind)
        except io.InputError as err:
            raise with_flag(flag, err) from None
    return bool(world or analyses)
