"""Headless Chromium for the browser tests: Debian's binary, driven by Playwright."""

import contextlib
import os
import shutil
from pathlib import Path

import pytest

# Flags for a sandbox-less container with no network: nothing may phone home or need a GPU.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    """Debian's chromium; a loud skip where it is absent, a failure under CI."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}:
        pytest.fail("CI is set but chromium is missing: `apt-get install -y chromium` first")
    pytest.skip(
        "CHROMIUM MISSING: the browser tests did not run; "
        "install it with `apt-get install -y chromium chromium-driver`"
    )


@contextlib.contextmanager
def chromium():
    """A launched headless Chromium (Playwright driving the system's chromium binary)."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def render_png(browser, html: Path, png: Path) -> tuple[list[str], object]:
    """Open `html`, screenshot the full page to `png`; (console errors/warnings, page)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in {"error", "warning"} else 0)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.goto(html.as_uri(), wait_until="load")
    page.screenshot(path=str(png), full_page=True)
    return problems, page
