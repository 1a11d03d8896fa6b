"""Dashboard benchmarks for ``deepda bench``: each function returns a JSON-ready dict.

* :func:`bench_depth_slider` - depth-slider change to new map image, server side (the
  callback, the rasterization and the Bokeh model update), in ms.
* :func:`bench_first_page` - ``panel serve`` launch to first rendered canvas in headless
  Chromium (and to the time series, which a 40-year record draws once it is read), and a
  new session on the running server, in s; :func:`bench_default_first_page` the same on the
  embedded default when it is cached; :func:`bench_first_start` ``deepda view`` on an empty
  cache to the first usable page, while the default is computed (target 30 s).
* :func:`sample_data` - the small coarse-grid files both use (and the tests).
"""

from __future__ import annotations

import compileall
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking"]
APP = Path(__file__).resolve().parent / "app.py"
SERIES_NOTE = "into memory for the time series"  # shown by the Explore page while it reads a long record


def sample_data(
    folder: Path, period: tuple[int, int] = (2000, 2000), members: int = 2, preset: str = "coarse"
) -> dict[str, Path]:
    """Historical world, its OSSE observations and a persistence analysis (``members``) on a preset grid.

    Files already in ``folder`` are reused. Returns {"world", "obs", "analysis"}.
    """
    from engine import io
    from engine.config import preset as preset_config
    from engine.da.reanalysis import assimilate_to_file
    from engine.osse import historical_world, write_osse_observations

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"world": folder / "world.nc", "obs": folder / "obs.nc", "analysis": folder / "analysis_persistence.nc"}
    config = preset_config(preset)
    grid = io.load_grid(config.grid)
    world = historical_world(config, grid, period)
    if not paths["world"].exists():
        io.write_world(world, paths["world"])
    if not paths["obs"].exists():
        write_osse_observations(world, config, paths["obs"])
    if not paths["analysis"].exists():
        assimilate_to_file("persistence", paths["obs"], paths["analysis"], preset, period, members)
    return paths


def _explore(paths: dict[str, Path]) -> tuple[Any, Any, Any]:
    """An Explore page on ``paths`` rendered into a Bokeh document; (state, page, image source)."""
    from bokeh.document import Document
    from bokeh.models import GlyphRenderer, Image

    from viewer.plots import load_backends
    from viewer.state import AppState
    from viewer.store import DataStore
    from viewer.views.explore import ExplorePage

    load_backends("bokeh")
    store = DataStore()
    if "analysis" in paths:
        store.add(paths["analysis"], "analysis")
    store.add(paths["world"], "truth")
    state = AppState(store)
    page = ExplorePage(state)
    root = page.panel().get_root(Document())
    renderers = [r for r in root.select({"type": GlyphRenderer}) if isinstance(r.glyph, Image)]
    return state, page, renderers[0].data_source


def bench_depth_slider(paths: dict[str, Path], repeats: int = 15, label: str = "coarse") -> dict[str, Any]:
    """Time from a depth change to the new image in the Bokeh model (ms), data in memory."""
    state, _, source = _explore(paths)
    n_depth = len(state.store.depths(state.dataset))
    state.store.data(state.dataset, state.variable)  # what the app preloads after the first page
    times = []
    for k in range(repeats):
        before = source.data["image"][0]
        start = time.perf_counter()
        state.depth_index = (state.depth_index + 1 + k % 3) % n_depth
        times.append(1000.0 * (time.perf_counter() - start))
        if source.data["image"][0] is before:
            raise RuntimeError("the depth change did not update the map image")
    shape = state.store.fields(state.dataset)["thetao"].shape
    return {
        "case": f"viewer_depth_slider_{label}",
        "grid": list(shape[1:]),
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(float(np.percentile(times, 90)), 1),
        "target_ms": 150 if label == "coarse" else 300,
        "repeats": repeats,
    }


