"""Long engine work (assimilation, OSSE observations, the first start) off the UI thread, with progress.

A :class:`JobRunner` (one per server, see :func:`get_runner`) runs one job at a time in a
daemon thread, because the engine already uses every core. The pages never wait on a
job: they poll :attr:`Job.fraction` and :attr:`Job.status` from a periodic callback, and a
finished assimilation is registered in the :class:`~viewer.store.DataStore`, which puts it
in every session's dataset selector. :func:`follow_default` follows the embedded default's
first start, computed in its own process, and registers its files as they are finished.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine import io
from engine.progress import describe
from viewer.store import DataStore, memo

STATUSES = ("running", "done", "cancelled", "failed")


@dataclass
class Job:
    """One background run; its fields are written by the worker thread and read by the pages."""

    id: int
    kind: str
    label: str
    out: Path
    total: int = 0
    done: int = 0
    status: str = "running"
    message: str = ""
    result: Path | None = None
    unit: str = "steps"
    files: list[tuple[Path, Any]] = field(default_factory=list)  # reading: (file, its QC summary) so far
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def update(self, done: int, total: int) -> None:
        """Progress callback for the engine: ``done`` of ``total`` steps finished."""
        self.done, self.total = int(done), int(total)

    def cancel(self) -> None:
        """Ask the job to stop after its current step."""
        self._stop.set()

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def fraction(self) -> float:
        return 1.0 if self.status == "done" else (self.done / self.total if self.total else 0.0)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (tests and scripts only); True if it ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def describe(self) -> str:
        """One line for the page: what, how far, how it ended."""
        elapsed = (self.finished or time.monotonic()) - self.started
        steps = f"{self.done}/{self.total} {self.unit}" if self.total else "preparing (model, observations)"
        text = f"{self.kind} '{self.label}': {self.status}, {steps}, {elapsed:.0f} s"
        return f"{text}. {self.message}" if self.message else text


class JobRunner:
    """Runs jobs one at a time in background threads and registers their results."""

    def __init__(self, store: DataStore) -> None:
        self.store = store
        self.jobs: list[Job] = []
        self._lock = threading.Lock()

    @property
    def current(self) -> Job | None:
        """The running job, if any."""
        return next((j for j in reversed(self.jobs) if j.running), None)

    @property
    def latest(self) -> Job | None:
        return self.jobs[-1] if self.jobs else None

    def start(
        self, kind: str, label: str, out: Path, work: Callable[[Job], Path], result_kind: str, unit: str = "steps"
    ) -> Job:
        """Start ``work(job)`` in a thread; its returned path joins the store as ``result_kind``."""
        with self._lock:
            if self.current is not None:
                raise RuntimeError(f"a job is already running ({self.current.label}); wait or cancel it")
            job = Job(len(self.jobs) + 1, kind, label, Path(out), unit=unit)
            self.jobs.append(job)
        job._thread = threading.Thread(
            target=self._run, args=(job, work, result_kind), daemon=True, name=f"job-{job.id}"
        )
        job._thread.start()
        return job

    def _run(self, job: Job, work: Callable[[Job], Path], result_kind: str) -> None:
        from engine.da.base import Cancelled

        try:
            job.result = work(job)
            job.message = f"wrote {job.result}"
            self.store.add(job.result, result_kind, name=job.label)
            job.status = "done"
        except Cancelled as err:
            job.status, job.message = "cancelled", str(err) or "cancelled"
        except io.InputError as err:
            job.status, job.message = "failed", str(err)
        except Exception as err:  # reported on the page, the server keeps running
            job.status, job.message = "failed", f"{type(err).__name__}: {err}"
            traceback.print_exc()
        finally:
            job.finished = time.monotonic()

    # --- the engine's jobs -------------------------------------------------------------------

    def assimilate(
        self,
        method: str | Path,
        obs_path: str | Path,
        out: str | Path,
        label: str,
        period: tuple[int, int] | None = None,
        members: int = 1,
        preset: str = "coarse",
        resume: bool = False,
    ) -> Job:
        """Run ``engine.da.reanalysis.assimilate_to_file``; the analysis joins the dataset selector."""
        from engine.da.base import Cancelled
        from engine.da.reanalysis import assimilate_to_file

        def work(job: Job) -> Path:
            try:
                return assimilate_to_file(
                    method, Path(obs_path), Path(out), preset=preset, period=period, members=members, resume=resume,
                    progress=job.update, should_stop=job.stop_requested,
                )  # fmt: skip
            except Cancelled:
                io.discard_partial(out)  # the page offers no resume: a cancelled run leaves nothing
                raise

        return self.start("assimilation", label, Path(out), work, "analysis")

    def observe(
        self, out: str | Path, label: str, period: tuple[int, int], deny: tuple[str, ...] = (), preset: str = "coarse"
    ) -> Job:
        """Sample the historical model world with the OSSE network into a profile file."""

        def work(job: Job) -> Path:
            from engine.config import preset as preset_config
            from engine.osse import historical_world, write_osse_observations

            config = preset_config(preset)
            config = replace(config, network=replace(config.network, deny=tuple(deny)))
            world = historical_world(config, io.load_grid(config.grid), period)
            job.update(0, world.n_steps)
            counter = {"done": 0}

            def progress(n: int) -> None:
                counter["done"] += n
                job.update(counter["done"], world.n_steps)

            write_osse_observations(world, config, Path(out), progress, should_stop=job.stop_requested)
            return Path(out)

        return self.start("observations", label, Path(out), work, "observations")

    def read(
        self,
        paths: list[Path],
        out: str | Path,
        label: str,
        period: str | None = None,
        format: str | None = None,
        preset: str = "coarse",
    ) -> Job:
        """Read many observation files into one profile file, a file at a time, as ``deepda
        observe --read`` does (``engine.io.write_observation_files``: QC, the background
        check, a profile read twice counted once); each file's QC summary joins ``job.files``
        as it is read, and the store keeps them (:attr:`DataStore.origins`)."""
        from engine.da.base import Cancelled

        def work(job: Job) -> Path:
            from engine.config import preset as preset_config
            from engine.observe.background_check import climatology_check

            config = preset_config(preset)
            grid = io.load_grid(config.grid)
            options = {"grid": grid, "period": period, "check": climatology_check(grid, config)}
            job.update(0, len(paths))

            def on_file(path: Path, summary: Any) -> None:
                job.files.append((Path(path), summary))
                job.update(len(job.files), len(paths))
                if job.stop_requested() and len(job.files) < len(paths):
                    raise Cancelled(f"stopped after {len(job.files)} of {len(paths)} files")

            io.write_observation_files(list(paths), out, format, on_file, None, **options)
            self.store.origins[Path(out).resolve()] = list(job.files)
            return Path(out)

        return self.start("observations", label, Path(out), work, "observations", unit="files")


def get_runner(store: DataStore) -> JobRunner:
    """The job runner of this server process."""
    return memo(("runner", id(store)), lambda: JobRunner(store))


# --- the embedded default's first start -----------------------------------------------------

DEFAULT_NAMES = {
    "world": ("truth", "truth"),
    "obs": ("observations", "observations"),
    "analysis": ("analysis", "deepda"),
}


def register_default(store: DataStore, paths: dict[str, Path]) -> None:
    """Register the embedded default's files (truth, observations, the shipped model's
    analysis; those given) under their fixed names, in place of those of its first year."""
    for key, path in paths.items():
        kind, name = DEFAULT_NAMES[key]
        store.add(path, kind, name, replace=True)
    store.ready = True


FOLLOW_S = 1.0  # how often the server looks at the first start's progress
DEAD_AFTER_S = 30.0  # no computing process for this long (and no default): it has stopped


def follow_default(
    store: DataStore, cache: Path | None = None, start: Callable[[Path], Any] | None = None
) -> threading.Thread | None:
    """Register the embedded default at once when it is in the cache for the shipped model
    (later starts: nothing to compute, torch not even imported); else make sure it is being
    computed (``start(cache)``, by default ``deepda demo --data-only`` in its own process,
    which ``deepda view`` has normally started already) and follow it in a thread: its first
    year is shown as soon as it is there, the whole period when done, and meanwhile
    ``store.status`` and ``store.progress`` tell how far it is and the time left."""
    cache = cache or io.cache_dir()
    model = io.shipped_model()
    found = io.cached_default(cache, model)
    if found is not None:
        register_default(store, found)
        return None
    if start is None:
        from engine.cli.report import start_default_data as start
    start(cache)
    store.status, store.progress = "Computing the embedded default (first start)", 0.0
    thread = threading.Thread(target=_follow, args=(store, cache, model), name="deepda-default-data", daemon=True)
    thread.start()
    return thread


def _follow(store: DataStore, cache: Path, model: Path) -> None:
    """The loop of :func:`follow_default`: until the whole default is registered or failed.

    The first year's files are registered one by one as they are finished (the truth
    within seconds: the Explore page is then usable), the whole period's at the end.
    """
    shown: dict[str, Path] = {}
    quiet_since = time.monotonic()
    while True:
        full = io.cached_default(cache, model)
        if full is not None:
            register_default(store, full)
            store.status, store.progress = "", 1.0
            return
        first_year = io.default_files(cache / io.first_start.FIRST_YEAR, model)
        if first_year != shown:
            register_default(store, {k: p for k, p in first_year.items() if shown.get(k) != p})
            shown = first_year
        entry = io.first_start.read_progress(cache) or {}
        if entry.get("error"):
            store.error = f"The first start's computation failed: {entry['error']} (log: {cache / io.first_start.LOG})"
            store.status = ""
            return
        if io.first_start.is_locked(cache / io.first_start.LOCK):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > DEAD_AFTER_S:
            store.error = (
                f"The first start's computation stopped (log: {cache / io.first_start.LOG}); "
                "restart 'deepda view' to continue it from the cache"
            )
            store.status = ""
            return
        store.status, store.progress = first_start_status(entry, shown), float(entry.get("fraction", 0.0))
        time.sleep(FOLLOW_S)


def first_start_status(entry: dict[str, Any], shown: dict[str, Path]) -> str:
    """The banner over the page while the default is computed: how far, the time left, what
    runs now and what the page shows meanwhile."""
    text = "Computing the embedded default (first start, once)"
    if entry.get("stage"):
        text += f": {describe(float(entry.get('fraction', 0.0)), entry.get('seconds_left'))}; now: {entry['stage']}"
    if shown:
        names = {"world": "truth", "obs": "observations", "analysis": "analysis (deepda)"}
        listed = [names[k] for k in names if k in shown]
        text += f". Showing the first year's {' and '.join(listed)} meanwhile; the whole 40 years follow"
    return text
