"""Long engine work (assimilation, OSSE observations) off the UI thread, with progress and cancel.

A :class:`JobRunner` (one per server, see :func:`get_runner`) runs one job at a time in a
daemon thread, because the engine already uses every core. The pages never wait on a
job: they poll :attr:`Job.fraction` and :attr:`Job.status` from a periodic callback, and a
finished assimilation is registered in the :class:`~viewer.store.DataStore`, which puts it
in every session's dataset selector.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine import io
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
        steps = f"{self.done}/{self.total} steps" if self.total else "starting"
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

    def start(self, kind: str, label: str, out: Path, work: Callable[[Job], Path], result_kind: str) -> Job:
        """Start ``work(job)`` in a thread; its returned path joins the store as ``result_kind``."""
        with self._lock:
            if self.current is not None:
                raise RuntimeError(f"a job is already running ({self.current.label}); wait or cancel it")
            job = Job(len(self.jobs) + 1, kind, label, Path(out))
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
        from engine.da.reanalysis import assimilate_to_file

        def work(job: Job) -> Path:
            return assimilate_to_file(
                method, Path(obs_path), Path(out), preset=preset, period=period, members=members, resume=resume,
                progress=job.update, should_stop=job.stop_requested,
            )  # fmt: skip

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


def get_runner(store: DataStore) -> JobRunner:
    """The job runner of this server process."""
    return memo(("runner", id(store)), lambda: JobRunner(store))
