"""The README's first command, run as written, on an empty cache: the dashboard comes up in
a real headless browser, usable while the embedded default is computed in the background,
and nothing it asks for leaves this machine.

Run with ``pytest -m browser``; skipped when Chromium or Playwright is missing.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("playwright")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)"),
]

from engine import io  # noqa: E402
from viewer.app import PAGES  # noqa: E402
from viewer.bench import CHROMIUM, CHROMIUM_ARGS, free_port, launch_view, stop_view, wait_http  # noqa: E402
from viewer.screenshots import show_tab  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
FIRST_START_S = 600  # a busy two-core machine; `deepda bench viewer` holds the 30 s target


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def readme_first_line() -> str:
    """The first line of the README's first code block."""
    block = README.read_text().split("```", 2)[1]
    return block.splitlines()[1]


def view_command(line: str, port: int) -> str:
    """The README line's command after its set-up (the installs, which CI has run), on ``port``.

    ``deepda`` is the installed script; where it is not on PATH, the same entry point through
    this interpreter.
    """
    steps = [s.strip() for s in line.split("#")[0].split("&&")]
    assert all(s.startswith("python3 -m pip install") for s in steps[:-1]), f"set-up is not only installs: {line}"
    command = steps[-1]
    assert command.split()[:2] == ["deepda", "view"], f"the README's first command is not 'deepda view': {line}"
    if shutil.which("deepda") is None:
        command = f"{sys.executable} -m engine.cli{command[len('deepda') :]}"
    return f"{command} --port {port}"


def test_the_readmes_first_command_serves_the_dashboard_offline(browser, tmp_path):
    cache, port = tmp_path / "cache", free_port()
    url = f"http://127.0.0.1:{port}/app"
    log = tmp_path / "view.log"
    view = launch_view(view_command(readme_first_line(), port), cache, log)
    try:
        wait_http(url, timeout=120)  # a script's poll (served a one-line page, not a session)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        outside, errors = [], []

        def route(request_route) -> None:
            request = request_route.request.url
            if request.startswith(f"http://127.0.0.1:{port}/") or request.startswith(("data:", "blob:")):
                request_route.continue_()
            else:
                outside.append(request)
                request_route.abort()

        page.route("**/*", route)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("canvas", state="attached", timeout=1000 * FIRST_START_S)
        usable = time.perf_counter() - start
        # the page is usable on the first year while the rest is computed, with one progress
        banner = page.get_by_text(re.compile(r"^Computing the embedded default")).first
        banner.wait_for(timeout=10_000)
        assert "% done" in banner.inner_text() and "first year" in banner.inner_text()
        for name in PAGES:  # every page, on what is there so far
            show_tab(page, name)
        assert not outside, f"requests left the machine: {outside}"
        assert not errors, f"console errors: {errors}"
        # computed by `deepda view` itself, in the cache it was given
        assert "world" in io.default_files(cache / io.first_start.FIRST_YEAR, io.assets_dir() / "deepda_coarse.pt")
        assert (io.first_start.read_progress(cache) or {}).get("fraction", 0) > 0
        print(f"first usable page {usable:.1f} s after opening it")
    finally:
        stop_view(view)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert not io.first_start.is_locked(cache / io.first_start.LOCK)  # the computation stopped with the view
