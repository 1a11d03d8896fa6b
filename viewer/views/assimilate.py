"""Assimilate: run DeepDA (a checkpoint) or a baseline on an observation file in the background,
with a progress bar and Cancel; the finished analysis joins the dataset selector."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn

from engine import io
from engine.config import PRESET_NAMES
from engine.da.registry import BASELINES as REGISTRY
from viewer.jobs import JobRunner
from viewer.state import AppState

BASELINES = {b.label[0].upper() + b.label[1:]: b.name for b in REGISTRY.values()}


def checkpoints(folder: Path | None = None) -> dict[str, str]:
    """Shipped checkpoints (``assets/*.pt``), default model first."""
    folder = folder or io.assets_dir()
    found = sorted(folder.glob("*.pt"), key=lambda p: (p.name != "deepda_coarse.pt", p.name))
    return {f"DeepDA: {p.name}": str(p) for p in found}


class AssimilatePage:
    """Choose method, observations, period and members; run, watch, cancel."""

    title = "Assimilate"

    def __init__(self, state: AppState, runner: JobRunner, out_dir: Path | None = None) -> None:
        self.state, self.store, self.runner = state, state.store, runner
        self._announced: set[int] = set()
        methods = {**checkpoints(), **BASELINES}
        self.method = pn.widgets.Select(label="Method", options=methods, value=next(iter(methods.values())))
        self.checkpoint = pn.widgets.TextInput(label="or a checkpoint path", placeholder="/path/to/model.pt")
        self.observations = pn.widgets.Select.from_param(state.param.observations, label="Observations")
        self.period = pn.widgets.IntRangeSlider(label="Period", start=1981, end=2020, value=(1981, 2020), step=1)
        self.members = pn.widgets.IntInput(label="Ensemble members", value=1, start=1, end=30)
        # a checkpoint knows its grid; only a baseline asks for one
        self.preset = pn.widgets.Select(label="Grid preset", options=list(PRESET_NAMES), value="coarse")
        self.label = pn.widgets.TextInput(label="Name of the result", placeholder="automatic")
        self.out_dir = pn.widgets.TextInput(label="Output folder", value=str(out_dir or io.cache_dir() / "runs"))
        self.run = pn.widgets.Button(label="Run", color="primary", width=120)
        self.cancel = pn.widgets.Button(label="Cancel", color="danger", width=120, disabled=True)
        self.run.on_click(self.on_run)
        self.cancel.on_click(self.on_cancel)
        self.progress = pn.indicators.Progress(label="progress", value=0, max=100, width=500, bar_color="primary")
        self.status = pn.pane.Markdown("No run yet.", css_classes=["job-status"])
        self.history = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, width=900)
        state.param.watch(self._period_from_obs, ["observations"])
        self._period_from_obs()
        self.method.param.watch(self._preset_for_baselines_only, ["value"])
        self.checkpoint.param.watch(self._preset_for_baselines_only, ["value"])
        self._preset_for_baselines_only()

    def _preset_for_baselines_only(self, *_: Any) -> None:
        self.preset.visible = self.method_value() in REGISTRY

    def _period_from_obs(self, *_: Any) -> None:
        """Limit the period slider to the years of the chosen observation file."""
        name = self.state.observations
        if name is None:
            return
        years = pd.DatetimeIndex(self.store.profiles(name)["time"]).year
        if len(years):
            lo, hi = int(years.min()), int(years.max())
            self.period.param.update(start=lo, end=max(hi, lo + 1), value=(lo, hi))

    def method_value(self) -> str:
        """The checkpoint path typed in, else the selected method."""
        return self.checkpoint.value.strip() or self.method.value

    def auto_label(self) -> str:
        method = Path(self.method_value()).stem if self.method_value().endswith(".pt") else self.method_value()
        lo, hi = self.period.value
        members = f"_m{self.members.value}" if self.members.value > 1 else ""
        return f"{method}_{lo}-{hi}{members}"

    def on_run(self, *_: Any) -> None:
        """Start the assimilation job (returns at once)."""
        if self.state.observations is None:
            self.status.object = "**Choose an observation file first** (Observations page)."
            return
        label = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.label.value.strip() or self.auto_label())
        folder = Path(self.out_dir.value).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.runner.assimilate(
                self.method_value(), self.store.source(self.state.observations).path, folder / f"analysis_{label}.nc",
                label, period=tuple(self.period.value), members=int(self.members.value), preset=self.preset.value,
            )  # fmt: skip
        except (RuntimeError, OSError) as err:
            self.status.object = f"**Not started**: {err}"
            return
        self.poll()

    def on_cancel(self, *_: Any) -> None:
        job = self.runner.current
        if job is not None:
            job.cancel()
            self.status.object = f"Cancelling '{job.label}' after its current step..."

    def poll(self) -> None:
        """Mirror the latest assimilation job on the page (called periodically by the app)."""
        jobs = [j for j in self.runner.jobs if j.kind == "assimilation"]
        if not jobs:
            return
        job = jobs[-1]
        self.progress.value = int(round(100 * job.fraction))
        self.progress.bar_color = {"done": "success", "failed": "danger", "cancelled": "warning"}.get(
            job.status, "primary"
        )
        self.status.object = job.describe()
        self.run.disabled, self.cancel.disabled = job.running, not job.running
        if job.status == "done" and job.id not in self._announced:
            self._announced.add(job.id)
            self.state.sync()
            if job.label in self.state.param.dataset.objects:
                self.state.dataset = job.label
        self.history.value = pd.DataFrame(
            [
                {"job": j.id, "name": j.label, "status": j.status, "steps": f"{j.done}/{j.total}", "file": str(j.out)}
                for j in jobs
            ]
        )

    def panel(self) -> pn.viewable.Viewable:
        form = pn.Column(
            self.method, self.checkpoint, self.observations, self.period, self.members, self.preset, self.label,
            self.out_dir, pn.Row(self.run, self.cancel), width=420,
        )  # fmt: skip
        info = pn.pane.Markdown(
            "The run cycles over the period (each analysis is the next background) and writes CF netCDF step "
            "by step; the page stays usable meanwhile. A finished run appears in the *Dataset* selector.",
            width=700,
        )
        return pn.Row(form, pn.Column(info, self.progress, self.status, self.history), name=self.title)
