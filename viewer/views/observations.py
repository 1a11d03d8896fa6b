"""Observations: load a profile file (path or upload), a folder, a pattern or several files (read
in the background, as ``deepda observe --read`` does), or generate OSSE observations; where
and when the profiles are, how many per platform and year, what QC flagged, and per file."""

from __future__ import annotations

import re
import shlex
from os.path import commonpath
from pathlib import Path
from typing import Any

import datashader as ds
import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from holoviews.operation.datashader import datashade, dynspread

from engine import io
from engine.io import OBS_FORMATS
from viewer.jobs import JobRunner
from viewer.plots import PLATFORM_COLORS, basemap, map_opts
from viewer.state import AppState, Exportable
from viewer.views.common import pane

PLATFORMS = ("argo", "xbt", "ctd", "mooring", "sst")
FIELD_PLATFORMS = ("sst",)  # one value per cell and time from a field (satellite SST), not a profile
MANY_YEARS = 12  # above this, only every fifth year is labelled on the bars (the labels overlap)


def per_file_qc(files: list[tuple[Path, pd.DataFrame]]) -> pd.DataFrame:
    """One row per file read: its measurements, how many are good, and the rows of each QC
    code (the codes' reasons are in the QC summary), from the engine's per-file summaries."""
    if not files:
        return pd.DataFrame()
    root = Path(commonpath([str(p.parent) for p, _ in files]))
    rows = []
    for path, summary in files:
        counts = {int(c): int(n) for c, n in zip(summary["code"], summary["rows"], strict=True)}
        total = sum(counts.values())
        row = {"file": str(path.relative_to(root)), "measurements": total, "good": counts.get(0, 0)}
        row["flagged"] = total - row["good"]
        rows.append(row | {f"QC {c}": n for c, n in sorted(counts.items()) if c})
    frame = pd.DataFrame(rows).fillna(0)
    qc = sorted((c for c in frame.columns if c.startswith("QC ")), key=lambda c: int(c[3:]))
    return frame[["file", "measurements", "good", "flagged", *qc]].astype({c: "i8" for c in qc})


def read_label(items: list[str]) -> str:
    """A name for the file read from ``items``: the folder's, the pattern's (with its
    folder's), else the first file's, and how many more were named."""
    first = Path(items[0].rstrip("/"))
    if re.search(r"[*?\[]", items[0]):
        base = f"{first.parent.name}_{first.stem}"
    else:
        base = first.name if first.is_dir() else first.stem
    name = re.sub(r"[^A-Za-z0-9.-]+", "_", re.sub(r"[*?\[\]]", "", base)).strip("_.") or "observations"
    return name if len(items) == 1 else f"{name}_and_{len(items) - 1}_more"