def paper_data(folder: Path, n_steps: int = 6) -> dict[str, Path]:
    """A few steps of the historical world on the 1 degree, 38-level paper grid (truth only)."""
    from engine import io
    from engine.config import preset as preset_config
    from engine.world.synthetic import ModelWorld

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "world_paper.nc"
    if not path.exists():
        config = preset_config("paper")
        grid = io.load_grid(config.grid)
        world = ModelWorld(grid, config.world, run="historical", n_steps=n_steps, start_year=2000, oni=io.read_oni())
        io.write_world(world, path, chunk_steps=2)
    return {"world": path}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(paths: dict[str, Path], port: int, cache: Path | None = None, log: Path | None = None) -> subprocess.Popen:
    """``panel serve viewer/app.py`` on localhost with explicit files (the caller stops it).

    ``paths``: "world" (optional: real data have none), "obs" and "analysis" (or a list
    under "analyses"); ``log`` receives the server's output (default: discarded).
    """
    args = ["--world", str(paths["world"])] if paths.get("world") else []
    args += ["--obs", str(paths["obs"])]
    for analysis in paths["analyses"] if "analyses" in paths else [paths["analysis"]]:
        args += ["--analysis", str(analysis)]
    if cache is not None:
        args += ["--cache", str(cache)]
    # launched as ``deepda view`` does, without --warm: a warm-up session would only run
    # before the first one (same imports, one more build) and delay the first page by ~1 s
    command = [sys.executable, "-m", "panel", "serve", str(APP), "--address", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--allow-websocket-origin", f"127.0.0.1:{port}", "--args", *args]
    output = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it open
    return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=os.environ.copy())


