"""Export: any registered view to PNG (HoloViews' matplotlib backend, no browser needed), its
series or table to CSV, and the shown subset to CF netCDF (through ``engine.io``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

from engine import io
from viewer.plots import CMAPS, LABELS, basemap, clim_for, geo_image, load_backends, map_image, section_mesh
from viewer.state import AppState, Exportable
from viewer.views.common import curves, frame_of

FORMATS = ("png", "csv", "nc")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def _field_kind(da: xr.DataArray) -> str:
    """Colour scheme of a field: absolute temperature, ensemble spread or signed (anomaly, error)."""
    name = str(da.name or "")
    if name == "thetao":
        return "absolute"
    return "spread" if name.endswith("spread") else "anomaly"


def _context(data: Any) -> str:
    """What a field's scalar coordinates say (date, depth, point), for the figure title."""
    if not isinstance(data, xr.DataArray):
        return ""
    parts = []
    for name in ("time", "depth", "lat", "lon"):
        if name in data.coords and data[name].ndim == 0:
            value = data[name].values
            parts.append(
                str(value)[:10] if name == "time" else f"{name} {float(value):g}" + (" m" if name == "depth" else "")
            )
    return f" ({', '.join(parts)})" if parts else ""


def _field(item: Exportable, data: xr.DataArray) -> hv.Element:
    """Map, section or time-depth plot of a field."""
    kind = _field_kind(data)
    label, style = (
        LABELS.get(kind, "degC"),
        {"cmap": CMAPS[kind], "clim": clim_for(kind, data.values), "colorbar": True},
    )
    title, mpl = item.title + _context(data), {"backend": "matplotlib"}
    if item.kind == "map":
        image = geo_image(map_image(data, label)).opts(**style, **mpl)
        return (image * basemap("matplotlib")).opts(title=title, fig_inches=(10, 5), **mpl)
    if item.kind == "hovmoller":
        values = data.transpose("depth", "time").values
        mesh = hv.QuadMesh((data["time"].values, data["depth"].values, values), ["time", "depth (m)"], [label])
        return mesh.opts(**style, invert_yaxis=True, title=title, fig_inches=(12, 4), xrotation=30, **mpl)
    along = next(d for d in data.dims if d != "depth")
    mesh = section_mesh(data, along, label).relabel(title)
    return mesh.opts(**style, invert_yaxis=True, title=title, fig_inches=(10, 4), **mpl)


def element(item: Exportable) -> hv.Element:
    """The view as a HoloViews object styled for the matplotlib backend."""
    load_backends("bokeh", "matplotlib")
    data, mpl = item.data(), {"backend": "matplotlib"}
    if item.kind in ("map", "section", "hovmoller"):
        return _field(item, data)
    if item.kind == "curves":
        first = next(iter(data.values())) if data else None
        profile = first is not None and first.dims == ("depth",)
        units = first.attrs.get("units", "") if first is not None else ""
        value = f"value ({units})" if units else "value"
        plot = curves(data, value, "depth (m)", depth_down=True) if profile else curves(data, "time", value)
        opts = {"invert_yaxis": True} if profile else {}
        title = item.title + (_context(first) if first is not None else "")
        return plot.opts(hv.opts.Curve(**opts, **mpl), hv.opts.Overlay(title=title, fig_inches=(9, 5), **mpl))
    return hv.Table(data.reset_index().head(40)).opts(title=item.title, fig_inches=(12, 6), **mpl)


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
            if box is not None and not np.all(np.isfinite(box.bounds)):
                artist.set_in_layout(False)
        for title in (ax.title, ax._left_title, ax._right_title):  # cartopy can place these at infinity
            if not np.all(np.isfinite(title.get_window_extent(renderer).bounds)):
                title.set_visible(False)
                if title.get_text():
                    figure.suptitle(title.get_text())


def write_png(item: Exportable, path: Path) -> Path:
    """Render ``item`` with matplotlib and write it (engine.io.write_figure)."""
    import matplotlib.pyplot as plt

    figure = hv.render(element(item), backend="matplotlib")
    try:
        _keep_layout_finite(figure)
        io.write_figure(figure, path)
    finally:
        plt.close(figure)
    return path


def frame(item: Exportable) -> pd.DataFrame:
    """The view's numbers as a table."""
    data = item.data()
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return frame_of(data)
    name = str(data.name or "value")
    scalars = [c for c in data.coords if c not in data.dims]
    return data.drop_vars(scalars).to_dataframe(name=name)


def write_csv(item: Exportable, path: Path) -> Path:
    io.write_text(path, frame(item).to_csv())
    return path


def subset(item: Exportable) -> xr.Dataset:
    """The view's data as a CF Dataset (scalar coordinates such as time and depth kept)."""
    data = item.data()
    if isinstance(data, pd.DataFrame):
        ds = xr.Dataset.from_dataframe(data.reset_index(drop=data.index.name is None))
    elif isinstance(data, dict):
        ds = xr.Dataset(
            {
                _slug(label) or f"series_{i}": da.drop_vars([c for c in da.coords if c not in da.dims])
                for i, (label, da) in enumerate(data.items())
            }
        )
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
