"""The HTML report rendered by a real headless Chromium (Debian's package) without errors."""

from pathlib import Path

import pytest

from agent.report import write_report
from tests.browser import chromium, render_png
from tests.report_support import sample_report

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    data = sample_report(folder)
    return write_report(data, "html", folder / "report.html")


def test_html_report_renders_to_png_and_pdf_without_console_errors(browser, report_html):
    png = report_html.with_suffix(".png")
    problems, page = render_png(browser, report_html, png)
    assert png.read_bytes().startswith(b"\x89PNG")
    images_ok = page.evaluate(
        "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    )
    assert images_ok, "an embedded image did not decode"
    assert page.evaluate("document.images.length") == 2 + 5  # two charts, a key frame per event
    unlinked = page.evaluate(
        """Array.from(document.querySelectorAll('article.event')).filter(a =>
             !a.querySelector('a[href*="#t="]') || !a.querySelector('a[href^="#kb-"]')
           ).map(a => a.id)"""
    )
    assert unlinked == []
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height > 2000  # the whole report, not a blank or truncated page

    page.emulate_media(media="print")
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 3
    report_html.with_suffix(".pdf").write_bytes(pdf)
    page.close()
    assert problems == []


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_missing_chromium_fails_under_ci_and_skips_loudly_elsewhere(monkeypatch, ci, outcome):
    import tests.browser as support

    monkeypatch.setattr(support.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if outcome == "failed" else pytest.skip.Exception
    with pytest.raises(expected, match="chromium" if ci else "CHROMIUM MISSING"):
        support.chromium_path()
