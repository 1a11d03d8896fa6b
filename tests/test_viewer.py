"""The dashboard in Python: every page built against small coarse-grid files, callbacks driven.

The files (one year of the historical world, its OSSE observations, a two-member
persistence analysis) are made once per session by ``viewer.bench.sample_data``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from bokeh.document import Document
from bokeh.models import GlyphRenderer, Image, LinearColorMapper

from engine.io import InputError
from engine.osse import truth_anomaly
from viewer import derive
from viewer.bench import sample_data
from viewer.jobs import JobRunner
from viewer.plots import CMAPS, load_backends
from viewer.state import AppState
from viewer.store import DataStore, steps_per_year
from viewer.views.assimilate import AssimilatePage
from viewer.views.explore import ExplorePage
from viewer.views.export import ExportPage, export
from viewer.views.observations import ObservationsPage
from viewer.views.trends import TrendsPage
from viewer.views.validate import OBS_OPTION, ValidatePage


@pytest.fixture(scope="session")
def viewer_files(tmp_path_factory):
    load_backends("bokeh", "matplotlib")
    return sample_data(tmp_path_factory.mktemp("viewer_data"))


@pytest.fixture
def store(viewer_files) -> DataStore:
    store = DataStore()
    store.add(viewer_files["analysis"], "analysis")
    store.add(viewer_files["world"], "truth")
    store.add(viewer_files["obs"], "observations")
    return store


@pytest.fixture
def state(store) -> AppState:
    return AppState(store)


def render(page) -> object:
    return page.panel().get_root(Document())


def image_sources(root) -> list:
    return [r.data_source for r in root.select({"type": GlyphRenderer}) if isinstance(r.glyph, Image)]


# --- store -----------------------------------------------------------------------------------


def test_store_slices_match_the_files_and_the_engine_anomaly(store, viewer_files):
    truth = xr.open_dataset(viewer_files["world"])
    expected = truth_anomaly(truth, store.grid("truth"), steps_per_year(truth)).isel(time=7, depth=3)
    lazy = store.select("truth", "anomaly", time=7, depth=3)  # lazily read, climatology per slice
    np.testing.assert_allclose(lazy.values, expected.values, atol=1e-5)
    full = store.data("truth", "anomaly").isel(time=7, depth=3)  # loaded once, climatology for all
    np.testing.assert_allclose(full.values, expected.values, atol=1e-5)
    analysis = xr.open_dataset(viewer_files["analysis"])
    np.testing.assert_array_equal(
        store.select("persistence", "spread", time=3, depth=0).values, analysis["thetao_spread"][3, 0].values
    )
    assert store.variables("persistence") == ["absolute", "anomaly", "spread"]
    assert store.variables("truth") == ["absolute", "anomaly"]
    with pytest.raises(InputError):
        store.add(viewer_files["world"].with_name("missing.nc"), "truth")


def test_state_follows_the_store(store):
    state = AppState(store)
    assert state.dataset == "persistence" and state.truth == "truth" and state.observations == "observations"
    state.variable = "spread"
    state.dataset = "truth"  # the truth has no spread: the variable falls back
    assert state.variable == "absolute"
    name = store.add(store.source("persistence").path, "analysis", name="again")
    assert state.sync() and name in state.param.dataset.objects


# --- explore ---------------------------------------------------------------------------------


def test_depth_change_updates_the_map(state):
    page = ExplorePage(state)
    root = render(page)
    source = image_sources(root)[0]
    before = np.array(source.data["image"][0], dtype="f8")
    state.depth_index = 8
    after = np.array(source.data["image"][0], dtype="f8")
    assert not np.allclose(np.nan_to_num(before), np.nan_to_num(after))
    shown = page.map_field()
    assert float(shown["depth"]) == state.store.depths("persistence")[8]
    # the image holds the field's values (drawn as the grid itself, no datashader): same range
    assert np.nanmax(after) == pytest.approx(float(shown.max()), rel=1e-3)
    assert np.nanmin(after) == pytest.approx(float(shown.min()), rel=1e-3)


def test_variable_switch_changes_the_colormap(state):
    page = ExplorePage(state)
    root = render(page)
    palette = {tuple(m.palette) for m in root.select({"type": LinearColorMapper})}
    assert tuple(CMAPS["absolute"]) in palette
    state.variable = "anomaly"
    palette = {tuple(m.palette) for m in root.select({"type": LinearColorMapper})}
    assert tuple(CMAPS["anomaly"]) in palette
    mapper = next(m for m in root.select({"type": LinearColorMapper}) if tuple(m.palette) == tuple(CMAPS["anomaly"]))
    assert mapper.low == pytest.approx(-mapper.high)


def test_tap_moves_the_point_and_updates_profile_series_and_sections(state):
    page = ExplorePage(state)
    render(page)
    page.tap.event(x=-40.0, y=2.0)  # map x is lon - 180
    assert state.lat == pytest.approx(2.0) and state.lon == pytest.approx(140.0)
    j, i = state.cell()
    profiles = page.profiles()
    analysis = xr.open_dataset(state.store.source("persistence").path)["thetao"]
    np.testing.assert_allclose(profiles["persistence"].values, analysis[state.time_index, :, j, i].values)
    assert set(profiles) == {"persistence", "truth"}  # the truth said once, not "truth (truth)"
    series = page.series()["persistence"]
    assert series.sizes["time"] == analysis.sizes["time"]
    np.testing.assert_allclose(series.values, analysis[:, state.depth_index, j, i].values)
    section = page.section("lat")
    assert section.dims == ("depth", "lat") and float(section["lon"]) == pytest.approx(float(analysis["lon"][i]))
    other = page.profiles()["persistence"].values
    page.tap.event(x=100.0, y=-30.0)
    assert not np.allclose(np.nan_to_num(page.profiles()["persistence"].values), np.nan_to_num(other))


def test_long_series_are_read_in_the_background(viewer_files, tmp_path, monkeypatch):
    """A record too long to read at once leaves the page drawn without it, says so, reads it
    in a worker thread and then draws it (at the next poll)."""
    import shutil
    import time

    from bokeh.models import Line

    import viewer.store

    monkeypatch.setattr(viewer.store, "SYNC_READ_MB", 0.0)  # the one-year files count as long
    store = DataStore()
    for key, kind in (("analysis", "analysis"), ("world", "truth")):  # new paths: nothing cached
        store.add(shutil.copy(viewer_files[key], tmp_path / viewer_files[key].name), kind)
    page = ExplorePage(AppState(store))
    assert page.series_waiting and "into memory for the time series" in page.series_note.object
    root = render(page)  # outside a server, the reading starts at once
    lines = [r.data_source for r in root.select({"type": GlyphRenderer}) if isinstance(r.glyph, Line)]
    lines = [source for source in lines if "time" in source.data]  # the series (analysis, truth)

    def values(source) -> np.ndarray:
        return np.asarray(next(v for k, v in source.data.items() if k != "time"), dtype="f8")

    assert len(lines) == 2 and all(np.isnan(values(source)).all() for source in lines)
    deadline = time.time() + 60
    while page.series_waiting and time.time() < deadline:
        time.sleep(0.2)
        page.poll()
    assert not page.series_waiting and page.series_note.object == ""
    j, i = page.state.cell()
    expected = xr.open_dataset(viewer_files["analysis"])["thetao"][:, 0, j, i].values
    assert any(len(values(source)) == len(expected) and np.allclose(values(source), expected) for source in lines)


def test_time_player_moves_the_date(state):
    page = ExplorePage(state)
    render(page)
    page.player.value = 5
    assert state.time_index == 5 and "step 6 of" in page.when.object


# --- observations ----------------------------------------------------------------------------


def test_observations_page_counts_and_qc(state, viewer_files, tmp_path):
    page = ObservationsPage(state, JobRunner(state.store), upload_dir=tmp_path)
    render(page)
    table, qc = state.store.observations("observations")
    counts = page.counts()
    assert counts.to_numpy().sum() == table["profile_id"].nunique()
    assert set(counts.columns) <= {"argo", "xbt", "ctd", "mooring", "sst (field values)"} and list(counts.index) == [
        2000
    ]
    # satellite SST values are fields, not profiles: left out of the profile bars and counted apart
    assert "sst (field values)" not in page.profile_counts().columns
    assert "satellite SST values" in page.summary.object
    assert page.qc_table.value["rows"].sum() == len(table)
    # a CSV with bad rows, loaded by path: QC reasons appear in the summary
    bad = table.head(6).copy()
    bad.loc[bad.index[0], "temperature"] = 300.0
    bad.loc[bad.index[1], "lat"] = 95.0
    bad[["time", "lat", "lon", "depth", "temperature", "platform"]].to_csv(tmp_path / "mine.csv", index=False)
    page.path.value = str(tmp_path / "mine.csv")
    page.on_load()
    assert state.observations == "mine"
    reasons = set(page.qc_table.value["reason"])
    assert "impossible position" in reasons and any("Kelvin" in r or "outside" in r for r in reasons)
    # the same file uploaded through the browser widget
    page.upload.filename = "uploaded.csv"
    page.upload.value = (tmp_path / "mine.csv").read_bytes()
    assert state.observations == "uploaded" and (tmp_path / "uploaded.csv").exists()
    page.path.value = str(tmp_path / "nope.nc")
    page.on_load()
    assert "Could not load" in page.status.object


def test_observation_time_window_filters_points(state, tmp_path):
    page = ObservationsPage(state, JobRunner(state.store), upload_dir=tmp_path)
    everything = len(page._points(value=page.window.value).data)
    lo = pd.Timestamp("2000-06-01")
    fewer = len(page._points(value=(lo, lo + pd.Timedelta(days=10))).data)
    assert 0 < fewer < everything


# --- validate and trends -----------------------------------------------------------------------


def test_validate_page(state):
    page = ValidatePage(state)
    render(page)
    error = page.error_field()
    analysis = state.store.select("persistence", "anomaly", time=state.time_index, depth=0)
    truth = state.store.select("truth", "anomaly", time=state.truth_time_index(), depth=0)
    np.testing.assert_allclose(error.values, analysis.values - truth.values, atol=1e-5)
    profiles = page.rmse_profiles()
    assert {"persistence", "persistence background"} <= set(profiles)
    assert (profiles["persistence"] > 0).all()
    assert float(profiles["persistence"][0]) < float(profiles["persistence background"][0])
    assert page.rmse_series()["persistence"].sizes["time"] == len(state.store.times("persistence"))
    page.with_obs.value = [OBS_OPTION]  # grids the observation file: the observation-error line
    observed = page.rmse_profiles()["observations"]
    assert observed.dims == ("depth",) and 0.05 < float(observed[0]) < 2.0
    page.on_score()
    table = page.table.value
    assert {"metric", "method", "region"} <= set(table.columns) and (table["method"] == "persistence").any()


def test_shipped_summary_lines(tmp_path):
    table = pd.DataFrame(
        {"metric": ["rmse", "rmse"], "method": ["deepda", "oi"], "region": ["global"] * 2, "era": ["all"] * 2}
    )
    table["5 m"], table["100 m"] = [0.3, 0.4], [0.5, 0.6]
    table.to_csv(tmp_path / derive.SUMMARY_FILE, index=False)
    lines = derive.summary_profiles(derive.shipped_summary(tmp_path))
    assert list(lines) == ["deepda", "oi"] and list(lines["oi"].index) == [5.0, 100.0]
    assert lines["oi"][100.0] == pytest.approx(0.6)


def test_trends_page(state):
    page = TrendsPage(state)
    render(page)
    means = page.layer_means()
    assert set(means) == {"persistence", "truth"}
    assert all(np.isfinite(m.values).all() for m in means.values())
    ohc = page.heat_content("0-700 m")["truth"]
    assert ohc.attrs["units"] == "ZJ" and np.isfinite(ohc.values).all()
    assert page.trend_field().dims == ("lat", "lon")
    assert page.hovmoller_field().dims[0] == "depth"
    nino = page.nino()
    assert "observed (NOAA CPC)" in nino and nino["persistence"].sizes["time"] == 12
    state.region = "pacific"
    assert not np.allclose(page.layer_means()["persistence"].values, means["persistence"].values)


# --- export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["Explore: map", "Explore: profile", "Validate: RMSE by depth", "Trends: Nino-3.4"])
def test_export_writes_readable_png_csv_netcdf(state, tmp_path, key):
    from PIL import Image as PILImage

    ExplorePage(state), ValidatePage(state), TrendsPage(state)
    item = state.exports[key]
    png = export(item, "png", tmp_path)
    pixels = np.asarray(PILImage.open(png).convert("L"), dtype="f8")
    assert pixels.shape[0] > 200 and pixels.std() > 10
    frame = pd.read_csv(export(item, "csv", tmp_path), index_col=0)
    assert len(frame) > 10 and frame.notna().to_numpy().any()
    with xr.open_dataset(export(item, "nc", tmp_path)) as ds:
        assert ds.data_vars and "DeepDA" in ds.attrs["title"] and "history" in ds.attrs


def test_export_page_buttons(state, tmp_path):
    ExplorePage(state)
    page = ExportPage(state, folder=tmp_path)
    render(page)
    page.view.value = "Explore: time series"
    path = page.save("csv")
    assert path.exists() and page.download.file == str(path)
    series = pd.read_csv(path, index_col=0)
    assert "persistence (degC)" in series.columns and series.index.name == "time"
    # the point's position is in the file, not only in the page's title
    j, i = state.cell()
    ds = state.store.fields("persistence")
    assert series["lat (degrees_north)"].eq(float(ds["lat"][j])).all()
    assert series["lon (degrees_east)"].eq(float(ds["lon"][i])).all() and "depth (m)" in series.columns


# --- assimilation jobs -------------------------------------------------------------------------


def test_assimilation_job_runs_and_joins_the_selector(state, tmp_path):
    runner = JobRunner(state.store)
    page = AssimilatePage(state, runner, out_dir=tmp_path)
    render(page)
    assert page.method.value.endswith(".pt") and not page.preset.visible  # a checkpoint knows its grid
    page.method.value = "climatology"
    assert page.preset.visible
    page.period.value = (2000, 2000)
    page.label.value = "clim run"
    page.on_run()
    job = runner.latest
    assert job is not None and page.cancel.disabled is False
    assert job.wait(120) and job.status == "done", job.message
    page.poll()
    assert "clim_run" in state.param.dataset.objects and state.dataset == "clim_run"
    assert page.progress.value == 100 and (tmp_path / "analysis_clim_run.nc").exists()
    assert job.total == 73 and job.done == 73


def test_assimilation_job_can_be_cancelled(state, tmp_path):
    runner = JobRunner(state.store)
    page = AssimilatePage(state, runner, out_dir=tmp_path)
    page.method.value = "persistence"
    page.period.value = (2000, 2000)
    page.on_run()
    job = runner.latest
    page.on_cancel()
    assert job.wait(120) and job.status == "cancelled"
    page.poll()
    assert "cancelled" in page.status.object and page.run.disabled is False
    assert not (tmp_path / f"analysis_{job.label}.nc").exists()
    assert not (tmp_path / f"analysis_{job.label}.nc.part").exists()  # no resume offered here: nothing left
    with pytest.raises(RuntimeError):  # one job at a time
        runner.start("x", "a", tmp_path / "a", lambda j: __import__("time").sleep(1) or tmp_path, "analysis")
        runner.start("x", "b", tmp_path / "b", lambda j: tmp_path, "analysis")


def test_observations_page_reads_only_profiles_of_a_dsg_file(viewer_files, tmp_path, monkeypatch):
    import shutil

    from engine import io
    from engine.observe.profiles import qc_summary

    full = io.read_profiles(viewer_files["obs"])  # the stored QC codes: what a DSG file says
    firsts = full.drop_duplicates("profile_id")
    # fresh paths: the store memoises per server, so earlier tests may have read the sample file
    first, second = tmp_path / "osse.nc", tmp_path / "again.nc"
    shutil.copy(viewer_files["obs"], first)
    shutil.copy(viewer_files["obs"], second)

    def full_read(*_, **__):
        raise AssertionError("the whole profile table was read")

    monkeypatch.setattr(DataStore, "observations", full_read)
    monkeypatch.setattr(io, "open_observations", full_read)
    store = DataStore()
    store.add(first, "observations")
    state = AppState(store)
    page = ObservationsPage(state, JobRunner(store), upload_dir=tmp_path)
    render(page)
    good = int((full["qc"] == 0).sum())
    sst = (firsts["platform"].astype(str) == "sst").to_numpy()
    counted = f"{len(full):,} measurements: {int((~sst).sum()):,} profiles and {int(sst.sum()):,} satellite SST values"
    assert f"{counted}; {good:,} good" in page.summary.object  # SST values are not counted as profiles
    pd.testing.assert_frame_equal(page.qc_table.value, qc_summary(full))
    pd.testing.assert_frame_equal(page.qc_summary(), qc_summary(full))
    expected = pd.crosstab(pd.DatetimeIndex(firsts["time"]).year, firsts["platform"].astype(str))
    expected.index.name = "year"
    expected.columns = [f"{c} (field values)" if c == "sst" else c for c in expected.columns]
    pd.testing.assert_frame_equal(page.counts(), expected, check_column_type=False)
    prof = page.profiles()
    assert list(prof.columns) == ["time", "lat", "lon", "platform", "rows", "good", "x"]
    np.testing.assert_array_equal(prof["rows"], full.groupby("profile_id", sort=False).size())
    np.testing.assert_array_equal(prof["x"], firsts["lon"].to_numpy() % 360.0 - 180.0)
    assert int(prof["good"].sum()) == good
    # loading another DSG file by path, and switching between files, stay on the profile data
    page.path.value = str(second)
    page.on_load()
    assert state.observations == "again" and "again" in page.summary.object, page.status.object
    state.observations = "observations"
    assert f"{int((~sst).sum()):,} profiles" in page.summary.object


# --- the app ---------------------------------------------------------------------------------


def test_first_page_needs_neither_matplotlib_nor_mathjax(viewer_files):
    """The served first page (in a fresh interpreter, as ``panel serve`` runs it) imports no
    matplotlib and holds no model that makes Panel send the MathJax bundle."""
    import json
    import subprocess
    import sys

    script = """
