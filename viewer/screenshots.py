"""Screenshots of every dashboard page from the real, served app (for the README and the tests).

    python -m viewer.screenshots --out docs/screenshots [--data DIR]
                                 [--world W.nc --obs O.nc --analysis A.nc ...]

serves ``viewer/app.py`` on a free localhost port with small coarse-grid files (made in
``--data`` by :func:`viewer.bench.sample_data` if missing), opens it in headless Chromium
(Debian's ``/usr/bin/chromium`` through Playwright) and saves one PNG per page.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from viewer.app import PAGES
from viewer.bench import CHROMIUM, CHROMIUM_ARGS, SERIES_NOTE, free_port, sample_data, serve, wait_http

VIEWPORT = {"width": 1500, "height": 1000}
SETTLE_MS = 2500


def pixel_std(png: bytes) -> float:
    """Standard deviation of the grey levels of a PNG (about 0 for a blank page)."""
    import io

    from PIL import Image

    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype="f8").std())


def open_app(browser: Any, url: str) -> Any:
    """A new page on the app, once the first plot canvas exists."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(url)
    page.wait_for_selector("canvas", state="attached", timeout=60_000)
    page.wait_for_timeout(1500)
    return page


PLOT_PAGES = ("Explore", "Observations", "Validate", "Trends")


def show_tab(page: Any, name: str) -> None:
    """Click a page's tab and let its plots arrive over the websocket."""
    page.locator(".bk-tab", has_text=name).first.click()
    page.wait_for_timeout(1000)
    if name in PLOT_PAGES:
        page.wait_for_selector("canvas", state="attached", timeout=120_000)
    page.wait_for_timeout(SETTLE_MS)


def capture(page: Any, out_dir: Path, pages: Sequence[str] = PAGES) -> dict[str, Path]:
    """Screenshot each page (full height) into ``out_dir/<page>.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in pages:
        show_tab(page, name)
        if name == "Explore":  # a long record's time series is drawn once it is in memory
            page.get_by_text(SERIES_NOTE).first.wait_for(state="hidden", timeout=600_000)
            page.wait_for_timeout(SETTLE_MS)
        if name == "Export":  # show an export being made
            page.locator("select").first.select_option(label="Explore: map")
            page.get_by_role("button", name="Save PNG").click()
            page.wait_for_selector("img", state="attached", timeout=60_000)
            page.wait_for_timeout(1000)
        paths[name] = out_dir / f"{name.lower()}.png"
        page.screenshot(path=str(paths[name]), full_page=True)
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--data", type=Path, default=Path("/tmp/deepda_screenshot_data"))
    parser.add_argument("--world", type=Path, help="use these files instead of the sample data")
    parser.add_argument("--obs", type=Path)
    parser.add_argument("--analysis", type=Path, action="append")
    args = parser.parse_args(argv)
    if args.world and args.obs and args.analysis:
        files = {"world": args.world, "obs": args.obs, "analyses": args.analysis}
    else:
        files = sample_data(args.data)
    port = free_port()
    server = serve(files, port, cache=args.data / "cache")
    try:
        wait_http(f"http://127.0.0.1:{port}/static/js/bokeh.min.js")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = open_app(browser, f"http://127.0.0.1:{port}/app")
            page.mouse.click(*_map_point(page, 0.62, 0.45))  # a point in the eastern equatorial Pacific
            page.wait_for_timeout(1500)
            for name, path in capture(page, args.out).items():
                print(f"{name}: {path}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


def _map_point(page: Any, fx: float, fy: float) -> tuple[float, float]:
    """Screen position at fractions (fx, fy) of the first map's canvas."""
    box = page.locator("canvas").first.bounding_box()
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


if __name__ == "__main__":
    main()
