"""Trends: layer-mean temperature and ocean heat content against the truth, trend map,
time-depth (Hovmoller) plot and Nino-3.4 against the observed ONI."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np
import panel as pn
import xarray as xr

from viewer import derive
from viewer.plots import CMAPS, basemap, hovmoller_mesh, map_image, map_image_opts, map_opts, stretched_hover, symmetric
from viewer.state import LAYERS, AppState, Exportable
from viewer.views.common import curves, link, pane, truth_label

MIN_TREND_YEARS = 10  # a shorter record's "trend" is mostly its variability (ENSO alone: +-1 degC in 2 years)

OHC_LAYERS = {"0-700 m": (0.0, 700.0), "0-2000 m": (0.0, 2000.0)}


class TrendsPage:
    """Warming diagnostics of the chosen dataset (and the truth, when there is one)."""

    title = "Trends"

    def __init__(self, state: AppState) -> None:
        self.state, self.store = state, state.store
        self.dataset = pn.widgets.Select.from_param(state.param.dataset, label="Dataset")
        self.truth = pn.widgets.Select.from_param(state.param.truth, label="Truth (model world)")
        self.region = pn.widgets.Select.from_param(state.param.region, label="Region")
        self.layer = pn.widgets.Select.from_param(state.param.layer, label="Layer")
        self.depth = pn.widgets.IntSlider(
            label="Trend map depth level", start=0, end=1, value=state.depth_index, show_value=False
        )
        link(self.depth, state, "depth_index")
        self.warning = pn.pane.Alert("", alert_type="warning", visible=False, width=760, margin=(5, 10))
        state.param.watch(self._refresh, ["dataset", "depth_index"])
        self._refresh()
        self._build_plots()
        for key, kind, fn, label in (
            ("layer mean", "curves", self.layer_means, "temperature (degC)"),
            ("heat content 0-700 m", "curves", lambda: self.heat_content("0-700 m"), "heat content anomaly (ZJ)"),
            ("heat content 0-2000 m", "curves", lambda: self.heat_content("0-2000 m"), "heat content anomaly (ZJ)"),
            ("trend map", "map", self.trend_field, ""),
            ("time-depth (Hovmoller)", "hovmoller", self.hovmoller_field, ""),
            ("Nino-3.4", "curves", self.nino, "Nino-3.4 (degC)"),
        ):
            state.register(f"Trends: {key}", Exportable(f"Trends: {key}", kind, fn, label))

    def _refresh(self, *_: Any) -> None:
        s = self.state
        if s.dataset is not None:
            self.depth.end = max(len(self.store.depths(s.dataset)) - 1, 1)
            self.depth.label = f"Trend map depth: {s.depth:g} m"
            self.warning.object = self.short_record() or ""
            self.warning.visible = bool(self.warning.object)

    def short_record(self) -> str | None:
        """The warning a trend of the dataset carries when its record is under ten years, else None."""
        years = derive.record_years(self.store, self.state.dataset)
        if years >= MIN_TREND_YEARS:
            return None
        return (
            f"Only {years:.1f} years of {self.state.dataset}: a linear trend over fewer than {MIN_TREND_YEARS} "
            "years is mostly natural variability (ENSO, decadal modes), not a warming trend."
        )

    def _pair(self) -> list[tuple[str, str]]:
        """(label, source) of the dataset and, if different, the truth."""
        s = self.state
        out = [(s.dataset, s.dataset)] if s.dataset else []
        if s.truth and s.truth != s.dataset:
            out.append((truth_label(s.truth), s.truth))
        return out

    # --- data -----------------------------------------------------------------------------------

    def layer_means(self) -> dict[str, xr.DataArray]:
        s = self.state
        return {label: derive.layer_mean(self.store, n, LAYERS[s.layer], s.region) for label, n in self._pair()}

    def heat_content(self, layer: str) -> dict[str, xr.DataArray]:
        s = self.state
        return {label: derive.heat_content(self.store, n, OHC_LAYERS[layer], s.region) for label, n in self._pair()}

    def trend_field(self) -> xr.DataArray:
        """The trend map; its ``warning`` attribute says when the record is too short for a trend."""
        field = derive.trend(self.store, self.state.dataset, self.state.depth_index)
        warning = self.short_record()
        return field.assign_attrs(warning=warning) if warning else field

    def hovmoller_field(self) -> xr.DataArray:
        return derive.hovmoller(self.store, self.state.dataset, self.state.region).assign_attrs(
            region=self.state.region
        )

    def nino(self) -> dict[str, xr.DataArray]:
        """Monthly Nino-3.4 of the dataset, the truth, and the observed index (NOAA CPC)."""
        out = {}
        for label, name in self._pair():
            series = derive.nino34(self.store, name)
            out[label] = xr.DataArray(series.values, dims="time", coords={"time": series.index.values})
        if out:
            first = next(iter(out.values()))
            lo, hi = first["time"].values.min(), first["time"].values.max()
            oni = derive.oni()
            oni = oni[(oni.index >= lo) & (oni.index <= hi)]
            out["observed (NOAA CPC)"] = xr.DataArray(oni.values, dims="time", coords={"time": oni.index.values})
        return out

    # --- plots ----------------------------------------------------------------------------------

    def _series_plot(self, data: dict[str, xr.DataArray], ylabel: str, title: str) -> hv.Overlay:
        return curves(data, "time", ylabel).opts(
            hv.opts.Curve(framewise=True, tools=["hover"]),
            hv.opts.Overlay(title=title, legend_position="top_left", framewise=True),
        )

    def _layer_plot(self, **_: Any) -> hv.Overlay:
        s = self.state
        return self._series_plot(self.layer_means(), "temperature (degC)", f"Mean temperature {s.layer}, {s.region}")

    def _ohc_plot(self, layer: str) -> hv.Overlay:
        return self._series_plot(
            self.heat_content(layer), "heat content anomaly (ZJ)", f"Ocean heat content {layer}, {self.state.region}"
        )

    def _trend_map(self, **_: Any) -> hv.Element:
        field = self.trend_field()
        image = map_image(field, "trend").redim.range(trend=symmetric(field.values, 0.05))
        years = derive.record_years(self.store, self.state.dataset)
        short = ": SHORT RECORD" if field.attrs.get("warning") else ""
        title = f"Linear trend (degC per decade), {self.state.depth:g} m, {years:.0f} years{short}"
        return image.opts(**map_image_opts("trend")).opts(title=title)

    def _hovmoller(self, **_: Any) -> hv.QuadMesh:
        field = self.hovmoller_field()
        return hovmoller_mesh(field).opts(
            cmap=CMAPS["anomaly"], clim=symmetric(field.values, 0.05), colorbar=True, framewise=True,
            title=f"Mean anomaly by depth, {self.state.region} (degC)", **stretched_hover("anomaly", "time"),
        )  # fmt: skip

    def _nino_plot(self, **_: Any) -> hv.Overlay:
        data = self.nino()
        names = list(data)
        r = derive.correlation(data[names[0]].to_series(), data[names[-1]].to_series()) if len(names) > 1 else np.nan
        return self._series_plot(data, "Nino-3.4 (degC)", f"Nino-3.4: correlation with the observed index {r:.2f}")

    def _build_plots(self) -> None:
        s = self.state
        series_stream = hv.streams.Params(s, ["dataset", "truth", "region", "layer"])
        self.layer_plot = hv.DynamicMap(self._layer_plot, streams=[series_stream]).opts(width=440, height=280)
        ohc_stream = hv.streams.Params(s, ["dataset", "truth", "region"])
        self.ohc700 = hv.DynamicMap(lambda **_: self._ohc_plot("0-700 m"), streams=[ohc_stream]).opts(
            width=440, height=280
        )
        self.ohc2000 = hv.DynamicMap(lambda **_: self._ohc_plot("0-2000 m"), streams=[ohc_stream]).opts(
            width=440, height=280
        )
        trend = hv.DynamicMap(self._trend_map, streams=[hv.streams.Params(s, ["dataset", "depth_index"])])
        self.trend_map = (trend.opts(cmap=CMAPS["trend"], colorbar=True, width=760, height=380) * basemap()).opts(
            **map_opts()
        )
        hov_stream = hv.streams.Params(s, ["dataset", "region"])
        self.hovmoller = hv.DynamicMap(self._hovmoller, streams=[hov_stream]).opts(width=1100, height=300)
        self.nino_plot = hv.DynamicMap(self._nino_plot, streams=[hv.streams.Params(s, ["dataset", "truth"])])
        self.nino_plot = self.nino_plot.opts(width=1100, height=280)

    def panel(self) -> pn.viewable.Viewable:
        controls = pn.Column(self.dataset, self.truth, self.region, self.layer, self.depth, width=340)
        return pn.Column(
            pn.Row(controls, pn.Column(self.warning, pane(self.trend_map))),
            pn.Row(pane(self.layer_plot), pane(self.ohc700), pane(self.ohc2000)),
            pane(self.hovmoller),
            pane(self.nino_plot),
            name=self.title,
        )