import json, sys
from bokeh.document import Document
from bokeh.models import Plot
from bokeh.resources import Resources
from panel.io.resources import bundle_resources
from viewer.app import build
app = build(sys.argv[1:])
doc = Document()
app.layout().server_doc(doc)
bundle = bundle_resources(doc.roots, Resources(mode="server"))
plots = sum(isinstance(m, Plot) for m in doc.models)
print(json.dumps({"matplotlib": "matplotlib" in sys.modules, "js": [str(f) for f in bundle.js_files], "plots": plots}))
"""
    files = ["--world", viewer_files["world"], "--obs", viewer_files["obs"], "--analysis", viewer_files["analysis"]]
    out = subprocess.run([sys.executable, "-c", script, *map(str, files)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["plots"] == 3  # map, profile, time series: the page is complete
    assert not result["matplotlib"]
    assert any("bokeh.min.js" in f for f in result["js"])
    assert not any("mathjax" in f for f in result["js"]), result["js"]


def test_observation_job_generates_a_profile_file(store, tmp_path):
    runner = JobRunner(store)
    out = tmp_path / "osse.nc"
    job = runner.observe(out, "osse denial", (2001, 2001), deny=("argo", "xbt", "sst"))
    assert job.wait(120) and job.status == "done", job.message
    assert "osse denial" in store.names("observations") and job.done == job.total == 73
    table, _ = store.observations("osse denial")
    assert set(table["platform"].astype(str)) == {"ctd", "mooring"}
    assert pd.DatetimeIndex(table["time"]).year.unique().tolist() == [2001]


def test_basemap_outlines_are_the_projected_natural_earth_land():
    from matplotlib.path import Path as MplPath

    from viewer.plots import basemap, projected_outlines, x_of

    load_backends("bokeh")
    x, y = projected_outlines("land")
    assert np.nanmin(x) >= -180.0 and np.nanmax(x) <= 180.0 and np.nanmax(np.abs(y)) <= 90.0
    breaks = np.flatnonzero(np.isnan(x))
    rings = np.split(np.column_stack([x, y]), breaks)
    rings = [r[~np.isnan(r[:, 0])] for r in rings]
    assert len(rings) > 50  # continents and islands, each its own ring

    def on_land(lon: float, lat: float) -> bool:
        return any(MplPath(r).contains_point((x_of(lon), lat)) for r in rings)

    assert on_land(134.0, -25.0) and on_land(15.0, 20.0) and on_land(260.0, 40.0)  # Australia, Sahara, USA
    assert not on_land(200.0, 0.0) and not on_land(330.0, 30.0)  # central Pacific, Atlantic
    overlay = basemap()
    assert [type(e).__name__ for e in overlay] == ["Polygons", "Path"]
    # the same land as cartopy's projection of the shipped shapefile (the export's maps)
    import cartopy.feature as cfeature
    import shapely

    from viewer.plots import cartopy_crs, map_crs

    ccrs = cartopy_crs()
    expected = 0.0
    for geometry in cfeature.NaturalEarthFeature("physical", "land", "110m").geometries():
        projected = map_crs().project_geometry(geometry, ccrs.PlateCarree())
        expected += sum(shapely.Polygon(p.exterior).area for p in getattr(projected, "geoms", [projected]))
    assert sum(shapely.Polygon(r).area for r in rings) == pytest.approx(expected, rel=1e-6)


def test_palettes_are_cmoceans_colormaps():
    import cmocean
    from matplotlib.colors import to_hex

    from viewer.plots import palette

    for name in ("thermal", "balance", "amp"):
        cmap = getattr(cmocean.cm, name)
        for n in (7, 64, 256):
            assert palette(name, n) == [to_hex(cmap(x)) for x in np.linspace(0.0, 1.0, n)]


# --- what the plots say (units, positions, warnings) -------------------------------------------


def _bokeh(obj):
    import holoviews as hv

    return hv.render(obj, backend="bokeh")


def test_explore_plots_name_positions_and_units(state):
    from bokeh.models import ColorBar, HoverTool

    from viewer.plots import depth_stretch

    state.param.update(lat=-2.5, lon=220.0)
    page = ExplorePage(state)
    root = render(page)
    assert "Point: 2.5S, 142.5W" in page.where.object  # not "-2.5N"
    tooltips = [h.tooltips for h in root.select({"type": HoverTool})]
    map_tips = next(t for t in tooltips if any(name == "lon" for name, _ in t))
    assert [name for name, _ in map_tips][:2] == ["lon", "lat"] and map_tips[2][1].endswith("degC")
    assert all(c.title and "(degC)" in c.title for c in root.select({"type": ColorBar}))
    profile = _bokeh(page.profile)
    assert profile.yaxis[0].axis_label == "depth (m)" and "2.5S, 142.5W" in profile.title.text
    assert "2.5S, 142.5W" in _bokeh(page.timeseries).title.text
    for along, name in (("lat", "latitude"), ("lon", "longitude")):
        fig = _bokeh(page.lat_section if along == "lat" else page.lon_section)
        assert fig.xaxis[0].axis_label == name and fig.yaxis[0].axis_label == "depth (m)"
        labels = set(fig.xaxis[0].major_label_overrides.values())
        assert labels & ({"30S", "30N"} if along == "lat" else {"60E", "120W"})
        # the stretched axis: the upper 500 m take half of 0-2000 m, and nothing runs below 2000 m
        assert max(fig.y_range.start, fig.y_range.end) == pytest.approx(float(depth_stretch(2000.0)))
        assert float(depth_stretch(500.0)) / float(depth_stretch(2000.0)) == pytest.approx(0.5)
        hover = next(iter(fig.select({"type": HoverTool})))
        assert hover.tooltips[-1][1].endswith("degC")


def test_trend_of_a_short_record_carries_a_warning(state):
    page = TrendsPage(state)
    render(page)
    assert page.warning.visible and "Only 1.0 years" in page.warning.object
    assert "years" in page.trend_field().attrs["warning"]
    assert "SHORT RECORD" in _bokeh(page.trend_map).title.text


def test_trends_series_match_the_engine_diagnostics(state):
    """The one-pass depth sums give the engine's layer mean, heat content and area means."""
    from engine.evaluate import diagnostics, metrics

    store = state.store
    w, mask = derive.weights(store, "truth"), derive.region(store, "truth", "pacific")
    mean = derive.layer_mean(store, "truth", (0.0, 700.0), "pacific")
    expected = diagnostics.layer_mean(store.data("truth", "absolute"), w, (0.0, 700.0), mask=mask)
    np.testing.assert_allclose(mean.values, expected.values, rtol=1e-6)
    ohc = derive.heat_content(store, "truth", (700.0, 2000.0), "pacific")
    expected = diagnostics.ocean_heat_content(store.data("truth", "anomaly"), w, (700.0, 2000.0), mask=mask)
    np.testing.assert_allclose(ohc.values, expected.values / derive.ZJ, rtol=1e-5, atol=1e-6)
    hov = derive.hovmoller(store, "truth", "pacific")
    area_mean = metrics.weighted_mean(store.data("truth", "anomaly"), w, ("lat", "lon"), mask=mask)
    expected = area_mean.resample(time="MS").mean().transpose("depth", "time")
    np.testing.assert_allclose(hov.values, expected.values, rtol=1e-5, atol=1e-7)


