"""The dashboard's first start and what the user sees of it: the embedded default followed
while it is computed (first year first, one progress with the time left), bad input on the
page, progress as plain lines where no terminal is, and the pure progress helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine import io
from engine.cli import main
from engine.osse import default_plan, default_stages
from engine.progress import Eta, Stages, format_duration
from viewer.app import PAGES, DeepDAApp, from_browser, parse_args, setup_store
from viewer.bench import sample_data
from viewer.jobs import JobRunner, follow_default
from viewer.plots import load_backends
from viewer.store import DataStore

MODEL = io.assets_dir() / "deepda_coarse.pt"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    load_backends("bokeh")
    return sample_data(tmp_path_factory.mktemp("first_start_data"))


def linked(files: dict[str, Path], folder: Path) -> dict[str, Path]:
    """The same files under other paths (hard links, else copies)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, path in files.items():
        out[key] = folder / path.name
        try:
            os.link(path, out[key])
        except OSError:
            shutil.copy(path, out[key])
    return out


# --- progress helpers --------------------------------------------------------------------------


def test_stages_make_one_progress_that_never_goes_back():
    stages = Stages({"truth": 1.0, "observations": 1.0, "analysis": 2.0})
    assert stages.overall("truth", 0.5) == pytest.approx(0.125)
    assert stages.overall("analysis", 0.5) == pytest.approx(0.75)  # the stages before count as done
    assert stages.overall("observations", 0.0) == pytest.approx(0.75)  # never backwards
    with pytest.raises(KeyError):
        stages.overall("training", 0.1)
    # the embedded default: the first year's three stages first, the 40 years' last
    plan = default_plan(__import__("engine.config").config.preset("coarse"), first_year=True)
    assert [label for label, _ in plan] == ["first year 1981", "1981-2020"]
    names = default_stages(plan).names
    assert names[:3] == ["truth first year 1981", "observations first year 1981", "analysis first year 1981"]
    assert names[-1] == "analysis 1981-2020"
    assert default_stages(plan).share["analysis 1981-2020"] > 0.7  # the analysis is most of the time


def test_eta_goes_by_the_rate_since_the_first_report():
    now = [100.0]
    eta = Eta(clock=lambda: now[0])
    assert eta.left(0.5) is None  # the baseline: half of it was found done, not done now
    now[0] += 10.0
    assert eta.left(0.6) == pytest.approx(40.0)  # 10 % in 10 s: 40 % in 40 s
    assert eta.left(1.0) == 0.0
    assert format_duration(45) == "45 s" and format_duration(600) == "10 min"
    assert format_duration(3900) == "1 h 05 min"


def test_long_verbs_print_progress_lines_into_a_pipe(tmp_path):
    out = tmp_path / "world.nc"
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "world", "--run", "control", "--years", "6", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("world control:")]
    assert len(lines) >= 2, result.stderr  # more than the end: progress on the way
    assert lines[-1].startswith("world control: 438/438 step (100 %)")
    assert "\r" not in result.stderr  # lines, not a redrawn bar


# --- following the first start ------------------------------------------------------------------


def test_the_dashboard_shows_the_first_year_while_the_rest_is_computed(files, tmp_path, monkeypatch):
    """The follower registers the first year's files one by one as the computing process
    records them, says how far it is and the time left, and at the end points the same names
    at the whole period's files."""
    import viewer.jobs

    monkeypatch.setattr(viewer.jobs, "FOLLOW_S", 0.05)
    cache = tmp_path / "cache"
    first = linked(files, cache / io.first_start.FIRST_YEAR)
    full = linked(files, cache / "full")
    started = []
    store = DataStore()
    app = DeepDAApp(store, JobRunner(store), out_dir=tmp_path)
    with io.first_start.exclusive_lock(cache / io.first_start.LOCK):  # as the computing process holds it
        thread = follow_default(store, cache, start=started.append)
        assert started == [cache] and thread is not None
        app.poll()
        assert not app.containers and app.progress.visible  # nothing to show yet: the page waits
        entry = {"stage": "observations first year 1981", "fraction": 0.02, "seconds_left": 700.0}
        io.first_start.write_progress(cache, entry)
        io.write_default_manifest(first["world"].parent, {"world": first["world"]}, MODEL)
        wait_for(lambda: store.names("truth") == ["truth"])
        wait_for(lambda: "12 min left" in store.status)
        app.poll()
        assert list(app.pages) == ["Explore"] and len(app.tabs) == len(PAGES)  # usable on the truth alone
        assert "2 % done" in app.banner.object and "now: observations first year 1981" in app.banner.object
        assert app.progress.visible and app.progress.value == 2
        io.write_default_manifest(first["world"].parent, first, MODEL)
        wait_for(lambda: store.names("analysis") == ["deepda"])
        assert store.source("deepda").path == first["analysis"].resolve()
        io.write_default_manifest(cache, full, MODEL)  # the whole period is done
        thread.join(10)
    assert not thread.is_alive() and store.status == "" and not store.error
    assert {store.source(n).path for n in ("truth", "observations", "deepda")} == {p.resolve() for p in full.values()}
    app.poll()
    assert not app.banner.visible and not app.progress.visible
    app.tabs.active = PAGES.index("Export")  # builds every page to offer all views
    assert set(app.pages) == set(PAGES)


