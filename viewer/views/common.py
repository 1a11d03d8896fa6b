"""Small helpers shared by the pages: widget links, curve overlays, date labels."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
import xarray as xr

DEPTH = hv.Dimension("depth", label="depth", unit="m")
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def link(widget: pn.widgets.Widget, obj: param.Parameterized, name: str, attr: str = "value") -> None:
    """Keep ``widget.<attr>`` and ``obj.<name>`` equal in both directions."""

    def to_param(event: param.parameterized.Event) -> None:
        if event.new is not None and getattr(obj, name) != event.new:
            setattr(obj, name, event.new)

    def to_widget(event: param.parameterized.Event) -> None:
        if getattr(widget, attr) != event.new:
            setattr(widget, attr, event.new)

    widget.param.watch(to_param, attr)
    obj.param.watch(to_widget, name)


def truth_label(name: str) -> str:
    """The legend label of a truth dataset: its name, marked as the truth unless it says so."""
    return name if "truth" in name.lower() else f"{name} (truth)"


def date_label(time: Any) -> str:
    """A time stamp as YYYY-MM-DD."""
    return pd.Timestamp(time).strftime("%Y-%m-%d")


def curves(series: dict[str, xr.DataArray], x: str, y: str, depth_down: bool = False) -> hv.Overlay:
    """Overlay of labelled 1-D series; with ``depth_down`` the series are profiles (value vs
    depth, the depth axis in metres)."""
    y_dim: str | hv.Dimension = DEPTH if depth_down and y == "depth" else y
    items = []
    for (label, da), color in zip(series.items(), COLORS, strict=False):
        coord = da[da.dims[0]].values
        data = (np.asarray(da.values), coord) if depth_down else (coord, np.asarray(da.values))
        items.append(hv.Curve(data, x, y_dim, label=label).opts(color=color, line_width=2))
    if not items:
        return hv.Overlay([hv.Curve([], x, y_dim)])
    return hv.Overlay(items)


def message(text: str, alert: str = "info") -> pn.pane.Alert:
    """An alert pane (used for empty states and errors)."""
    return pn.pane.Alert(text, alert_type=alert, margin=(5, 10))


def frame_of(series: dict[str, xr.DataArray]) -> pd.DataFrame:
    """Labelled 1-D series as one table indexed by their shared coordinate (for CSV export)."""
    columns = {}
    for label, da in series.items():
        columns[label] = da.to_series()
    frame = pd.DataFrame(columns)
    frame.index.name = next(iter(series.values())).dims[0] if series else "index"
    return frame


def pane(obj: object) -> pn.pane.HoloViews:
    """A HoloViews pane whose axes are not linked to other panes (each plot keeps its own ranges)."""
    return pn.pane.HoloViews(obj, linked_axes=False)


def placeholder_panel(title: str, text: str) -> pn.Column:
    return pn.Column(pn.pane.Markdown(f"## {title}"), message(text), sizing_mode="stretch_width")
