"""Observations: load a profile file (path or upload) or generate OSSE observations; where and
when the profiles are, how many per platform and year, and what QC flagged."""

from __future__ import annotations

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
        self.path = pn.widgets.TextInput(label="Path of a profile file", placeholder="/path/to/profiles.nc")
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
        prof = prof.assign(platform=prof["platform"].astype("category").cat.remove_unused_categories())
        return hv.Points(prof, ["x", "lat"], ["platform"])  # x: map coordinate (lon - 180)

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
        if self.path.value.strip():
            self._register(Path(self.path.value.strip()).expanduser(), self.format.value)

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
        self.progress.visible = job.running
        self.progress.value = int(100 * job.fraction)
        self.status.object = job.describe()

    def panel(self) -> pn.viewable.Viewable:
        load = pn.Card(
            self.path, self.format, self.load, pn.pane.Markdown("or upload a file:"), self.upload,
            title="Load a profile file (CF DSG, CSV, EN4, Argo)", width=360,
        )  # fmt: skip
        generate = pn.Card(
            self.period, pn.pane.Markdown("Deny platforms:"), self.deny, self.generate, self.progress,
            title="Generate OSSE observations from the model world", width=360, collapsed=True,
        )  # fmt: skip
        controls = pn.Column(self.source, load, generate, self.status, width=380)
        plots = pn.Column(
            self.summary, self.window, pane(self.map),
            pn.Row(pane(self.bars), pn.Column(pn.pane.Markdown("**QC summary**"), self.qc_table)),
        )  # fmt: skip
        return pn.Row(controls, plots, name=self.title)