def test_validate_offers_only_analyses_and_shows_every_curve_whole(state):
    page = ValidatePage(state)
    render(page)
    assert list(page.analysis.options) == ["persistence"]  # the truth is not an analysis to validate
    state.dataset = "truth"
    assert "not an analysis" in page.problem()
    state.dataset = "persistence"
    fig = _bokeh(page.rmse_depth)
    top = max(float(d.max()) for d in page.rmse_profiles().values())
    assert fig.x_range.end > top * 1.02  # no curve touches the frame
    assert fig.legend[0] in fig.right  # the legend beside the curves, not over them
    page.on_score()
    shown = page.table.value
    state.truth = None
    page.on_score()
    assert page.table.value is shown  # a failed score keeps the table


def test_observations_bars_count_profiles_with_readable_ticks(state, tmp_path):
    from bokeh.models import NumeralTickFormatter

    page = ObservationsPage(state, JobRunner(state.store), upload_dir=tmp_path)
    fig = _bokeh(page.bars)
    assert isinstance(fig.yaxis[0].formatter, NumeralTickFormatter)  # 200,000 rather than 2.000e+5
    shown = set(page._bars().data["platform"])  # the legend's entries
    assert shown and not shown & {"unknown", "sst", "sst (field values)"}
    platforms = page._points(value=page.window.value).data["platform"]
    assert set(platforms.cat.categories) == set(platforms)  # no legend entry for an absent platform


