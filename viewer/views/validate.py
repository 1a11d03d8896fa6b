"""Validate: the analysis in observation space (O-B, O-A, innovations, withheld profiles: no
truth needed, :mod:`viewer.views.obs_validation`) and, where a model world gives the truth
(an OSSE), against it: error map at a depth and time, RMSE by depth (analysis, its
background, the observations, the other methods, the shipped OSSE summary), RMSE over time,
and the summary table."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

from viewer import derive
from viewer.plots import CMAPS, basemap, depth_axis, map_image, map_image_opts, map_opts, symmetric
from viewer.state import LAYERS, AppState, Exportable
from viewer.views.common import curves, date_label, link, pane
from viewer.views.obs_validation import ObsSpaceSection

OBS_OPTION = "Show the observation error"


class ValidatePage:
    """Scores of the chosen analysis (the Dataset selector) against the observations and,
    when there is one, against the chosen truth."""

    title = "Validate"

    def __init__(self, state: AppState) -> None:
        self.state, self.store = state, state.store
        # analyses only: a truth scored against itself is no validation
        self.analysis = pn.widgets.Select(label="Analysis", options=self.store.names("analysis"))
        self.analysis.param.watch(self._choose_analysis, "value")
        state.param.watch(self._follow_dataset, ["dataset"])
        self._follow_dataset()
        self.truth = pn.widgets.Select.from_param(state.param.truth, label="Truth (model world)")
        self.layer = pn.widgets.Select.from_param(state.param.layer, label="Layer for RMSE over time")
        self.depth = pn.widgets.IntSlider(
            label="Depth level", start=0, end=1, value=state.depth_index, show_value=False
        )
        link(self.depth, state, "depth_index")
        self.time = pn.widgets.IntSlider(label="Time step", start=0, end=1, value=state.time_index, show_value=False)
        link(self.time, state, "time_index")
        # a one-option CheckBoxGroup, whose label toggles it (Bokeh's Checkbox label is a plain
        # div beside the box: clicking the text did nothing)
        self.with_obs = pn.widgets.CheckBoxGroup(options=[OBS_OPTION], value=[], width=300)
        self.with_obs_note = pn.pane.Markdown("(grids the observation file: a few seconds)", margin=(0, 10))
        self.score = pn.widgets.Button(label="Score the open analyses", color="primary")
        self.score.on_click(self.on_score)
        self.note = pn.pane.Markdown("")
        self.why = pn.pane.Markdown("")
        self.table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, height=300, width=1100)
        state.param.watch(self._refresh, ["dataset", "truth", "depth_index", "time_index"])
        self._refresh()
        self._build_plots()
        self._show_table()
        self.observed = ObsSpaceSection(state)
        for key, kind, fn in (
            ("error map", "map", self.error_field),
            ("RMSE by depth", "curves", self.rmse_profiles),
            ("RMSE over time", "curves", self.rmse_series),
            ("summary table", "table", lambda: self.table.value),
        ):
            state.register(f"Validate: {key}", Exportable(f"Validate: {key}", kind, fn, "RMSE (degC)"))

    def _follow_dataset(self, *_: Any) -> None:
        """Offer the open analyses; show the chosen dataset when it is one."""
        options = self.store.names("analysis")
        if list(self.analysis.options) != options:
            self.analysis.options = options
        if self.state.dataset in options and self.analysis.value != self.state.dataset:
            self.analysis.value = self.state.dataset

    def _choose_analysis(self, event: Any) -> None:
        if event.new is not None and event.new != self.state.dataset:
            self.state.dataset = event.new

    def _refresh(self, *_: Any) -> None:
        s = self.state
        if s.dataset is None:
            return
        self.depth.end = max(len(self.store.depths(s.dataset)) - 1, 1)
        self.time.end = max(len(self.store.times(s.dataset)) - 1, 1)
        self.why.object = f"**{self.problem()}**" if self.problem() else ""
        self.depth.label = f"Depth: {s.depth:g} m"
        self.time.label = f"Time: {date_label(s.time)}"

    def problem(self) -> str | None:
        """Why nothing can be scored, or None."""
        s = self.state
        if s.dataset is None or s.truth is None:
            return "Needs an analysis and a truth (model world): without one, see *In observation space*."
        if s.dataset not in self.store.names("analysis"):
            return f"{s.dataset} is not an analysis: choose one to validate."
        if not derive.same_grid(self.store, s.dataset, s.truth):
            return f"{s.dataset} and {s.truth} are on different grids."
        if s.truth_time_index() is None:
            return f"{date_label(s.time)} is outside the truth's period."
        return None

    # --- data -----------------------------------------------------------------------------------

    def error_field(self) -> xr.DataArray:
        """Analysis minus truth at the chosen depth and time."""
        s = self.state
        if self.problem():
            raise ValueError(self.problem())
        a = self.store.select(s.dataset, "anomaly", time=s.time_index, depth=s.depth_index)
        t = self.store.select(s.truth, "anomaly", time=s.truth_time_index(), depth=s.depth_index)
        return (a - t.drop_vars("time")).rename("error").assign_attrs(units="degC")

    def rmse_profiles(self) -> dict[str, xr.DataArray]:
        """RMSE by depth: each analysis on the truth's grid, the chosen one's background, observations."""
        s = self.state
        out: dict[str, xr.DataArray] = {}
        if s.truth is None:
            return out
        for name in self.store.names("analysis"):
            if derive.same_grid(self.store, name, s.truth):
                try:
                    out[name] = derive.rmse_by_depth(self.store, name, s.truth)
                except ValueError:
                    continue
        if s.dataset in out:
            try:
                out[f"{s.dataset} background"] = derive.background_rmse_by_depth(self.store, s.dataset, s.truth)
            except ValueError:
                pass
        if OBS_OPTION in self.with_obs.value and s.observations is not None:
            out["observations"] = derive.observation_error(self.store, s.observations, s.truth)
        for method, series in (self.shipped() or {}).items():
            out[f"{method} (OSSE summary)"] = xr.DataArray(series.values, dims="depth", coords={"depth": series.index})
        return out

    def shipped(self) -> dict[str, pd.Series] | None:
        table = derive.shipped_summary()
        return None if table is None else derive.summary_profiles(table)

    def rmse_series(self) -> dict[str, xr.DataArray]:
        s = self.state
        if s.truth is None:
            return {}
        out = {}
        for name in self.store.names("analysis"):
            if derive.same_grid(self.store, name, s.truth):
                try:
                    out[name] = derive.rmse_over_time(self.store, name, s.truth, LAYERS[s.layer])
                except ValueError:
                    continue
        return out

    # --- plots ----------------------------------------------------------------------------------

    def _error_map(self, **_: Any) -> hv.Element:
        reason = self.problem()
        if reason:
            empty = xr.DataArray(np.full((2, 2), np.nan), dims=("lat", "lon"), coords={"lat": [-1, 1], "lon": [0, 10]})
            return map_image(empty, "error").opts(**map_image_opts("error"))
        field = self.error_field()
        return map_image(field, "error").redim.range(error=symmetric(field.values, 0.1)).opts(**map_image_opts("error"))

    def _rmse_depth(self, **_: Any) -> hv.Overlay:
        data = self.rmse_profiles()
        plot = curves(data, "RMSE (degC)", "depth", depth_down=True)
        dashed = [k for k in data if k.endswith("(OSSE summary)") or k.endswith("background")]
        for curve in plot:
            if curve.label in dashed:
                curve.opts(line_dash="dashed")
        depths = np.concatenate([d["depth"].values for d in data.values()]) if data else np.array([2000.0])
        top = max([float(np.nanmax(d.values)) for d in data.values() if np.isfinite(d.values).any()] or [1.0])
        return plot.opts(
            hv.opts.Curve(**depth_axis(depths), xlim=(0.0, top * 1.08), framewise=True, tools=["hover"]),
            hv.opts.Overlay(title="RMSE by depth against the truth", legend_position="right", framewise=True),
        )

    def _rmse_time(self, **_: Any) -> hv.Overlay:
        s = self.state
        return curves(self.rmse_series(), "time", "RMSE (degC)").opts(
            hv.opts.Curve(framewise=True, tools=["hover"]),
            hv.opts.Overlay(title=f"RMSE over time, {s.layer}", legend_position="top_right", framewise=True),
        )

    def _build_plots(self) -> None:
        s = self.state
        stream = hv.streams.Params(s, ["dataset", "truth", "depth_index", "time_index"])
        image = hv.DynamicMap(self._error_map, streams=[stream])
        self.error_map = (
            (image.opts(cmap=CMAPS["error"], colorbar=True, width=680, height=340) * basemap())
            .opts(**map_opts())
            .opts(title="Analysis minus truth (degC)")
        )
        obs = hv.streams.Params(self.with_obs, ["value"])
        self.rmse_depth = hv.DynamicMap(self._rmse_depth, streams=[hv.streams.Params(s, ["dataset", "truth"]), obs])
        self.rmse_depth = self.rmse_depth.opts(width=640, height=420)  # the legend on the right, off the curves
        time_stream = hv.streams.Params(s, ["dataset", "truth", "layer"])
        self.rmse_time = hv.DynamicMap(self._rmse_time, streams=[time_stream]).opts(width=700, height=420)

    def _show_table(self) -> None:
        table = derive.shipped_summary()
        if table is not None:
            self.table.value = table
            self.note.object = "Summary table shipped with DeepDA (`assets/osse_summary.csv`)."
        else:
            self.note.object = "No shipped OSSE summary; press *Score the open analyses* to compute one."

    def on_score(self, *_: Any) -> None:
        """Score every open analysis against the truth (engine.osse.summary_table)."""
        s = self.state
        if s.truth is None:
            self.note.object = "Needs a truth."
            return
        names = self.store.names("analysis")
        table = derive.summary_table(self.store, names, s.truth)
        if table.empty:  # keep what is shown rather than an empty table
            self.note.object = f"**Nothing to score**: no analysis on {s.truth}'s grid and period ({', '.join(names)})."
            return
        self.table.value = table
        self.note.object = f"Computed against **{s.truth}** for {', '.join(names)}."

    def poll(self) -> None:
        """Follow the observation-space computation (called periodically by the app)."""
        self.observed.poll()

    def panel(self) -> pn.viewable.Viewable:
        truth_controls = pn.Column(
            self.truth, self.layer, self.with_obs, self.with_obs_note, self.score, self.why, width=340
        )  # fmt: skip
        against_truth = pn.Column(
            pn.Row(truth_controls, pane(self.error_map)),
            pn.Row(pane(self.rmse_depth), pane(self.rmse_time)),
            self.note,
            self.table,
            name="Against the truth (OSSE)",
        )
        # without a truth the observations are all there is to validate against: shown first
        tabs = pn.Tabs(self.observed.panel(), against_truth, active=0 if self.state.truth is None else 1)
        shared = pn.Row(self.analysis, self.depth, self.time)
        return pn.Column(shared, tabs, name=self.title)
