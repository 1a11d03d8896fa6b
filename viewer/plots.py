"""Plot building blocks shared by the pages and the PNG export.

Maps are Pacific-centred: a field on longitudes 0..360 is drawn with x = ``lon - 180``, the
x coordinate of ``PlateCarree(central_longitude=180)``, so the image needs no reprojection
when the depth or time changes. The pages draw plain HoloViews elements in these map
coordinates (land and coastlines are projected into them once per server); only the PNG
export draws GeoViews elements on cartopy axes. Land and coastlines come from the Natural
Earth shapefiles shipped in ``assets/natural_earth`` (cartopy's ``pre_existing_data_dir``
layout): nothing is downloaded and no tile source is used.

Start-up time matters (``deepda bench viewer``: launch to first page), so cartopy, GeoViews,
cmocean and the matplotlib plotting backends are imported only by the functions that need
them, not by this module.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from engine import io
from engine.io import assets_dir

MAP_CENTRAL_LONGITUDE = 180.0
PLATFORM_COLORS = {
    "argo": "#1f77b4",
    "xbt": "#ff7f0e",
    "ctd": "#2ca02c",
    "mooring": "#d62728",
    "sst": "#9467bd",
    "unknown": "#7f7f7f",
}
LAND_COLOR = "#d9d9d9"
# what each kind of field is, and its unit: colour bars, hover tooltips and axes say both
NAMES = {
    "absolute": "temperature",
    "anomaly": "anomaly",
    "spread": "ensemble spread",
    "error": "analysis minus truth",
    "trend": "trend",
    "innovation": "observation minus background",
}
UNITS = {
    "absolute": "degC", "anomaly": "degC", "spread": "degC", "error": "degC", "trend": "degC per decade",
    "innovation": "degC",
}  # fmt: skip
LABELS = {kind: f"{NAMES[kind]} ({UNITS[kind]})" for kind in NAMES}
DEPTH_LABEL = "depth (m)"
DEPTH_TICKS = (0, 100, 200, 500, 1000, 1500, 2000, 3000, 4000, 5000)
MAP_LON_TICKS = tuple(float(lon - 180) for lon in range(0, 360, 60))  # map x of 0, 60E, 120E, 180, 120W, 60W
MAP_LAT_TICKS = (-60.0, -30.0, 0.0, 30.0, 60.0)
_LOADED: set[str] = set()


@contextlib.contextmanager
def _without_matplotlib() -> Iterator[None]:
    """Make ``import matplotlib`` fail for the duration (when it is not imported yet).

    ``holoviews.plotting.bokeh.styles`` imports ``matplotlib.cm`` and ``matplotlib.colors``
    (inside try/except ImportError) and never uses them. That import costs about 0.25 s, and
    once matplotlib is loaded, Panel's pane detection imports ``matplotlib.figure`` at the
    first ``pn.panel`` call (0.35 s more): together a fifth of the first page's time. The
    PNG export imports matplotlib normally later. The block is process-wide for the tenth of
    a second of the import; the app loads the backend before it starts any worker thread.
    """
    if "matplotlib" in sys.modules:
        yield
        return
    sys.modules["matplotlib"] = None  # type: ignore[assignment] - the import system's "blocked" marker
    try:
        yield
    finally:
        if sys.modules.get("matplotlib", 0) is None:
            del sys.modules["matplotlib"]


def load_backends(*backends: str) -> None:
    """Import the HoloViews plotting backends once: bokeh for the pages, matplotlib (with
    GeoViews' matplotlib plots, for the cartopy maps) for the PNG export."""
    for backend in backends:
        if backend in _LOADED:
            continue
        if backend == "bokeh":
            with _without_matplotlib():
                import holoviews.plotting.bokeh  # noqa: F401

            # HoloViews draws with WebGL by default; these plots are small (a coarse image,
            # the outlines, short curves), which the canvas draws at once, while WebGL adds
            # its bundle and shader set-up to every page and is slow without a GPU (about a
            # quarter of a second of the first page in headless Chromium)
            hv.renderer("bokeh").webgl = False
        else:
            import geoviews.plotting.mpl  # noqa: F401
            import holoviews.plotting.mpl  # noqa: F401
        _LOADED.add(backend)
    hv.Store.set_current_backend("bokeh" if "bokeh" in _LOADED else backends[0])


def cartopy_crs() -> Any:
    """``cartopy.crs``, configured to read the shipped Natural Earth files (never downloads)."""
    import cartopy

    cartopy.config["pre_existing_data_dir"] = str(assets_dir() / "natural_earth")
    import cartopy.crs as ccrs

    return ccrs


@functools.cache
def map_crs() -> Any:
    """The maps' projection, ``PlateCarree(central_longitude=180)`` (for cartopy and GeoViews)."""
    return cartopy_crs().PlateCarree(central_longitude=MAP_CENTRAL_LONGITUDE)


def palette(name: str, n: int = 256) -> list[str]:
    """A cmocean colormap as a list of ``n`` hex colours (works in bokeh and matplotlib).

    The colours are cmocean's own RGB table, sampled as ``cmocean.cm`` does (matplotlib's
    256-entry lookup table, linear between the table's rows), computed here with numpy so
    that the pages import neither cmocean (which imports ``matplotlib.pyplot``) nor
    matplotlib (about 0.3 s of the server's start-up each).
    """
    rgb = io.read_colormap_table(name)
    lut_size = 256  # matplotlib's default N, as in cmocean.cm
    nodes = np.linspace(0.0, 1.0, len(rgb))
    lut = np.column_stack([np.interp(np.linspace(0.0, 1.0, lut_size), nodes, rgb[:, c]) for c in range(3)])
    index = np.minimum((np.linspace(0.0, 1.0, n) * lut_size).astype(int), lut_size - 1)
    return ["#" + "".join(format(round(float(v) * 255), "02x") for v in lut[i]) for i in index]


CMAPS = {"absolute": palette("thermal"), "anomaly": palette("balance"), "spread": palette("amp"), "error": None}
CMAPS["error"] = CMAPS["anomaly"]
CMAPS["trend"] = CMAPS["anomaly"]
CMAPS["innovation"] = CMAPS["anomaly"]


def symmetric(values: Any, floor: float = 0.05) -> tuple[float, float]:
    """Colour limits centred on zero from the largest finite magnitude (at least ``floor``)."""
    finite = np.asarray(values, dtype="f8")
    finite = finite[np.isfinite(finite)]
    top = float(np.nanpercentile(np.abs(finite), 99)) if finite.size else 1.0
    top = max(top, floor)
    return (-top, top)


def clim_for(kind: str, values: Any) -> tuple[float, float]:
    """Colour limits for a field of ``kind`` (absolute, spread: data range; others: symmetric)."""
    if kind in ("absolute", "spread"):
        finite = np.asarray(values, dtype="f8")
        finite = finite[np.isfinite(finite)]
        if not finite.size:
            return (0.0, 1.0)
        lo, hi = float(finite.min()), float(finite.max())
        lo = 0.0 if kind == "spread" else lo
        return (lo, hi if hi > lo else lo + 1e-3)
    return symmetric(values)


def value_dim(kind: str) -> hv.Dimension:
    """The value dimension of a field of ``kind``: its name and unit (``temperature (degC)``)."""
    return hv.Dimension(kind, label=NAMES[kind], unit=UNITS[kind])


def lat_text(lat: float) -> str:
    """A latitude as ``2.5S`` / ``0.0`` / ``12.5N``."""
    return f"{abs(lat):.1f}{'S' if lat < 0 else 'N'}" if round(lat, 1) != 0 else "0.0"


def lon_text(lon: float) -> str:
    """A longitude (any range) as ``140.0E`` / ``107.5W`` / ``180.0``."""
    lon = float(lon) % 360.0
    if round(lon, 1) in (0.0, 180.0, 360.0):
        return f"{lon % 360.0:.1f}"
    return f"{lon:.1f}E" if lon < 180.0 else f"{360.0 - lon:.1f}W"


def position_text(lat: float, lon: float) -> str:
    return f"{lat_text(lat)}, {lon_text(lon)}"


def map_image(field: xr.DataArray, kind: str = "absolute") -> hv.Image:
    """A (lat, lon) field as a Pacific-centred image in map coordinates (lon 0..360 -> x = lon - 180).

    The pages draw it as it is (a regular grid needs no datashader: the image is already
    coarser than the screen); the PNG export puts it on cartopy axes with :func:`geo_image`.
    """
    lon = field["lon"].values
    order = np.argsort(lon % 360.0)
    x = lon[order] % 360.0 - 180.0
    values = np.asarray(field.transpose("lat", "lon").values)[:, order]
    return hv.Image((x, field["lat"].values, values), kdims=["x", "y"], vdims=[value_dim(kind)])


def geo_image(image: hv.Image) -> Any:
    """A map-coordinate image as a GeoViews image in :func:`map_crs` (for the PNG export)."""
    import geoviews as gv

    return gv.Image(image, crs=map_crs())


def lon_of(x: float) -> float:
    """Longitude 0..360 of a map x coordinate."""
    return float((x + 180.0) % 360.0)


def x_of(lon: float) -> float:
    """Map x coordinate of a longitude."""
    return float(lon % 360.0 - 180.0)


@functools.cache
def projected_outlines(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """x, y of the shipped Natural Earth ``land`` or ``coastline`` geometries in map
    coordinates, every ring or line separated by NaN (projected once per server).

    The projection is the shift x = lon - 180 (lon east of Greenwich) or lon + 180 (west),
    so each geometry is cut at Greenwich, the maps' seam, the way cartopy's
    ``project_geometry`` cuts it, but with shapely alone: importing cartopy brings matplotlib
    into the server's start-up.
    """
    import shapely
    import shapely.affinity

    halves = ((shapely.box(0.0, -90.0, 180.0, 90.0), -180.0), (shapely.box(-180.0, -90.0, 0.0, 90.0), 180.0))
    xs, ys = [], []
    for geometry in io.read_natural_earth(kind):
        for half, shift in halves:
            piece = shapely.affinity.translate(geometry.intersection(half), xoff=shift)
            for part in getattr(piece, "geoms", [piece]):
                if part.is_empty or part.geom_type not in ("Polygon", "LineString"):
                    continue  # a line touching the seam in a single point
                xy = np.asarray(part.exterior.coords if kind == "land" else part.coords)
                xs += [xy[:, 0], [np.nan]]
                ys += [xy[:, 1], [np.nan]]
    return np.concatenate(xs[:-1]), np.concatenate(ys[:-1])


def basemap(backend: str = "bokeh") -> hv.Overlay:
    """Land (grey) and coastlines from the shipped Natural Earth 110m shapefiles.

    For the pages (bokeh) they are drawn as one pre-projected polygon and one path with NaN
    breaks: the same outlines as GeoViews' features, but a single glyph each, which renders
    in a fifth of the time (tens of ms instead of ~0.3 s per map and session), and plain
    HoloViews elements, so the pages need neither GeoViews nor a projection.
    """
    if backend == "bokeh":
        land_x, land_y = projected_outlines("land")
        coast_x, coast_y = projected_outlines("coastline")
        land = hv.Polygons([{"x": land_x, "y": land_y}]).opts(fill_color=LAND_COLOR, line_color=None)
        return land * hv.Path([np.column_stack([coast_x, coast_y])]).opts(color="black", line_width=0.7)
    cartopy_crs()  # GeoViews' features read the shipped shapefiles
    import geoviews as gv

    land, coast = gv.feature.land.clone(), gv.feature.coastline.clone()
    return land.opts(facecolor=LAND_COLOR, edgecolor="none", backend="matplotlib") * coast.opts(
        edgecolor="black", linewidth=0.6, backend="matplotlib"
    )


LON_TICKS = """
const lon = ((tick + 180) % 360 + 360) % 360;
if (lon == 0) { return "0"; }
if (lon == 180) { return "180"; }
return lon < 180 ? lon + "E" : (360 - lon) + "W";
"""
LAT_TICKS = "return tick == 0 ? '0' : (tick > 0 ? tick + 'N' : (-tick) + 'S');"


def map_opts() -> dict[str, Any]:
    """Bokeh options shared by every map (tick labels in degrees E/W and N/S)."""
    from bokeh.models import CustomJSTickFormatter

    return dict(
        xformatter=CustomJSTickFormatter(code=LON_TICKS),
        yformatter=CustomJSTickFormatter(code=LAT_TICKS),
        xticks=list(MAP_LON_TICKS),
        yticks=list(MAP_LAT_TICKS),
        xlabel="longitude",
        ylabel="latitude",
    )


LON_HOVER = "const lon = ((value + 180) % 360 + 360) % 360;" + (
    "return lon < 180 ? lon.toFixed(1) + 'E' : (360 - lon).toFixed(1) + 'W';"
)
LAT_HOVER = "return value < 0 ? (-value).toFixed(1) + 'S' : value.toFixed(1) + 'N';"
DEPTH_HOVER = "return (value * value).toFixed(0) + ' m';"  # the inverse of depth_stretch


def map_image_opts(kind: str) -> dict[str, Any]:
    """Bokeh options of a map image: a hover giving longitude and latitude in degrees E/W and
    N/S (not the map's internal x, y) and the value with its unit; model land in land colour."""
    from bokeh.models import CustomJSHover

    return dict(
        tools=["hover"],
        hover_tooltips=[
            ("lon", "$x{custom}"),
            ("lat", "$y{custom}"),
            (NAMES[kind], f"@image{{0.000}} {UNITS[kind]}"),
        ],
        hover_formatters={"$x": CustomJSHover(code=LON_HOVER), "$y": CustomJSHover(code=LAT_HOVER)},
        clipping_colors={"NaN": LAND_COLOR},  # model land cells read as land, not as holes
    )


def depth_axis(values: np.ndarray) -> dict[str, Any]:
    """Options for a plot with depth (m, positive down, linear) on the y axis."""
    return {"invert_yaxis": True, "ylim": (0.0, float(np.max(values)) * 1.02), "ylabel": DEPTH_LABEL}


def depth_stretch(depth: Any) -> np.ndarray:
    """The stretched depth coordinate of sections and time-depth plots: sqrt(depth), so the
    upper 100 m take a fifth of a 0-2000 m axis and the upper 500 m half (the thermocline is
    not squashed into a few pixels as on a linear axis)."""
    return np.sqrt(np.clip(np.asarray(depth, dtype="f8"), 0.0, None))


def depth_edges(depths: np.ndarray) -> np.ndarray:
    """Cell edges of depth levels: the surface, the midpoints, and the deepest level itself, so
    that a plot ends at the deepest level (2000 m) rather than half a cell below it."""
    z = np.asarray(depths, dtype="f8")
    return np.concatenate([[0.0], (z[1:] + z[:-1]) / 2.0, [z[-1]]])


def stretched_depth_opts(depths: np.ndarray) -> dict[str, Any]:
    """Axis options (either backend) for a stretched, inverted depth axis ending at the deepest level."""
    bottom = float(np.max(depths))
    ticks = [(float(depth_stretch(z)), f"{z:g}") for z in DEPTH_TICKS if z <= bottom]
    return {"invert_yaxis": True, "ylim": (0.0, float(depth_stretch(bottom))), "yticks": ticks, "ylabel": DEPTH_LABEL}


def degree_ticks(along: str, values: np.ndarray) -> list[tuple[float, str]]:
    """Ticks of a latitude (every 30 degrees) or longitude (0..360, every 60) axis, in degrees N/S or E/W."""
    lo, hi = float(np.min(values)), float(np.max(values))
    if along == "lat":
        return [(float(v), lat_text(v).replace(".0", "")) for v in range(-90, 91, 30) if lo - 1 <= v <= hi + 1]
    return [(float(v), lon_text(v).replace(".0", "")) for v in range(0, 361, 60) if lo - 3 <= v <= hi + 3]


def section_mesh(field: xr.DataArray, along: str, kind: str, backend: str | None = None) -> hv.QuadMesh:
    """A (depth, lat|lon) section as a QuadMesh on the stretched depth axis (lon in 0..360),
    with its axes' labels, ticks and limits (bokeh or matplotlib)."""
    x = field[along].values
    y = depth_stretch(depth_edges(field["depth"].values))
    name = {"lat": "latitude", "lon": "longitude"}[along]
    mesh = hv.QuadMesh(
        (x, y, np.asarray(field.transpose("depth", along).values)),
        [hv.Dimension(along, label=name), hv.Dimension("depth", label="depth", unit="m")],
        [value_dim(kind)],
    )
    axes = stretched_depth_opts(field["depth"].values)
    return mesh.opts(xticks=degree_ticks(along, x), xlabel=name, **axes, backend=backend)


def hovmoller_mesh(field: xr.DataArray, kind: str = "anomaly", backend: str | None = None) -> hv.QuadMesh:
    """A (depth, time) field as a QuadMesh on the stretched depth axis."""
    y = depth_stretch(depth_edges(field["depth"].values))
    mesh = hv.QuadMesh(
        (field["time"].values, y, np.asarray(field.transpose("depth", "time").values)),
        ["time", hv.Dimension("depth", label="depth", unit="m")],
        [value_dim(kind)],
    )
    return mesh.opts(xlabel="time", **stretched_depth_opts(field["depth"].values), backend=backend)


def stretched_hover(kind: str, along: str) -> dict[str, Any]:
    """Bokeh hover options of a section (``along`` lat or lon) or a time-depth plot (``time``):
    the position in degrees or as a date, the depth in metres and the value with its unit."""
    from bokeh.models import CustomJSHover

    x_code = {"lat": LAT_HOVER, "lon": "value = value - 180;" + LON_HOVER}
    x_formatter = CustomJSHover(code=x_code[along]) if along in x_code else "datetime"
    return dict(
        tools=["hover"],
        hover_tooltips=[
            (along, "$x{%F}" if along == "time" else "$x{custom}"),
            ("depth", "$y{custom}"),
            (NAMES[kind], f"@{{{kind}}}{{0.000}} {UNITS[kind]}"),
        ],
        hover_formatters={"$x": x_formatter, "$y": CustomJSHover(code=DEPTH_HOVER)},
    )
