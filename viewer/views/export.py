"""Export: any registered view to PNG (HoloViews' matplotlib backend, no browser needed), its
series or table to CSV, and the shown subset to CF netCDF (through ``engine.io``)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

from engine import io
from viewer.plots import (
    CMAPS,
    LABELS,
    LAND_COLOR,
    basemap,
    clim_for,
    geo_image,
    hovmoller_mesh,
    lat_text,
    load_backends,
    lon_text,
    map_image,
    position_text,
    section_mesh,
)  # fmt: skip
from viewer.state import AppState, Exportable
from viewer.views.common import curves, frame_of

FORMATS = ("png", "csv", "nc")
PNG_DPI = 150  # 12 x 6 inch figures: about 1800 px wide, enough to print


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def _field_kind(da: xr.DataArray) -> str:
    """Colour scheme and label of a field: absolute temperature, spread, error, trend or anomaly."""
    name = str(da.name or "")
    if name == "thetao":
        return "absolute"
    if name.endswith("spread"):
        return "spread"
    return name if name in ("error", "trend", "innovation") else "anomaly"


def _context(data: Any) -> str:
    """What a field's scalar coordinates say (date, depth, position), for the figure title."""
    if not isinstance(data, xr.DataArray):
        return ""
    scalar = {n: data[n].values for n in ("time", "depth", "lat", "lon") if n in data.coords and data[n].ndim == 0}
    parts = []
    if "lat" in scalar and "lon" in scalar:
        parts.append(position_text(float(scalar["lat"]), float(scalar["lon"])))
    elif "lat" in scalar or "lon" in scalar:
        parts.append(lat_text(float(scalar["lat"])) if "lat" in scalar else lon_text(float(scalar["lon"])))
    if "depth" in scalar:
        parts.append(f"{float(scalar['depth']):g} m")
    if "time" in scalar:
        parts.append(str(scalar["time"])[:10])
    return f" ({', '.join(parts)})" if parts else ""


def _field(item: Exportable, data: xr.DataArray) -> hv.Element:
    """Map, section or time-depth plot of a field (matplotlib, large enough to print)."""
    kind = _field_kind(data)
    mpl = {"backend": "matplotlib"}
    style = {"cmap": CMAPS[kind], "clim": clim_for(kind, data.values), "colorbar": True, **mpl}
    title = item.title + (f", {data.attrs['region']}" if "region" in data.attrs else "") + _context(data)
    if data.attrs.get("warning"):
        title += "\n" + textwrap.fill(str(data.attrs["warning"]), 110)
    size = {"fig_inches": (12, 6), "aspect": 2.0}
    if item.kind == "map":  # model land (NaN) shows the background: land colour, not holes
        image = geo_image(map_image(data, kind)).opts(**style, clabel=LABELS[kind])
        return (image * basemap("matplotlib")).opts(title=title, bgcolor=LAND_COLOR, **size, **mpl)
    if item.kind == "hovmoller":
        mesh = hovmoller_mesh(data, kind, backend="matplotlib")
        return mesh.opts(**style, clabel=LABELS[kind], title=title, xrotation=30, **size)
    along = next(d for d in data.dims if d != "depth")
    mesh = section_mesh(data, along, kind, backend="matplotlib")
    return mesh.opts(**style, clabel=LABELS[kind], title=title, bgcolor=LAND_COLOR, **size)


def element(item: Exportable) -> hv.Element:
    """The view as a HoloViews object styled for the matplotlib backend."""
    load_backends("bokeh", "matplotlib")
    data, mpl = item.data(), {"backend": "matplotlib"}
    if item.kind in ("map", "section", "hovmoller"):
        return _field(item, data)
    if item.kind == "curves":
        first = next(iter(data.values())) if data else None
        profile = first is not None and first.dims == ("depth",)
        value = item.value_label() or _with_unit("value", _unit(first))
        plot = curves(data, value, "depth", depth_down=True) if profile else curves(data, "time", value)
        opts = {"invert_yaxis": True} if profile else {}
        title = item.title + (_context(first) if first is not None else "")
        return plot.opts(
            hv.opts.Curve(**opts, **mpl),
            hv.opts.Overlay(title=title, fig_inches=(12, 6), aspect=2.0, legend_position="right", **mpl),
        )
    return hv.Table(data.reset_index().head(40)).opts(title=item.title, fig_inches=(14, 7), aspect=2.0, **mpl)


