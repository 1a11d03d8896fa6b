"""The DeepDA dashboard: ``deepda view`` (``panel serve`` on this file, on localhost).

Data come from explicit files (checked; a bad one is a message on the page)::

    deepda view --world W.nc --obs O.nc --analysis A.nc [--analysis B.nc]

which serves this file with ``--args --world W.nc ...``, or from the environment
(``DEEPDA_WORLD``, ``DEEPDA_OBS``, ``DEEPDA_ANALYSIS`` with several paths joined by
``os.pathsep``); with neither, the embedded default (coarse historical world 1981-2020, its
OSSE observations and the shipped model's reanalysis) is found in ``--cache`` (default
``$DEEPDA_CACHE`` or ``~/.cache/deepda``), or, on the first start, followed while
``deepda demo --data-only`` computes it in its own process (started by ``deepda view``, or
by the first session when served otherwise): its first year as soon as it is there, one
progress bar with the time left, the whole period when done.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import panel as pn

from engine import io
from viewer.jobs import JobRunner, follow_default, get_runner
from viewer.plots import load_backends
from viewer.state import AppState
from viewer.store import DataStore, configure, get_store, memo

POLL_MS = 500
HEADER_COLOR = "#0b3d5c"
PAGES = ("Explore", "Observations", "Assimilate", "Validate", "Trends", "Export")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line arguments after ``--args`` (environment variables fill what is missing)."""
    parser = argparse.ArgumentParser(prog="viewer/app.py", description="DeepDA dashboard")
    parser.add_argument("--world", default=os.environ.get("DEEPDA_WORLD"), help="truth (model world) netCDF")
    parser.add_argument("--obs", default=os.environ.get("DEEPDA_OBS"), help="observation (profile) file")
    env_analyses = [p for p in os.environ.get("DEEPDA_ANALYSIS", "").split(os.pathsep) if p]
    parser.add_argument("--analysis", action="append", default=None, help="analysis netCDF (repeatable)")
    parser.add_argument("--cache", default=None, help="cache folder for the embedded default and the runs")
    parser.add_argument(
        "--no-start", action="store_true", help="follow the first start's computation, started by deepda view"
    )
    args = parser.parse_args(list(argv))
    args.analysis = args.analysis or env_analyses
    return args


def setup_store(store: DataStore, args: argparse.Namespace) -> threading.Thread | None:
    """Register the explicit files, else follow the default (in the background while it is
    computed). A bad file is put in ``store.error``, shown on the page, not raised: an
    exception in a served app leaves a blank page."""
    try:
        if configure(store, args.world, args.obs, args.analysis):
            store.ready = True
            return None
    except io.InputError as err:
        store.error = f"Cannot show the data: {err}"
        return None
    start = (lambda cache: None) if args.no_start else None
    return follow_default(store, Path(args.cache) if args.cache else None, start)


def server_store(args: argparse.Namespace) -> DataStore:
    """The per-process store, set up once (:func:`setup_store`)."""
    store = get_store()
    memo(("configured",), lambda: setup_store(store, args))
    return store


def preload(store: DataStore, dataset: str | None, truth: str | None) -> threading.Thread:
    """In the background: load the shown datasets into memory (taps and series are then
    instant) and compute the statistics the Validate and Trends pages open with.

    The work holds the GIL for about a second on the coarse grid, so the app starts it only
    once the first page is on screen (:meth:`DeepDAApp.build_pages`).
    """

    def run() -> None:
        for name in [n for n in (dataset, truth) if n]:
            try:
                for variable in store.variables(name)[:2]:
                    if store.in_memory(name, variable):
                        store.data(name, variable)
            except Exception:  # noqa: BLE001 - preloading is an optimisation only
                continue
        from viewer import derive

        derive.warm(store, dataset, truth)

    thread = threading.Thread(target=run, name="deepda-preload", daemon=True)
    thread.start()
    return thread


