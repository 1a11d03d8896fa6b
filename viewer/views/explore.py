"""Explore: the 3-D temperature as a map at a depth, a profile and a time series at a tapped
point, and latitude-depth / longitude-depth sections through it."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np
import panel as pn
import xarray as xr

from viewer.plots import (
    CMAPS,
    LABELS,
    LAND_COLOR,
    basemap,
    clim_for,
    depth_axis,
    lat_text,
    lon_of,
    lon_text,
    map_image,
    map_image_opts,
    map_opts,
    position_text,
    section_mesh,
    stretched_hover,
    x_of,
)  # fmt: skip
from viewer.state import AppState, Exportable
from viewer.views.common import curves, date_label, link, pane, truth_label

MAP_FIELDS = ["dataset", "variable", "depth_index", "time_index"]
POINT_FIELDS = ["dataset", "variable", "time_index", "lat", "lon"]


class ExplorePage:
    """Map, profile, time series and sections of the chosen dataset and variable."""

    title = "Explore"

    def __init__(self, state: AppState) -> None:
        self.state, self.store = state, state.store
        self._build_widgets()
        self._build_plots()
        self._note_series_wait()  # now: Panel does not send changes made while it builds the page
        label = lambda: LABELS[state.variable]  # noqa: E731 - the unit of what is shown now
        for key, kind, fn in (
            ("map", "map", self.map_field),
            ("profile", "curves", self.profiles),
            ("time series", "curves", self.series),
            ("latitude-depth section", "section", lambda: self.section("lat")),
            ("longitude-depth section", "section", lambda: self.section("lon")),
        ):
            state.register(f"Explore: {key}", Exportable(f"Explore: {key}", kind, fn, label))

    # --- widgets ------------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        s = self.state
        self.dataset = pn.widgets.Select.from_param(s.param.dataset, label="Dataset")
        self.variable = pn.widgets.RadioButtonGroup(options=["absolute", "anomaly", "spread"], value=s.variable)
        link(self.variable, s, "variable")
        self.depth = pn.widgets.DiscreteSlider(label="Depth", options={"5 m": 0}, value=0)
        link(self.depth, s, "depth_index")
        self.player = pn.widgets.Player(
            label="Time", start=0, end=1, value=s.time_index, interval=500, loop_policy="once", width=330,
            show_loop_controls=False, step=1,
        )  # fmt: skip
        link(self.player, s, "time_index")
        self.when = pn.pane.Markdown("", margin=(0, 10))
        self.where = pn.pane.Markdown("", margin=(0, 10))
        self.series_note = pn.pane.Markdown("", margin=(0, 10), styles={"color": "#8a6d3b"})
        s.param.watch(self._refresh_widgets, ["dataset"])
        s.param.watch(self._refresh_labels, ["dataset", "time_index", "lat", "lon", "depth_index"])
        self._refresh_widgets()

    def _refresh_widgets(self, *_: Any) -> None:
        """Adapt the sliders and the variable choice to the dataset shown."""
        s = self.state
        if s.dataset is None:
            return
        depths = self.store.depths(s.dataset)
        options = {f"{z:g} m": i for i, z in enumerate(depths)}
        self.depth.param.update(options=options, value=min(s.depth_index, len(depths) - 1))
        self.player.param.update(end=max(len(self.store.times(s.dataset)) - 1, 1), value=s.time_index)
        self.variable.options = self.store.variables(s.dataset)
        self.variable.value = s.variable
        self._refresh_labels()

    def _refresh_labels(self, *_: Any) -> None:
        s = self.state
        if s.dataset is None:
            return
        self.when.object = f"**{date_label(s.time)}** (step {s.time_index + 1} of {len(self.store.times(s.dataset))})"
        j, i = s.cell()
        ds = self.store.fields(s.dataset)
        where = position_text(float(ds["lat"][j]), float(ds["lon"][i]))
        self.where.object = f"Point: {where} (tap the map to move it)"

    # --- data -----------------------------------------------------------------------------------

    def map_field(self) -> xr.DataArray:
        """The (lat, lon) field shown on the map."""
        s = self.state
        return self.store.select(s.dataset, s.variable, time=s.time_index, depth=s.depth_index)

    def profiles(self) -> dict[str, xr.DataArray]:
        """Profile at the point for the dataset (and the truth at the same time)."""
        s = self.state
        j, i = s.cell()
        out = {s.dataset: self.store.select(s.dataset, s.variable, time=s.time_index, lat=j, lon=i)}
        t = s.truth_time_index()
        if t is not None and s.truth != s.dataset and s.variable in self.store.variables(s.truth):
            jt, it = s.cell(s.truth)
            out[truth_label(s.truth)] = self.store.select(s.truth, s.variable, time=t, lat=jt, lon=it)
        return out

    def series_sources(self) -> dict[str, str]:
        """{label: dataset} of the time series: the dataset, and the truth when it has the variable."""
        s = self.state
        out = {s.dataset: s.dataset}
        if s.truth and s.truth != s.dataset and s.variable in self.store.variables(s.truth):
            out[truth_label(s.truth)] = s.truth
        return out

    def series(self) -> dict[str, xr.DataArray]:
        """Time series at the point and depth (and the truth over the same period)."""
        s = self.state
        out = {}
        for label, name in self.series_sources().items():
            j, i = s.cell(name)
            out[label] = self.store.select(name, s.variable, depth=s.depth_index, lat=j, lon=i)
        times = out[s.dataset]["time"].values
        return {label: da.sel(time=slice(times.min(), times.max())) for label, da in out.items()}

    def section(self, along: str) -> xr.DataArray:
        """Depth section along latitude (through the point's longitude) or along longitude."""
        s = self.state
        j, i = s.cell()
        cut = {"lon": i} if along == "lat" else {"lat": j}
        return self.store.select(s.dataset, s.variable, time=s.time_index, **cut)

    # --- plots ----------------------------------------------------------------------------------

    def _map(self, **_: Any) -> hv.Element:
        kind, field = self.state.variable, self.map_field()
        image = map_image(field, kind).redim.range(**{kind: clim_for(kind, field.values)})
        return image.opts(**map_image_opts(kind)).opts(tools=["tap", "hover"])

    def _marker(self, **_: Any) -> hv.Points:
        return hv.Points([(x_of(self.state.lon), self.state.lat)]).opts(
            color="black", marker="x", size=14, line_width=3
        )

    def _profile(self, **_: Any) -> hv.Overlay:
        s = self.state
        data = self.profiles()
        depths = self.store.depths(s.dataset)
        first = next(iter(data.values()))
        where = position_text(float(first["lat"]), float(first["lon"]))
        return curves(data, LABELS[s.variable], "depth", depth_down=True).opts(
            hv.opts.Curve(**depth_axis(depths), framewise=True, tools=["hover"]),
            hv.opts.Overlay(
                title=f"Profile at {where}, {date_label(s.time)}",
                legend_position="bottom_left",
                framewise=True,
                fontsize={"title": "10pt"},  # the whole title in the narrow plot
            ),
        )

    def _series(self, **_: Any) -> hv.Overlay:
        """The series, or while a long record is read into memory in the background (seconds
        for 40 years), the same curves empty, so that the rest of the page does not wait."""
        s = self.state
        title = self.series_title()
        sources = self.series_sources()
        waiting = self._note_series_wait()
        if waiting:
            # once the page is on screen (at once when it already is): reading holds the GIL
            variable = s.variable
            pn.state.onload(lambda: [self.store.load_in_background(name, variable) for name in waiting])
            ends = self.store.times(s.dataset)[[0, -1]]
            blank = xr.DataArray([np.nan, np.nan], coords={"time": ends}, dims="time")
            data = {label: blank for label in sources}
        else:
            data = self.series()
        return curves(data, "time", LABELS[s.variable]).opts(
            hv.opts.Curve(framewise=True, tools=["hover"]),
            hv.opts.Overlay(title=title, legend_position="top_left", framewise=True),
        )

    def series_title(self, *_: Any) -> str:
        """What the time series shows: where (the grid cell's centre) and at which depth."""
        s = self.state
        j, i = s.cell()
        ds = self.store.fields(s.dataset)
        return f"Time series at {position_text(float(ds['lat'][j]), float(ds['lon'][i]))}, {s.depth:g} m"

    def _note_series_wait(self) -> list[str]:
        """The datasets whose records the time series waits for, also said under the controls."""
        s = self.state
        waiting = [name for name in self.series_sources().values() if not self.store.series_ready(name, s.variable)]
        self.series_waiting = bool(waiting)
        self.series_note.object = (
            f"Reading {' and '.join(waiting)} into memory for the time series ..." if waiting else ""
        )
        return waiting

    def _now(self, **_: Any) -> hv.VLine:
        return hv.VLine(self.state.time).opts(color="gray", line_dash="dashed")

    def _section(self, along: str) -> hv.Overlay:
        s = self.state
        field = self.section(along)
        mesh = section_mesh(field, along, s.variable).opts(
            cmap=CMAPS[s.variable], clim=clim_for(s.variable, field.values), colorbar=True, framewise=True,
            clipping_colors={"NaN": LAND_COLOR}, **stretched_hover(s.variable, along),
        )  # fmt: skip
        at = s.lat if along == "lat" else s.lon % 360.0
        where = lon_text(float(field["lon"])) if along == "lat" else lat_text(float(field["lat"]))
        title = f"{'Latitude' if along == 'lat' else 'Longitude'}-depth section at {where}, {date_label(s.time)}"
        return (mesh * hv.VLine(at).opts(color="black", line_dash="dotted")).opts(title=title)

    def _build_plots(self) -> None:
        s = self.state
        map_stream = hv.streams.Params(s, MAP_FIELDS)
        cmap = pn.bind(lambda v: CMAPS[v], s.param.variable)
        # the field as it is: a regular grid coarser than the screen needs no rasterizing
        self.raster = (
            hv.DynamicMap(self._map, streams=[map_stream])
            .apply.opts(cmap=cmap)
            .opts(colorbar=True, width=760, height=380)
        )
        marker = hv.DynamicMap(self._marker, streams=[hv.streams.Params(s, ["lat", "lon"])])
        title = pn.bind(lambda v: f"{LABELS[v]}, tap for a profile", s.param.variable)
        self.map = (self.raster * basemap() * marker).opts(**map_opts()).apply.opts(title=title)
        self.tap = hv.streams.Tap(source=self.raster, x=None, y=None)
        self.tap.add_subscriber(self.on_tap)
        point = hv.streams.Params(s, POINT_FIELDS)
        self.profile = hv.DynamicMap(self._profile, streams=[point]).opts(width=330, height=380)
        self.series_waiting = False
        self.series_redraw = hv.streams.Counter()  # a new count is a new frame: HoloViews caches by stream values
        series_streams = [
            hv.streams.Params(s, ["dataset", "variable", "depth_index", "lat", "lon"]),
            self.series_redraw,
        ]
        now = hv.DynamicMap(self._now, streams=[hv.streams.Params(s, ["dataset", "time_index"])])
        # the overlay with the date line takes its title from here (the inner title is lost)
        title = pn.bind(self.series_title, s.param.dataset, s.param.depth_index, s.param.lat, s.param.lon)
        self.timeseries = (
            (hv.DynamicMap(self._series, streams=series_streams) * now)
            .opts(width=1100, height=260, xlabel="time")
            .apply.opts(title=title)
        )
        self.lat_section = hv.DynamicMap(lambda **_: self._section("lat"), streams=[point]).opts(width=550, height=280)
        self.lon_section = hv.DynamicMap(lambda **_: self._section("lon"), streams=[point]).opts(width=550, height=280)

    def poll(self) -> None:
        """Draw the time series once the records it waited for are in memory."""
        s = self.state
        if self.series_waiting and all(self.store.series_ready(n, s.variable) for n in self.series_sources().values()):
            self.series_redraw.event()

    def on_tap(self, x: float | None = None, y: float | None = None) -> None:
        """Move the point to the tapped map position (map x is longitude - 180)."""
        if x is None or y is None:
            return
        self.state.param.update(lat=float(np.clip(y, -90.0, 90.0)), lon=lon_of(x))

    def panel(self) -> pn.viewable.Viewable:
        controls = pn.Column(
            self.dataset, pn.pane.Markdown("Variable"), self.variable, self.depth, self.player, self.when,
            self.where, self.series_note, width=360,
        )  # fmt: skip
        below = pn.Tabs(
            ("Time series", pane(self.timeseries)),
            ("Sections", pn.Row(pane(self.lat_section), pane(self.lon_section))),
            dynamic=True,
        )
        return pn.Column(pn.Row(controls, pane(self.map), pane(self.profile)), below, name=self.title)