@pytest.mark.parametrize(
    "key", ["Explore: latitude-depth section", "Trends: time-depth (Hovmoller)", "Explore: profile"]
)
def test_exports_are_printable_and_keep_units_and_positions(state, tmp_path, key):
    import holoviews as hv
    from PIL import Image as PILImage

    from viewer.plots import depth_stretch
    from viewer.views.export import element

    state.param.update(lat=-2.5, lon=220.0)
    ExplorePage(state), TrendsPage(state)
    item = state.exports[key]
    png = export(item, "png", tmp_path)
    assert PILImage.open(png).size[0] >= 1200
    frame = pd.read_csv(export(item, "csv", tmp_path))
    assert "depth (m)" in frame.columns and any("(degC)" in c for c in frame.columns)
    if item.kind != "curves":
        figure = hv.render(element(item), backend="matplotlib")
        assert max(figure.axes[0].get_ylim()) <= float(depth_stretch(2000.0)) + 1e-9  # nothing below 2000 m
        return
    assert {"lat (degrees_north)", "lon (degrees_east)", "time"} <= set(frame.columns)
    with xr.open_dataset(export(item, "nc", tmp_path)) as ds:
        assert set(ds.data_vars) == {"persistence", "truth"}  # no "truth_truth"
        assert float(ds["lat"]) == -2.5 and "time" in ds.coords and ds["persistence"].attrs["units"] == "degC"