class DeepDAApp:
    """One session: the state, the six pages, the layout and the polling of jobs and data."""

    def __init__(self, store: DataStore, runner: JobRunner, out_dir: Path | None = None) -> None:
        self.store, self.runner, self.out_dir = store, runner, out_dir
        self.state = AppState(store)
        self.pages: dict[str, Any] = {}
        self.containers: dict[str, pn.Column] = {}
        self.banner = pn.pane.Markdown("", sizing_mode="stretch_width", visible=False)
        self.progress = pn.indicators.Progress(value=0, max=100, width=400, visible=False)
        self.tabs = pn.Tabs(dynamic=True, sizing_mode="stretch_width")
        self.tabs.param.watch(self._on_tab, "active")
        self.main = pn.Column(self.banner, self.progress, self.tabs, sizing_mode="stretch_width")
        self.poll()

    def build_pages(self) -> None:
        """Lay out the tabs (once the store has a gridded dataset); Explore is built at once,
        the other pages when first shown (the Observations page reads its whole file).

        The preloading waits for the page to be loaded in the browser (``pn.state.onload``;
        at once outside a server), so that it does not slow down the first page.
        """
        s = self.state
        self.containers = {name: pn.Column(name=name, sizing_mode="stretch_width") for name in PAGES}
        self.tabs[:] = [(name, self.containers[name]) for name in PAGES]
        self.page("Explore")
        pn.state.onload(lambda: preload(self.store, s.dataset, s.truth))

    def make_page(self, name: str) -> Any:
        """A new page object. Each page's module is imported here, when the page is first
        shown, so that the server's start-up imports only what the Explore page needs (the
        Observations page brings datashader, the Export page matplotlib and GeoViews)."""
        s = self.state
        if name == "Explore":
            from viewer.views.explore import ExplorePage

            return ExplorePage(s)
        if name == "Observations":
            from viewer.views.observations import ObservationsPage

            return ObservationsPage(s, self.runner)
        if name == "Assimilate":
            from viewer.views.assimilate import AssimilatePage

            return AssimilatePage(s, self.runner, self.out_dir)
        if name == "Validate":
            from viewer.views.validate import ValidatePage

            return ValidatePage(s)
        if name == "Trends":
            from viewer.views.trends import TrendsPage

            return TrendsPage(s)
        from viewer.views.export import ExportPage

        return ExportPage(s, self.out_dir.parent / "exports" if self.out_dir else None)  # --cache: there

    def page(self, name: str) -> Any:
        """The page called ``name``, built on first use."""
        if name not in self.pages:
            container = self.containers[name]
            container.loading = True
            try:
                self.pages[name] = self.make_page(name)
                container[:] = [self.pages[name].panel()]
            finally:
                container.loading = False
        return self.pages[name]

    def _on_tab(self, event: Any) -> None:
        if not self.containers:
            return
        name = PAGES[event.new]
        self.state.page = name

        def build() -> None:
            for other in PAGES if name == "Export" else (name,):  # Export offers the views of every page
                self.page(other)
            if name == "Export":
                self.pages["Export"].refresh()

        if name in self.pages or pn.state.curdoc is None or not pn.state.curdoc.session_context:
            build()
            return
        # a page's first build can take seconds (the Observations page reads its file): show the
        # spinner first, build at the next tick, once the browser has it
        self.containers[name][:] = [
            pn.Row(
                pn.indicators.LoadingSpinner(value=True, size=40), pn.pane.Markdown(f"**Opening the {name} page ...**")
            )
        ]  # something to see: an empty container has no height to show its loading overlay on
        pn.state.curdoc.add_next_tick_callback(build)

    def poll(self) -> None:
        """Follow background work: default-data preparation, jobs, new datasets."""
        store = self.store
        self.state.sync()
        self.banner.object = f"**{store.error}**" if store.error else store.status
        self.banner.visible = bool(self.banner.object)
        self.progress.visible = bool(store.status) and not store.error
        self.progress.value = int(100 * store.progress)
        if not self.containers and self.state.gridded() and not store.error:
            try:
                self.build_pages()
            except Exception as err:  # a file that opened but cannot be shown: say so on the page
                if not isinstance(err, io.InputError):
                    traceback.print_exc()
                self.tabs[:], self.containers = [], {}
                store.error = f"Cannot show the data: {err if isinstance(err, io.InputError) else repr(err)}"
                self.banner.object, self.banner.visible = f"**{store.error}**", True
        for name in ("Explore", "Observations", "Assimilate", "Validate"):
            if name in self.pages:
                self.pages[name].poll()

    def layout(self) -> pn.Column:
        """The served page: a title bar, the pages as tabs.

        A plain layout in Panel's Bootstrap design rather than a Panel template: a template's
        roots include an HTML model (its script area), for which Panel sends the 1.8 MB MathJax
        bundle with the page (about a fifth of a second of the first page in the browser).
        """
        title = pn.pane.Markdown(
            "DeepDA: deep-learning ocean data assimilation", margin=(0, 20), align="center",
            styles={"color": "white", "font-size": "1.5em", "font-weight": "500"},
        )  # fmt: skip
        header = pn.Row(title, styles={"background": HEADER_COLOR}, sizing_mode="stretch_width", height=64)
        return pn.Column(header, self.main, sizing_mode="stretch_width", margin=0)


def build(argv: Sequence[str] | None = None) -> DeepDAApp:
    """Set up the server's data (once) and one session's app."""
    # first, before the store's worker threads (see load_backends); the Export page loads
    # matplotlib when it first renders a PNG
    load_backends("bokeh")
    pn.extension("tabulator", design="bootstrap", sizing_mode="fixed", notifications=False)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    store = server_store(args)
    out_dir = Path(args.cache) / "runs" if args.cache else None
    return DeepDAApp(store, get_runner(store), out_dir)


def from_browser(headers: Any) -> bool:
    """Whether a request comes from a web browser; a script polling the address (curl,
    urllib) gets a one-line page instead of a whole session (about a second of CPU)."""
    return "Mozilla/" in str(dict(headers or {}).get("User-Agent", ""))


if __name__.startswith("bokeh") and not from_browser(pn.state.headers):
    pn.pane.Str("DeepDA dashboard: open this address in a web browser").servable(title="DeepDA")
elif __name__.startswith("bokeh"):  # run by `panel serve`
    _app = build()
    # polling starts once the browser has the page: Panel does not send the changes made
    # between the session's creation and the browser's connection (such as the pages added
    # when the default data become ready then), and the page would stay empty
    pn.state.onload(lambda: pn.state.add_periodic_callback(_app.poll, period=POLL_MS))
    _app.layout().servable(title="DeepDA")
