"""Validate in observation space: the analysis against the observations themselves, no truth
needed (real data). O-B and O-A by depth and by month, a map of the innovations at a depth,
the innovation-variance ratio and Desroziers' observation error beside the stated one, the
engine's tables, and the scores at profiles withheld from the assimilation, per method.

Everything comes from :mod:`viewer.obs_space` (the engine's statistics), computed in a
background task; the page polls it and updates its widgets in place when it is done.
"""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

from engine.evaluate.obs_space import GROUPINGS
from viewer import obs_space
from viewer.plots import CMAPS, basemap, depth_axis, map_image, map_image_opts, map_opts, symmetric
from viewer.state import AppState, Exportable
from viewer.store import file_key
from viewer.views.common import curves, pane

WHOLE_PERIOD = "the whole period"
# Drawn until the statistics arrive: the first frame fixes the axis type, so it must be dates.
NO_MONTHS = {"O-B RMSE": xr.DataArray([np.nan], dims="time", coords={"time": np.array(["2000-01-01"], "M8[ns]")})}


class _Shown(param.Parameterized):
    version = param.Integer(default=0, doc="bumped when a result arrives: the plots redraw")


class ObsSpaceSection:
    """Observation-space validation of the chosen analysis against the chosen observations."""

    def __init__(self, state: AppState) -> None:
        self.state, self.store = state, state.store
        self.shown = _Shown()
        self._requested: set[tuple] = set()
        self._drawn: tuple | None = None
        self.obs = pn.widgets.Select.from_param(state.param.observations, label="Observations")
        self.grouping = pn.widgets.Select(label="Table by", options=list(GROUPINGS), value="depth")
        self.grouping.param.watch(lambda *_: self._show_table(), "value")
        self.which = pn.widgets.RadioButtonGroup(options=list(obs_space.CURVES), value="O-B")
        self.year = pn.widgets.Select(label="Map over", options=[WHOLE_PERIOD], value=WHOLE_PERIOD)
        self.compute = pn.widgets.Button(label="Compute in observation space", color="primary")
        self.compute.on_click(lambda *_: self.request())
        self.note = pn.pane.Markdown("")
        self.withheld_note = pn.pane.Markdown("")
        table = {"disabled": True, "show_index": False, "height": 260}
        self.table = pn.widgets.Tabulator(pd.DataFrame(), width=1100, **table)
        self.withheld_table = pn.widgets.Tabulator(pd.DataFrame(), width=560, **table)
        self._build_plots()
        state.param.watch(self._changed, ["dataset", "observations", "truth"])
        self._changed()
        for key, kind, fn, label in (
            ("O-B and O-A by depth", "curves", self.by_depth, "degC"),
            ("O-B and O-A over time", "curves", self.over_time, "degC"),
            ("innovation map", "map", self.innovation_field, ""),
            ("observation-space table", "table", lambda: self.table.value, ""),
            ("withheld-profile scores", "table", lambda: self.withheld_table.value, ""),
            ("withheld-profile RMSE by depth", "curves", self.withheld_profiles, "RMSE (degC)"),
        ):
            state.register(f"Validate: {key}", Exportable(f"Validate: {key}", kind, fn, label))

    # --- what to compute ----------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why nothing can be computed, or None."""
        s = self.state
        if s.dataset is None or s.dataset not in self.store.names("analysis"):
            return "Choose an analysis to validate."
        if s.observations is None:
            return "Needs an observation file: load one on the Observations page."
        return None

    def keys(self) -> tuple[tuple, tuple]:
        """The background-task keys of the current (analysis, observations) pair."""
        s = self.state
        analysis = file_key(self.store.source(s.dataset).path)
        others = tuple(file_key(self.store.source(n).path) for n in self.store.names("analysis"))
        obs = file_key(self.store.source(s.observations).path)
        return ("obs space task", analysis, obs), ("withheld task", analysis, others)

    def automatic(self) -> bool:
        """Whether to compute at once: always without a truth (nothing else validates the
        analysis then); with one, only for real observations (OSSE files are long to read)."""
        s = self.state
        return s.truth is None or not self.store.is_osse(s.observations)

    def request(self) -> None:
        """Start (or join) the background computation of the current pair."""
        if self.problem():
            return
        self._requested.update(self.keys())
        self.poll()

    def _changed(self, *_: Any) -> None:
        reason = self.problem()
        if reason is None and self.automatic():
            self.request()
            return
        self.note.object = f"**{reason}**" if reason else "Press *Compute in observation space* (reads the file)."
        self.poll()

    def _status(self, key: tuple) -> tuple[str, Any]:
        s, store = self.state, self.store
        if key not in self._requested:
            return "idle", None
        if key[0] == "obs space task":
            return store.background(key, lambda: obs_space.observation_space(store, s.dataset, s.observations))
        return store.background(key, lambda: obs_space.withheld(store, s.dataset))

    def poll(self) -> None:
        """Follow the background tasks (the app calls this periodically); redraw once done."""
        if self.problem():
            if self._drawn is not None:
                self._drawn = None
                self.shown.version += 1
            return
        space_key, withheld_key = self.keys()
        status = (self._status(space_key)[0], self._status(withheld_key)[0])
        if status[0] == "running":
            self.note.object = "Computing O-B and O-A at every observation (in the background) ..."
        if (space_key, withheld_key, status) == self._drawn:
            return
        self._drawn = (space_key, withheld_key, status)
        self._show_table()
        self._show_withheld()
        space = self.space()
        if space is not None:
            years = [WHOLE_PERIOD, *map(str, space.years)]
            if list(self.year.options) != years:
                self.year.options = years
        self.shown.version += 1

    # --- data -----------------------------------------------------------------------------------

    def space(self) -> obs_space.ObsSpace | None:
        """The engine's observation-space statistics of the pair shown, once computed."""
        if self.problem():
            return None
        status, value = self._status(self.keys()[0])
        return value if status == "done" else None

    def withheld(self) -> obs_space.Withheld | None:
        if self.problem():
            return None
        status, value = self._status(self.keys()[1])
        return value if status == "done" else None

    def by_depth(self) -> dict[str, xr.DataArray]:
        space = self.space()
        return obs_space.series(space.tables["depth"], "depth") if space else {}

    def over_time(self) -> dict[str, xr.DataArray]:
        space = self.space()
        return obs_space.series(space.monthly, "time") if space else {}

    def errors(self) -> dict[str, xr.DataArray]:
        """Desroziers' observation error and the stated one, by depth (degC)."""
        space = self.space()
        if space is None:
            return {}
        table = space.tables["depth"]
        return {
            label: xr.DataArray(table[column].to_numpy("f8"), dims="depth", coords={"depth": table.index.to_numpy()})
            for label, column in (("Desroziers error", "desroziers_error"), ("stated error", "stated_error"))
        }

    def ratio(self) -> dict[str, xr.DataArray]:
        """The innovation-variance ratio by depth (empty without an ensemble: it is NaN then)."""
        space = self.space()
        if space is None or not np.isfinite(space.tables["depth"]["innovation_ratio"]).any():
            return {}
        table = space.tables["depth"]
        values = table["innovation_ratio"].to_numpy("f8")
        return {
            "innovation-variance ratio": xr.DataArray(values, dims="depth", coords={"depth": table.index.to_numpy()})
        }

    def innovation_map(self) -> xr.Dataset | None:
        """Mean O-B (or O-A) and the count per observed cell at the chosen depth and year."""
        space = self.space()
        if space is None:
            return None
        year = None if self.year.value in (None, WHOLE_PERIOD) else int(self.year.value)
        s = self.state
        return obs_space.innovation_map(self.store, s.dataset, space, s.depth_index, year, self.which.value)

    def innovation_field(self) -> xr.DataArray | None:
        """The map's values: mean O-B (or O-A) per observed cell, NaN elsewhere."""
        found = self.innovation_map()
        return None if found is None else found["innovation"]

    def withheld_profiles(self) -> dict[str, xr.DataArray]:
        """RMSE by depth of each method (and the climatology) at the withheld profiles."""
        result = self.withheld()
        if result is None:
            return {}
        return {
            label: xr.DataArray(t["oma_rmse"].to_numpy("f8"), dims="depth", coords={"depth": t.index.to_numpy()})
            for label, t in result.by_depth.items()
        }

    # --- widgets and plots ----------------------------------------------------------------------

    def _show_table(self) -> None:
        space = self.space()
        if self.problem() or space is None:
            status, message = self._status(self.keys()[0]) if not self.problem() else ("idle", None)
            if status == "failed":
                self.note.object = f"**Cannot compute in observation space**: {message}"
            return
        table = space.tables.get(self.grouping.value)
        self.table.value = pd.DataFrame() if table is None else table.reset_index().round(4)
        total = int(space.tables["depth"]["count"].sum())
        ensemble = "" if self.ratio() else " The innovation-variance ratio needs an ensemble (`--members 2` or more)."
        self.note.object = (
            f"**{self.state.dataset}** against **{self.state.observations}**: {total:,} observed levels "
            f"(profiles interpolated to the analysis levels; O-B: the previous step's analysis).{ensemble}"
        )

    def _show_withheld(self) -> None:
        status, value = ("idle", None) if self.problem() else self._status(self.keys()[1])
        if status == "done" and value is None:
            self.withheld_table.value = pd.DataFrame()
            self.withheld_note.object = (
                f"No withheld profiles beside **{self.state.dataset}**: assimilate with `--withhold floats:0.2` "
                "(or a share, or platforms) to score it on profiles it never saw."
            )
        elif status == "done":
            self.withheld_table.value = value.table.reset_index().round(4)
            self.withheld_note.object = (
                f"RMSE (degC) at the profiles withheld from **{', '.join(value.methods)}** "
                f"(`{value.file.name}`), by depth band, with the climatology; the last row counts them."
            )
        elif status == "failed":
            self.withheld_note.object = f"**Cannot score the withheld profiles**: {value}"
        elif status == "running":
            self.withheld_note.object = "Scoring the withheld profiles (in the background) ..."

    def _depth_plot(self, data: dict[str, xr.DataArray], title: str, label: str) -> hv.Overlay:
        data = {k: v for k, v in data.items() if np.isfinite(v.values).any()}
        plot = curves(data, label, "depth", depth_down=True)
        for curve in plot:
            if curve.label.endswith("mean") or curve.label in ("climatology", "stated error"):
                curve.opts(line_dash="dashed")
        depths = np.concatenate([d["depth"].values for d in data.values()]) if data else np.array([2000.0])
        values = [float(np.nanmax(np.abs(d.values))) for d in data.values()]
        top = max(values or [1.0])
        low = min([float(np.nanmin(d.values)) for d in data.values()] or [0.0])
        return plot.opts(
            hv.opts.Curve(
                **depth_axis(depths), xlim=(min(low * 1.08, 0.0), top * 1.08), framewise=True, tools=["hover"]
            ),
            hv.opts.Overlay(title=title, legend_position="right", framewise=True),
        )

    def _map(self, **_: Any) -> hv.Element:
        field = self.innovation_field()
        if field is None:
            field = xr.DataArray(np.full((2, 2), np.nan), dims=("lat", "lon"), coords={"lat": [-1, 1], "lon": [0, 10]})
        image = map_image(field, "innovation").redim.range(innovation=symmetric(field.values, 0.1))
        label = "observation minus " + ("background" if self.which.value == "O-B" else "analysis")
        return image.opts(**map_image_opts("innovation")).opts(clipping_colors={"NaN": "transparent"}, clabel=label)

    def _build_plots(self) -> None:
        s, shown = self.state, hv.streams.Params(self.shown, ["version"])
        map_streams = [
            shown,
            hv.streams.Params(s, ["depth_index"]),
            hv.streams.Params(self.which, ["value"], rename={"value": "which"}),
            hv.streams.Params(self.year, ["value"], rename={"value": "year"}),
        ]
        self.map = (
            (hv.DynamicMap(self._map, streams=map_streams).opts(cmap=CMAPS["innovation"], colorbar=True) * basemap())
            .opts(**map_opts())
            .opts(width=680, height=340, title="Mean innovation per observed cell (degC)")
        )
        self.depth_plot = hv.DynamicMap(
            lambda **_: self._depth_plot(self.by_depth(), "O-B and O-A by depth", "degC"), streams=[shown]
        ).opts(width=560, height=420)
        self.errors_plot = hv.DynamicMap(
            lambda **_: self._depth_plot(
                {**self.errors(), **self.ratio()}, "Observation error (degC) and innovation-variance ratio", "value"
            ),
            streams=[shown],
        ).opts(width=560, height=300)
        self.time_plot = hv.DynamicMap(
            lambda **_: curves(self.over_time() or NO_MONTHS, "time", "degC").opts(
                hv.opts.Curve(framewise=True, tools=["hover"]),
                hv.opts.Overlay(title="O-B and O-A by month", legend_position="right", framewise=True),
            ),
            streams=[shown],
        ).opts(width=680, height=300)
        self.withheld_plot = hv.DynamicMap(
            lambda **_: self._depth_plot(self.withheld_profiles(), "RMSE at withheld profiles", "RMSE (degC)"),
            streams=[shown],
        ).opts(width=560, height=360)

    def panel(self) -> pn.viewable.Viewable:
        controls = pn.Column(
            self.obs, self.grouping, pn.pane.Markdown("Map:"), self.which, self.year, self.compute, width=300
        )
        return pn.Column(
            pn.Row(controls, pane(self.map), pane(self.depth_plot)),
            pn.Row(pane(self.time_plot), pane(self.errors_plot)),
            self.note,
            self.table,
            pn.pane.Markdown("### Profiles withheld from the assimilation"),
            self.withheld_note,
            pn.Row(self.withheld_table, pane(self.withheld_plot)),
            name="In observation space",
        )