def test_a_stopped_or_failed_computation_is_said_on_the_page(tmp_path, monkeypatch):
    import viewer.jobs

    monkeypatch.setattr(viewer.jobs, "FOLLOW_S", 0.05)
    monkeypatch.setattr(viewer.jobs, "DEAD_AFTER_S", 0.2)
    store = DataStore()
    follow_default(store, tmp_path / "a", start=lambda cache: None).join(10)  # nobody computes
    assert "stopped" in store.error and "restart 'deepda view'" in store.error
    store = DataStore()
    io.first_start.write_progress(tmp_path / "b", {"error": "OSError: disk full"})
    follow_default(store, tmp_path / "b", start=lambda cache: None).join(10)
    assert "failed: OSError: disk full" in store.error


def test_later_starts_find_the_default_without_computing(files, tmp_path):
    """Once computed, the default is registered at once from the cache's manifest (no
    process, no thread, no checkpoint loading); a changed checkpoint makes it computed again."""
    assert io.cached_default(tmp_path, MODEL) is None  # nothing there yet
    io.write_default_manifest(tmp_path, files, MODEL)
    assert io.cached_default(tmp_path, MODEL) == files

    def no_compute(cache: Path) -> None:
        raise AssertionError("the cached default was computed again")

    store = DataStore()
    assert follow_default(store, tmp_path, start=no_compute) is None
    assert store.ready and store.names("analysis") == ["deepda"] and store.names("truth") == ["truth"]
    copy = tmp_path / "model.pt"  # the same checkpoint with another time stamp: not current
    copy.write_bytes(MODEL.read_bytes())
    os.utime(copy, (1.0, 1.0))
    assert io.cached_default(tmp_path, copy) is None


def wait_for(condition, timeout: float = 10.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError("timed out")


def test_the_computing_process_runs_once(tmp_path):
    with io.first_start.exclusive_lock(tmp_path / io.first_start.LOCK) as held:
        assert held and io.first_start.is_locked(tmp_path / io.first_start.LOCK)
        with io.first_start.exclusive_lock(tmp_path / io.first_start.LOCK) as again:
            assert not again
    assert not io.first_start.is_locked(tmp_path / io.first_start.LOCK)


# --- bad input ---------------------------------------------------------------------------------


def bad_inputs(files: dict[str, Path], folder: Path) -> list[tuple[list[str], str]]:
    garbage = folder / "garbage.nc"
    garbage.write_text("not a netCDF file\n")
    return [
        (["--world", str(folder / "missing.nc")], "does not exist"),
        (["--world", str(garbage)], "is not a readable netCDF file"),
        (["--world", str(files["world"]), "--analysis", str(files["obs"])], "is an observation (profile) file"),
        (
            ["--world", str(files["world"]), "--obs", str(files["world"])],
            "is a gridded field, not observations; give it as --world or --analysis",
        ),
        (["--obs", str(files["obs"])], "--obs needs a gridded file"),
    ]


def test_bad_input_is_a_message_on_the_page(files, tmp_path):
    for argv, expected in bad_inputs(files, tmp_path):
        store = DataStore()
        setup_store(store, parse_args(argv))
        app = DeepDAApp(store, JobRunner(store), out_dir=tmp_path)
        assert app.banner.visible and expected in app.banner.object, (argv, app.banner.object)
        assert "Cannot show the data" in app.banner.object and not app.containers
        flag = argv[-2] if expected != "--obs needs a gridded file" else "--obs"
        assert flag in app.banner.object  # the option to fix is named


def test_bad_input_to_deepda_view_is_one_line_and_exit_2(files, tmp_path, capsys):
    for argv, expected in bad_inputs(files, tmp_path):
        assert main(["view", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err
        assert "give it as --obs" in err or "profile" not in err


def test_parse_args_takes_the_environment(monkeypatch):
    monkeypatch.setenv("DEEPDA_ANALYSIS", f"a.nc{os.pathsep}b.nc")
    assert parse_args(["--world", "w.nc"]).analysis == ["a.nc", "b.nc"]


def test_only_browsers_get_a_session():
    assert from_browser({"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/140.0"})
    assert not from_browser({"User-Agent": "curl/8.5.0"}) and not from_browser({"User-Agent": "Python-urllib/3.11"})
    assert not from_browser(None)
