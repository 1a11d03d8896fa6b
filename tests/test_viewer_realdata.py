"""The dashboard on a real-data run, where no truth exists: a real Argo float (tests/data),
assimilated by OI and persistence with the same profiles withheld, and by the climatology
with none withheld. Pages are built and their callbacks driven in Python."""

from __future__ import annotations

import shutil
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
from bokeh.document import Document
from bokeh.models import DatetimeAxis

from engine import cli, io
from engine.realdata import departure_blocks, observation_space_tables, withheld_scores
from viewer import obs_space
from viewer.app import PAGES, DeepDAApp
from viewer.jobs import JobRunner
from viewer.plots import load_backends
from viewer.state import AppState
from viewer.store import DataStore
from viewer.views.export import export
from viewer.views.observations import ObservationsPage
from viewer.views.validate import ValidatePage

ARGO = Path(__file__).parent / "data" / "13858_prof.nc"  # real Argo float, 1997-1998 (see data/README.md)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    load_backends("bokeh", "matplotlib")
    folder = tmp_path_factory.mktemp("realdata")
    obs = folder / "obs.nc"
    assert cli.main(["observe", "--read", str(ARGO), "--out", str(obs)]) == 0
    files = {"obs": obs}
    for method, withhold in (
        ("oi", ["--withhold", "0.3"]),
        ("persistence", ["--withhold", "0.3"]),
        ("climatology", []),
    ):
        out = folder / f"{method}.nc"
        argv = ["assimilate", "--method", method, "--obs", str(obs), "--period", "1998", *withhold, "--out", str(out)]
        assert cli.main(argv) == 0
        files[method] = out
    return files


@pytest.fixture
def state(run) -> AppState:
    store = DataStore()
    for method in ("oi", "persistence", "climatology"):
        store.add(run[method], "analysis")
    store.add(run["obs"], "observations")
    return AppState(store)


def computed(page: ValidatePage) -> ValidatePage:
    """The page once its background tasks are done and polled."""
    for key in page.observed.keys():
        page.store.wait(key, 120)
    page.poll()
    return page


def test_validate_without_a_truth_shows_the_engines_tables(state, run):
    page = ValidatePage(state)
    page.panel().get_root(Document())  # every plot drawn, the truth's ones empty
    # drawn before the statistics arrive, and the first frame fixes the axis: it must be dates
    assert isinstance(hv.render(page.observed.time_plot).xaxis[0], DatetimeAxis)
    assert state.truth is None and state.dataset == "oi" and "truth" in page.problem()
    observed = computed(page).observed
    engine = observation_space_tables(run["oi"], run["obs"], obs_space.config_for(state.store, "oi"))
    assert set(observed.space().tables) == set(engine) == {"depth", "platform", "region", "year"}
    for by, table in engine.items():
        pd.testing.assert_frame_equal(observed.space().tables[by], table)
    pd.testing.assert_frame_equal(observed.table.value, engine["depth"].reset_index().round(4))
    observed.grouping.value = "platform"
    assert list(observed.table.value["platform"]) == ["argo"]
    np.testing.assert_allclose(observed.table.value["omb_rmse"], engine["platform"]["omb_rmse"].round(4))
    curves = observed.by_depth()
    np.testing.assert_allclose(curves["O-B RMSE"].values, engine["depth"]["omb_rmse"].to_numpy())
    np.testing.assert_allclose(curves["O-A mean"].values, engine["depth"]["oma_mean"].to_numpy())
    assert float(curves["O-A RMSE"].mean()) < float(curves["O-B RMSE"].mean())  # the analysis drew to them
    monthly = observed.over_time()["O-B RMSE"]
    assert monthly["time"].dtype == "datetime64[ns]"  # drawn as dates
    assert monthly.sizes["time"] > 6 and observed.space().monthly["count"].sum() == engine["year"]["count"].sum()
    assert not observed.ratio()  # one member: no background spread, so no innovation-variance ratio
    assert "needs an ensemble" in observed.note.object
    assert set(observed.errors()) == {"Desroziers error", "stated error"}