def save_upload(data: bytes, filename: str, folder: Path) -> Path:
    """Keep an uploaded file in ``folder`` (written atomically through engine.io)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(filename).name
    io.write_bytes(target, data)
    return target


class ObservationsPage:
    """Positions map, counts per platform and year, QC summary; loading and generating files."""

    title = "Observations"

    def __init__(self, state: AppState, runner: JobRunner, upload_dir: Path | None = None) -> None:
        self.state, self.store, self.runner = state, state.store, runner
        self.upload_dir = upload_dir or io.cache_dir() / "uploads"
        self._follow: Any = None  # the reading job whose per-file QC is shown while it runs
        self._build_widgets()
        self.points_stream = hv.streams.Params(self.window, ["value"])
        self.source_stream = hv.streams.Params(state, ["observations"])
        points = hv.DynamicMap(self._points, streams=[self.points_stream, self.source_stream])
        shaded = dynspread(
            datashade(points, aggregator=ds.count_cat("platform"), color_key=PLATFORM_COLORS, min_alpha=120),
            threshold=0.6, max_px=3,
        )  # fmt: skip
        self.map = (
            (shaded * basemap())
            .opts(**map_opts())
            .opts(width=700, height=350, title="Observation positions (profiles and SST)")
        )
        self.bars = hv.DynamicMap(self._bars, streams=[self.source_stream]).opts(width=540, height=260)
        self.qc_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            disabled=True,
            show_index=False,
            width=520,
            height=220,
            layout="fit_columns",
            widths={"code": 95, "reason": 295, "rows": 130},  # the reasons read whole, the counts too
        )
        state.param.watch(self._refresh, ["observations"])
        self._refresh()
        state.register(
            "Observations: counts per platform and year",
            Exportable("Observations: counts per platform and year", "table", self.counts),
        )
        state.register("Observations: QC summary", Exportable("Observations: QC summary", "table", self.qc_summary))

    def _build_widgets(self) -> None:
        self.source = pn.widgets.Select.from_param(self.state.param.observations, label="Observation file")
        self.path = pn.widgets.TextInput(
            label="Files, a folder or a pattern (several: separated by spaces)",
            placeholder="/data/argo/ or argo/*_prof.nc",
        )
        self.years = pn.widgets.TextInput(label="Years kept (folders; others flagged)", placeholder="e.g. 2005-2012")
        self.format = pn.widgets.Select(label="Format", options=["auto", *[f for f in OBS_FORMATS if f != "deepda"]])
        self.load = pn.widgets.Button(label="Load", color="primary")
        self.load.on_click(self.on_load)
        self.upload = pn.widgets.FileInput(accept=".nc,.csv,.txt")
        self.upload.param.watch(self.on_upload, "value")
        self.window = pn.widgets.DateRangeSlider(
            label="Time window", start=pd.Timestamp("1981-01-01"), end=pd.Timestamp("2021-01-01"),
            value=(pd.Timestamp("1981-01-01"), pd.Timestamp("2021-01-01")), width=700,
        )  # fmt: skip
        self.period = pn.widgets.IntRangeSlider(label="OSSE period", start=1981, end=2020, value=(2019, 2020))
        self.deny = pn.widgets.CheckBoxGroup(label="Deny", options=list(PLATFORMS), value=[], inline=True)
        self.generate = pn.widgets.Button(label="Generate OSSE observations", color="primary")
        self.generate.on_click(self.on_generate)
        self.cancel = pn.widgets.Button(label="Cancel", button_type="warning", visible=False)
        self.cancel.on_click(self.on_cancel)
        self.files_note = pn.pane.Markdown("", visible=False)
        self.files_table = pn.widgets.Tabulator(
            pd.DataFrame(), disabled=True, show_index=False, width=1240, height=220, visible=False
        )
        self.progress = pn.indicators.Progress(value=0, max=100, width=330, visible=False)
        self.status = pn.pane.Markdown("")
        self.summary = pn.pane.Markdown("")

    # --- data -----------------------------------------------------------------------------------

    def profiles(self) -> pd.DataFrame:
        name = self.state.observations
        empty = pd.DataFrame(columns=["time", "lat", "lon", "platform", "rows", "good", "x"])
        return self.store.profiles(name) if name else empty

    def counts(self) -> pd.DataFrame:
        """Profiles per platform (columns) and year (rows); satellite SST, which are fields and not
        profiles, in their own column ``sst (field values)``."""
        prof = self.profiles()
        if prof.empty:
            return pd.DataFrame()
        years = pd.DatetimeIndex(prof["time"]).year
        table = pd.crosstab(years, prof["platform"].astype(str))
        table.index.name = "year"
        table.columns.name = None
        return table.rename(columns={p: f"{p} (field values)" for p in FIELD_PLATFORMS})

    def profile_counts(self) -> pd.DataFrame:
        """Profiles only (no SST field values) per platform and year: what the bars show."""
        table = self.counts()
        return table[[c for c in table.columns if not c.endswith("(field values)")]]

    def qc_summary(self) -> pd.DataFrame:
        """Rows per QC outcome of the file shown (from its stored codes for DSG files)."""
        name = self.state.observations
        return self.store.qc_summary(name) if name else pd.DataFrame()

    # --- plots ----------------------------------------------------------------------------------

    def _points(self, value: tuple[Any, Any] | None = None, **_: Any) -> hv.Points:
        prof = self.profiles()
        if value is not None and not prof.empty:
            lo, hi = (np.datetime64(pd.Timestamp(v)) for v in value)
            times = prof["time"].to_numpy()
            prof = prof[(times >= lo) & (times <= hi)]
        # categories of absent platforms (an empty "unknown") would get a legend entry
        platform = prof["platform"].astype("category").cat.remove_unused_categories()
        if not len(platform.cat.categories):  # datashader's count_cat fails on no category at all
            platform = pd.Categorical(platform, categories=["unknown"])
        prof = prof.assign(platform=platform)
        points = hv.Points(prof, ["x", "lat"], ["platform"])  # x: map coordinate (lon - 180)
        # no point (no file yet, an empty window): datashader needs the map's extent to draw nothing
        return points if len(prof) else points.redim.range(x=(-180.0, 180.0), lat=(-90.0, 90.0))

    def _bars(self, **_: Any) -> hv.Bars:
        from bokeh.models import NumeralTickFormatter

        table = self.profile_counts()
        table = table.loc[:, table.sum() > 0] if not table.empty else table
        if table.empty:
            return hv.Bars([], ["year", "platform"], "profiles")
        long = table.stack().rename("profiles").reset_index()
        long.columns = ["year", "platform", "profiles"]
        long["year"] = long["year"].astype(str)
        colors = [PLATFORM_COLORS.get(p, "#7f7f7f") for p in table.columns]
        years = [str(y) for y in table.index]
        hidden = {y: "" for y in years if len(years) > MANY_YEARS and int(y) % 5}

        def thin_years(plot: Any, _element: Any) -> None:
            plot.state.xaxis.major_label_overrides = hidden

        return hv.Bars(long, ["year", "platform"], "profiles").opts(
            stacked=True, cmap=colors, tools=["hover"], title="Profiles per platform and year (SST not included)",
            xrotation=0 if hidden or len(years) <= 6 else 60, legend_position="top_left", framewise=True,
            yformatter=NumeralTickFormatter(format="0,0"), hooks=[thin_years],
        )  # fmt: skip

    def _refresh(self, *_: Any) -> None:
        """New file chosen: time window, QC table and the one-line summary.

        Everything here comes from the per-profile data, so a long OSSE file is never read
        row by row just to open the page.
        """
        name = self.state.observations
        if name is None:
            self.summary.object = "No observation file loaded yet."
            return
        prof = self.profiles()
        self.qc_table.value = self.qc_summary()
        self._show_files(per_file_qc(self.store.origins.get(self.store.source(name).path, [])))
        if len(prof):
            lo, hi = pd.Timestamp(prof["time"].min()), pd.Timestamp(prof["time"].max())
            hi = hi if hi > lo else lo + pd.Timedelta(days=1)
            self.window.param.update(start=lo, end=hi, value=(lo, hi))
        rows, good = int(prof["rows"].sum()), int(prof["good"].sum())
        fields = prof["platform"].astype(str).isin(FIELD_PLATFORMS).to_numpy()
        sst = f" and {int(prof['rows'][fields].sum()):,} satellite SST values" if fields.any() else ""
        self.summary.object = (
            f"**{name}**: {rows:,} measurements: {int((~fields).sum()):,} profiles{sst}; "
            f"{good:,} good ({100.0 * good / max(rows, 1):.1f} %). "
            f"File: `{self.store.source(name).path}`"
        )

    # --- actions --------------------------------------------------------------------------------

    def _register(self, path: Path, fmt: str | None) -> None:
        try:
            name = self.store.add(path, "observations", name=Path(path).stem)
            # read (and so checked) here, cheaply for DSG files: errors show on this page
            self.store.profile_summary(name, None if fmt in (None, "auto") else fmt)
            self.state.sync()
            self.state.observations = name
            self.status.object = f"Loaded {path}"
        except (io.InputError, KeyError, ValueError) as err:
            self.status.object = f"**Could not load {path}**: {err}"

    def on_load(self, *_: Any) -> None:
        """One file: read at once (checked, errors here); folders, patterns and several files:
        read in the background, a file at a time, with the engine's reader."""
        text = self.path.value.strip()
        try:  # a whole text naming a file is one path, spaces and all
            items = [text] if text and Path(text).expanduser().exists() else shlex.split(text)
            items = [str(Path(i).expanduser()) for i in items]
        except ValueError as err:  # an unclosed quote
            self.status.object = f"**Could not read the paths**: {err}"
            return
        if len(items) == 1 and not Path(items[0]).is_dir() and not re.search(r"[*?\[]", items[0]):
            self._register(Path(items[0]), self.format.value)
        elif items:
            self.read_many(items)

    def read_many(self, items: list[str]) -> None:
        """Read the files named by ``items`` into one profile file in the cache (a background job)."""
        try:
            paths = io.observation_paths(items)
            label = read_label(items)
            out = io.cache_dir() / "runs" / f"obs_{label}.nc"
            out.parent.mkdir(parents=True, exist_ok=True)
            fmt = None if self.format.value == "auto" else self.format.value
            self.runner.read(paths, out, label, self.years.value.strip() or None, fmt)
        except (io.InputError, RuntimeError) as err:
            self.status.object = f"**Could not load {' '.join(items)}**: {err}"
            return
        self._follow = self.runner.latest
        self.poll()

    def on_cancel(self, *_: Any) -> None:
        job = self.runner.current
        if job is not None:
            job.cancel()

    def _show_files(self, table: pd.DataFrame) -> None:
        """The per-file QC table (files read together), hidden for a file loaded alone."""
        self.files_table.value = table
        self.files_table.visible = self.files_note.visible = not table.empty
        if not table.empty:
            good, total = int(table["good"].sum()), int(table["measurements"].sum())
            self.files_note.object = (
                f"**{len(table)} files read**: {total:,} measurements, {good:,} good; "
                "QC 8: a profile already read from another file (counted once)."
            )

    def on_upload(self, *_: Any) -> None:
        if self.upload.value:
            path = save_upload(self.upload.value, self.upload.filename or "upload.nc", self.upload_dir)
            self._register(path, self.format.value)

    def on_generate(self, *_: Any) -> None:
        lo, hi = self.period.value
        deny = tuple(self.deny.value)
        suffix = f"_no_{'_'.join(deny)}" if deny else ""
        out = io.cache_dir() / "runs" / f"obs_osse_{lo}-{hi}{suffix}.nc"
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.runner.observe(out, f"osse {lo}-{hi}{suffix}", (lo, hi), deny)
        except RuntimeError as err:
            self.status.object = str(err)
        self.poll()

    def poll(self) -> None:
        """Show the observation job's progress (called periodically by the app)."""
        job = self.runner.latest
        if job is None or job.kind != "observations":
            return
        self.progress.visible = self.cancel.visible = job.running
        self.progress.value = int(100 * job.fraction)
        self.status.object = job.describe()
        if job is not self._follow:
            return
        if job.running:
            self._show_files(per_file_qc(list(job.files)))
        elif job.status == "done" and job.result is not None:
            self._follow = None
            self.state.sync()
            name = next((s.name for s in self.store.sources.values() if s.path == job.result.resolve()), None)
            if name is not None:
                self.state.observations = name  # the file just read is the one shown

    def panel(self) -> pn.viewable.Viewable:
        load = pn.Card(
            self.path, self.years, self.format, self.load, pn.pane.Markdown("or upload a file:"), self.upload,
            title="Load profile files (CF DSG, CSV, EN4, Argo)", width=360,
        )  # fmt: skip
        generate = pn.Card(
            self.period, pn.pane.Markdown("Deny platforms:"), self.deny, self.generate,
            title="Generate OSSE observations from the model world", width=360, collapsed=True,
        )  # fmt: skip
        controls = pn.Column(self.source, load, generate, self.progress, self.status, self.cancel, width=380)
        plots = pn.Column(
            self.summary, self.window, pane(self.map),
            pn.Row(pane(self.bars), pn.Column(pn.pane.Markdown("**QC summary**"), self.qc_table)),
            self.files_note, self.files_table,
        )  # fmt: skip
        return pn.Row(controls, plots, name=self.title)