def _unit(da: xr.DataArray | None, label: str = "") -> str:
    """The unit of a series: the last parenthesis of its axis label, else its ``units`` attribute."""
    found = re.search(r"\(([^()]*)\)\s*$", label)
    if found:
        return found.group(1)
    return str(da.attrs.get("units", "")) if da is not None else ""


def _with_unit(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


COORD_UNITS = {"lat": "degrees_north", "lon": "degrees_east", "depth": "m"}


def _keep_layout_finite(figure: Any) -> None:
    """Leave out of the tight bounding box artists whose extent is not finite (cartopy meshes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw_without_rendering()  # texts know their extent only once drawn
    for ax in figure.axes:
        for artist in ax.get_children():
            try:
                box = artist.get_tightbbox(renderer)
            except Exception:  # noqa: BLE001 - any artist that cannot say its extent
                box = None
            if box is not None and not np.all(np.isfinite(box.get_points())):  # .bounds would subtract infinities
                artist.set_in_layout(False)
        for title in (ax.title, ax._left_title, ax._right_title):  # cartopy can place these at infinity
            if not np.all(np.isfinite(title.get_window_extent(renderer).get_points())):
                title.set_visible(False)
                if title.get_text():
                    figure.suptitle(title.get_text())


def write_png(item: Exportable, path: Path) -> Path:
    """Render ``item`` with matplotlib and write it (engine.io.write_figure)."""
    import matplotlib.pyplot as plt

    figure = hv.render(element(item), backend="matplotlib")
    try:
        _keep_layout_finite(figure)
        io.write_figure(figure, path, dpi=PNG_DPI)
    finally:
        plt.close(figure)
    return path


def frame(item: Exportable) -> pd.DataFrame:
    """The view's numbers as a table; column names carry their units, and the scalar position
    of a profile or a time series (lat, lon, time or depth) is a column of every row."""
    data = item.data()
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return _series_frame(item, data)
    name = _with_unit(str(data.name or "value"), str(data.attrs.get("units", "")))
    scalars = [c for c in data.coords if c not in data.dims]
    table = data.drop_vars(scalars).to_dataframe(name=name)
    table.index.names = [_with_unit(n, COORD_UNITS.get(n, "")) for n in table.index.names]
    for c in scalars:
        table[_with_unit(c, COORD_UNITS.get(c, ""))] = data[c].values
    return table


def _series_frame(item: Exportable, data: dict[str, xr.DataArray]) -> pd.DataFrame:
    table = frame_of(data)
    if not data:
        return table
    first = next(iter(data.values()))
    table.columns = [_with_unit(str(c), _unit(data[c], item.value_label())) for c in table.columns]
    table.index.name = _with_unit(str(table.index.name), COORD_UNITS.get(str(table.index.name), ""))
    for c in [c for c in first.coords if c not in first.dims]:
        table[_with_unit(c, COORD_UNITS.get(c, ""))] = first[c].values
    return table


def write_csv(item: Exportable, path: Path) -> Path:
    io.write_text(path, frame(item).to_csv())
    return path


def _series_dataset(item: Exportable, data: dict[str, xr.DataArray]) -> xr.Dataset:
    """Curves as variables of one Dataset: the first one's scalar coordinates (the point's
    lat, lon, time or depth) kept as coordinates, another's when they differ as attributes."""
    first = next(iter(data.values()), None)
    shared = {c: first[c] for c in first.coords if c not in first.dims} if first is not None else {}
    variables = {}
    for i, (label, da) in enumerate(data.items()):
        scalars = [c for c in da.coords if c not in da.dims]
        own = {c: str(da[c].values) for c in scalars if c not in shared or not da[c].equals(shared[c])}
        unit = _unit(da, item.value_label())
        attrs = {
            "long_name": label,
            **({"units": unit} if unit else {}),
            **{f"{c}_of_series": v for c, v in own.items()},
        }
        variables[_slug(label) or f"series_{i}"] = da.drop_vars(scalars).assign_attrs(attrs)
    ds = xr.Dataset(variables).assign_coords(shared)
    for c in ds.coords:
        if c in COORD_UNITS:
            ds[c].attrs.setdefault("units", COORD_UNITS[c])
    return ds