def launch_view(command: str | list[str], cache: Path, log: Path | None = None) -> subprocess.Popen:
    """Run a ``deepda view`` command line (a shell line or an argument list) on ``cache`` as
    ``$DEEPDA_CACHE``, in its own process group (:func:`stop_view` stops all of it). The
    viewer and engine of this checkout come first on the path, as for the tests."""
    root = str(APP.parent.parent)
    env = {**os.environ, "DEEPDA_CACHE": str(cache)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    output = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it open
    return subprocess.Popen(
        command, shell=isinstance(command, str), env=env, cwd=root, start_new_session=True,
        stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def stop_view(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """Ctrl-C to a :func:`launch_view` process group (the computation keeps its finished
    steps), then SIGKILL to what is left of it."""
    import signal

    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def folder_mb(folder: Path) -> float:
    """Size of the files under ``folder`` in MB."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def wait_http(url: str, timeout: float = 60.0, poll_s: float = 0.02) -> float:
    """Seconds until ``url`` answers 200 (asked every ``poll_s``)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(poll_s)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def _first_canvas(page: Any, url: str, timeout_s: float = 60.0) -> float:
    """Seconds from opening ``url`` in ``page`` (a tab already open) to its first canvas."""
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("canvas", state="attached", timeout=1000 * timeout_s)
    return time.perf_counter() - start


def _launch(browser: Any, paths: dict[str, Path], new_sessions: int) -> dict[str, Any]:
    """One server launch: seconds to ready, to the first page's canvas (from the launch and
    from the request), and for each of ``new_sessions`` later sessions."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/app"
    tab = browser.new_page(viewport={"width": 1500, "height": 1000})
    time.sleep(1.0)  # an idle browser with a tab open, as the user's is
    start = time.perf_counter()
    server = serve(paths, port)
    try:
        ready = wait_http(f"http://127.0.0.1:{port}/static/js/bokeh.min.js")
        first = _first_canvas(tab, url)
        launch_to_page = time.perf_counter() - start
        # a long record's time series is drawn once it is in memory (the page says so meanwhile)
        tab.get_by_text(SERIES_NOTE).first.wait_for(state="hidden", timeout=300_000)
        launch_to_series = time.perf_counter() - start
        later = []
        for _ in range(new_sessions):
            tab.close()
            tab = browser.new_page(viewport={"width": 1500, "height": 1000})
            later.append(_first_canvas(tab, url))
    finally:
        tab.close()
        server.terminate()
        server.wait(timeout=20)
    return {"ready": ready, "launch": launch_to_page, "series": launch_to_series, "first": first, "later": later}


def bench_first_page(paths: dict[str, Path], launches: int = 3, new_sessions: int = 3) -> dict[str, Any]:
    """Server launch to first rendered page (the median of ``launches`` launches), and new
    sessions on a running server (data cached). The browser and a tab are open before each
    launch, as the user's are: their own start-up is not the server's time."""
    from playwright.sync_api import sync_playwright

    # Python writes the bytecode of the modules it imports on first use; the sandboxes this
    # runs in may forbid it (PYTHONDONTWRITEBYTECODE), which would time a first start ever
    for package in ("viewer", "engine"):
        compileall.compile_dir(APP.parent.parent / package, quiet=1)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            runs = [_launch(browser, paths, new_sessions) for _ in range(launches)]
        finally:
            browser.close()
    later = [t for run in runs for t in run["later"]]
    return {
        "case": "viewer_first_page",
        "launches": launches,
        "server_ready_s": round(statistics.median(r["ready"] for r in runs), 2),
        "launch_to_first_page_s": round(statistics.median(r["launch"] for r in runs), 2),
        "launch_to_first_page_each_s": [round(r["launch"], 2) for r in runs],
        "first_session_s": round(statistics.median(r["first"] for r in runs), 2),
        "launch_to_time_series_s": round(statistics.median(r["series"] for r in runs), 2),
        "new_session_median_s": round(statistics.median(later), 2) if later else None,
        "target_s": 3.0,
    }


def bench_first_start(timeout_s: float = 600.0) -> dict[str, Any]:
    """``deepda view`` on an empty cache: seconds from the launch to the first usable page
    (the Explore map drawn in headless Chromium, the browser open before), while the
    embedded default is computed in the background; and where that computation is then."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from engine import io

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        cache, port = Path(tmp) / "cache", free_port()
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 1000})
        start = time.perf_counter()
        view = launch_view([sys.executable, "-m", "engine.cli", "view", "--port", str(port)], cache)
        try:
            url = f"http://127.0.0.1:{port}/app"
            wait_http(url, timeout=timeout_s)
            _first_canvas(tab, url, timeout_s)
            usable = time.perf_counter() - start
            progress = io.first_start.read_progress(cache) or {}
        finally:
            stop_view(view)
            browser.close()
        return {
            "case": "viewer_first_start",
            "description": "first start on an empty cache: launch to first usable page",
            "launch_to_first_usable_page_s": round(usable, 2),
            "computing_then": progress.get("stage"),
            "computed_fraction_then": round(float(progress.get("fraction", 0.0)), 4),
            "cache_mb_then": round(folder_mb(cache), 1),
            "target_s": 30.0,
        }


def run(folder: Path, paper: bool = False, browser: bool = True) -> list[dict[str, Any]]:
    """Every dashboard case on the sample data in ``folder`` (what ``deepda bench`` registers).

    ``paper`` adds the depth slider on a few steps of the 1 degree, 38-level grid (writes
    about 0.2 GB); ``browser`` the first-page timing (needs Chromium and Playwright).
    """
    data = sample_data(folder / "coarse")
    results = [bench_depth_slider(data)]
    if paper:
        results.append(bench_depth_slider(paper_data(folder / "paper"), label="paper"))
    if browser and Path(CHROMIUM).exists():
        results.append(bench_first_page(data))
        results.append(bench_default_first_page())
        results.append(bench_first_start())
    return results


def bench_default_first_page() -> dict[str, Any]:
    """:func:`bench_first_page` on the embedded default (40 years) when ``deepda view`` has
    computed it into the cache (``$DEEPDA_CACHE``); it is never computed here."""
    from engine import io

    found = io.cached_default(io.cache_dir(), io.shipped_model())
    if found is None:
        return {
            "case": "viewer_first_page_default",
            "skipped": f"no embedded default in {io.cache_dir()}: run deepda view once",
        }
    return {**bench_first_page(found), "case": "viewer_first_page_default"}


def main() -> None:
    """``python -m viewer.bench [--paper] [--no-browser]``: the results as JSON on stdout
    (``deepda bench viewer`` runs this in a subprocess: the engine never imports the viewer)."""
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--paper", action="store_true")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp), paper=args.paper, browser=not args.no_browser)))


if __name__ == "__main__":
    main()