def test_innovation_map_has_the_observed_cells(state, run):
    observed = computed(ValidatePage(state)).observed
    config = obs_space.config_for(state.store, "oi")
    blocks, _, grid = departure_blocks(run["oi"], run["obs"], config)
    deps = pd.concat(list(blocks))
    k = int(deps["k"].value_counts().index[0])
    state.depth_index = k
    field = observed.innovation_map()
    at_k = deps[deps["k"] == k]
    assert set(zip(*np.nonzero(np.isfinite(field["innovation"].values)), strict=True)) == set(
        zip(at_k["iy"], at_k["ix"], strict=True)
    )
    assert int(field["count"].sum()) == len(at_k)
    mean = np.nansum(field["innovation"].values * field["count"].values) / len(at_k)
    assert mean == pytest.approx(float(observed.space().tables["depth"]["omb_mean"].loc[grid.depth[k]]), abs=1e-9)
    observed.which.value = "O-A"
    assert not np.allclose(np.nan_to_num(observed.innovation_field().values), np.nan_to_num(field["innovation"].values))
    observed.year.value = "1998"
    assert int(observed.innovation_map()["count"].sum()) == len(at_k)  # every observation is in 1998


def test_withheld_scores_appear_per_method(state, run):
    observed = computed(ValidatePage(state)).observed
    config = obs_space.config_for(state.store, "oi")
    withheld = run["oi"].with_name("oi.withheld.nc")
    expected = withheld_scores({"oi": run["oi"], "persistence": run["persistence"]}, withheld, config)
    table = observed.withheld_table.value.set_index("method")
    assert list(table.index) == ["oi", "climatology", "persistence", "observations"]  # not the run that saw them
    np.testing.assert_allclose(table.to_numpy(), expected.round(4).to_numpy())
    profiles = observed.withheld_profiles()
    assert set(profiles) == {"oi", "persistence", "climatology"}
    assert float(profiles["oi"].mean()) < float(profiles["climatology"].mean())
    assert "oi.withheld.nc" in observed.withheld_note.object
    state.dataset = "climatology"  # assimilated everything: nothing withheld to score it on
    assert "No withheld profiles" in computed(ValidatePage(state)).observed.withheld_note.object


def test_no_page_needs_a_truth(state, tmp_path):
    state.store.ready = True
    app = DeepDAApp(state.store, JobRunner(state.store), tmp_path / "runs")
    app.poll()
    for name in PAGES:
        app.page(name)
        app.containers[name].get_root(Document())
    s = app.state
    explore = app.pages["Explore"]
    explore.tap.event(x=-20.0, y=2.0)
    assert list(explore.profiles()) == ["oi"] and list(explore.series()) == ["oi"]
    assert list(app.pages["Trends"].layer_means()) == ["oi"]
    computed(app.pages["Validate"])
    for key, item in s.exports.items():
        try:
            path = export(item, "csv", tmp_path / "exports")
        except ValueError as err:  # only the views against the truth, each saying why
            assert key.startswith("Validate: error map") and "truth" in str(err)
            continue
        assert path.exists()
    assert (tmp_path / "exports" / "validate_innovation_map.csv").exists()


def test_observations_page_reads_a_folder_with_per_file_qc(state, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPDA_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "argo"
    (folder / "more").mkdir(parents=True)
    shutil.copy(ARGO, folder / "13858_prof.nc")
    shutil.copy(ARGO, folder / "more" / "copy_prof.nc")  # the same profiles again: duplicates
    table, _ = io.open_observations(ARGO)
    table.head(40)[["time", "lat", "lon", "depth", "temperature", "platform"]].to_csv(folder / "few.csv", index=False)
    runner = JobRunner(state.store)
    page = ObservationsPage(state, runner, upload_dir=tmp_path / "up")
    page.panel().get_root(Document())
    page.path.value = str(folder)
    page.on_load()
    assert runner.latest.wait(120) and runner.latest.status == "done", runner.latest.message
    page.poll()
    assert state.observations == "argo"
    files = page.files_table.value
    assert len(files) == 3 and set(files["file"]) == {"13858_prof.nc", "few.csv", "more/copy_prof.nc"}
    assert files["measurements"].sum() == page.qc_table.value["rows"].sum()
    copy = files.set_index("file").loc["more/copy_prof.nc"]
    assert copy["good"] == 0 and copy["QC 8"] > 0  # read twice, counted once
    assert "3 files read" in page.files_note.object
    page.path.value = f"{folder}/*_prof.nc {folder / 'few.csv'}"  # a pattern and a file
    page.on_load()
    assert runner.latest.wait(120) and runner.latest.status == "done"
    page.poll()
    assert len(page.files_table.value) == 2 and state.observations == "argo_prof_and_1_more"
    page.path.value = str(folder / "nothing*.nc")
    page.on_load()
    assert "Could not load" in page.status.object and "matches no file" in page.status.object