def subset(item: Exportable) -> xr.Dataset:
    """The view's data as a CF Dataset (scalar coordinates such as time, depth and position kept)."""
    data = item.data()
    if isinstance(data, pd.DataFrame):
        ds = xr.Dataset.from_dataframe(data.reset_index(drop=data.index.name is None))
    elif isinstance(data, dict):
        ds = _series_dataset(item, data)
    else:
        ds = data.to_dataset(name=str(data.name or "value"))
    return ds.assign_attrs(title=f"DeepDA dashboard export: {item.title}", source="DeepDA dashboard")


def write_netcdf(item: Exportable, path: Path) -> Path:
    io.write_dataset(subset(item), path, command=f"deepda view: export {item.title}")
    return path


WRITERS = {"png": write_png, "csv": write_csv, "nc": write_netcdf}


def export(item: Exportable, fmt: str, folder: Path, stem: str | None = None) -> Path:
    """Write ``item`` as ``fmt`` (png, csv, nc) into ``folder``; returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    return WRITERS[fmt](item, folder / f"{stem or _slug(item.title)}.{fmt}")


class ExportPage:
    """Pick a view, write it as PNG, CSV or netCDF, and download the file."""

    title = "Export"

    def __init__(self, state: AppState, folder: Path | None = None) -> None:
        self.state = state
        self.view = pn.widgets.Select(label="View", options=sorted(state.exports))
        self.folder = pn.widgets.TextInput(label="Folder", value=str(folder or io.cache_dir() / "exports"))
        self.buttons = {
            fmt: pn.widgets.Button(label=label, color="primary", width=150)
            for fmt, label in (("png", "Save PNG"), ("csv", "Save CSV"), ("nc", "Save netCDF"))
        }
        for fmt, button in self.buttons.items():
            button.on_click(lambda _event, fmt=fmt: self.save(fmt))
        self.status = pn.pane.Markdown("", css_classes=["export-status"])
        self.download = pn.widgets.FileDownload(file=None, filename="export", color="success", visible=False)
        self.preview = pn.pane.PNG(None, width=700)
        self.written: list[Path] = []

    def refresh(self) -> None:
        """Offer every view the pages registered."""
        options = sorted(self.state.exports)
        if options != self.view.options:
            self.view.options = options

    def save(self, fmt: str) -> Path | None:
        """Write the chosen view as ``fmt``; show and offer the file."""
        key = self.view.value
        if key is None:
            self.status.object = "Nothing to export yet."
            return None
        try:
            path = export(self.state.exports[key], fmt, Path(self.folder.value).expanduser())
        except Exception as err:  # shown on the page (a missing truth, an unwritable folder, ...)
            self.status.object = f"**Could not export {key} as {fmt}**: {err}"
            return None
        self.written.append(path)
        self.status.object = f"Wrote `{path}`"
        self.download.param.update(file=str(path), filename=path.name, visible=True, label=f"Download {path.name}")
        if fmt == "png":
            self.preview.object = str(path)
        return path

    def panel(self) -> pn.viewable.Viewable:
        self.refresh()
        return pn.Column(
            pn.pane.Markdown("Write any view of the other pages with the selections made there."),
            pn.Row(self.view, self.folder),
            pn.Row(*self.buttons.values()),
            self.status,
            self.download,
            self.preview,
            name=self.title,
        )
