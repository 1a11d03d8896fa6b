"""The served dashboard in a real headless browser (Debian's Chromium through pytest-playwright).

Run with ``pytest -m browser``; skipped when Chromium or Playwright is missing. Never run
``playwright install``: the launch fixture points Playwright at ``/usr/bin/chromium``.
"""

from __future__ import annotations

import re
import shutil

import pytest

pytest.importorskip("playwright")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)"),
]

from playwright.sync_api import expect  # noqa: E402

from viewer.app import PAGES  # noqa: E402
from viewer.bench import CHROMIUM, CHROMIUM_ARGS, free_port, sample_data, serve, wait_http  # noqa: E402
from viewer.screenshots import open_app, pixel_std, show_tab  # noqa: E402


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser_data")
    files = sample_data(folder)
    port = free_port()
    server = serve(files, port, cache=folder / "cache", log=folder / "server.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/static/js/bokeh.min.js", timeout=90)
        yield f"http://127.0.0.1:{port}/app"
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture
def app(browser, app_url):
    page = open_app(browser, app_url)
    yield page
    page.close()


def canvas_png(page, index: int) -> bytes:
    """Screenshot of one plot canvas (0: the Explore map, 2: the profile)."""
    return page.locator("canvas").nth(index).screenshot()


def test_explore_map_depth_slider_and_tap(app):
    map_before = canvas_png(app, 0)
    assert pixel_std(map_before) > 20  # a coloured map, not a blank canvas
    # move the depth slider with the keyboard: the map image changes
    handle = app.locator(".noUi-handle").first
    handle.focus()
    for _ in range(6):
        handle.press("ArrowRight")
    app.wait_for_timeout(2500)
    map_after = canvas_png(app, 0)
    assert map_after != map_before
    # tap the map: the point moves and the profile is redrawn
    point = app.get_by_text(re.compile(r"^Point:")).first
    where, profile = point.inner_text(), canvas_png(app, 2)
    box = app.locator("canvas").first.bounding_box()
    app.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + 0.6 * box["height"])
    expect(point).not_to_have_text(where, timeout=15_000)
    app.wait_for_timeout(1500)
    assert canvas_png(app, 2) != profile


def test_assimilation_runs_from_the_page(app):
    show_tab(app, "Assimilate")
    method = app.locator("select").filter(has=app.locator("option", has_text="Climatology")).first
    method.select_option(label="Climatology")
    app.get_by_role("button", name="Run").click()
    status = app.get_by_text(re.compile(r"^assimilation '"))
    expect(status).to_contain_text("': done", timeout=90_000)
    expect(status).to_contain_text("73/73 steps")
    show_tab(app, "Explore")
    options = app.locator("select").first.locator("option").all_inner_texts()
    assert any(o.startswith("climatology_2000-2000") for o in options)


def test_every_page_renders(app):
    for name in PAGES:
        show_tab(app, name)
        if name not in ("Assimilate", "Export"):  # the pages with plots
            assert app.locator("canvas").count() > 0, f"{name} has no plot"
        body = app.screenshot(clip={"x": 0, "y": 110, "width": 1500, "height": 850})  # below the header
        assert pixel_std(body) > 15, f"{name} looks blank"
