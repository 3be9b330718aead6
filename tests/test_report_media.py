"""End to end on real media: `behavior-agent report` indexes with real perception and reports."""

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli.app import app
from agent.context import Context
from agent.report import build_report, write_report
from tests.browser import chromium, render_png

pytestmark = pytest.mark.slow

THUMB_VIDEO = "gesture_thumb_up_mediapipe_samples_test_video.mp4"


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """One library for the module, so the video is indexed (perceived) once."""
    return tmp_path_factory.mktemp("report_media") / "home"


@pytest.fixture(scope="module")
def thumb_report(shared_media, library):
    events: list[dict] = []
    data = build_report(shared_media / THUMB_VIDEO, Context(home=library), progress=events.append)
    return data, events


def test_report_on_the_thumb_up_video_lists_thumbs_up_inside_the_labelled_span(
    thumb_report, manifest
):
    data, progress = thumb_report
    row = next(r for r in manifest if r["file"] == THUMB_VIDEO and r["label"] == "thumb_up")
    start_s, end_s = float(row["start_s"]), float(row["end_s"])  # 2.2–7.807 s
    step_s = 1.0 / Context().sample_fps  # times are exact to one sampling step
    thumbs = [e for e in data.events if e.label == "thumbs_up"]
    assert thumbs, [e.label for e in data.events]
    assert all(start_s - step_s <= e.start_s and e.end_s <= end_s + 1e-3 for e in thumbs)
    event = max(thumbs, key=lambda e: e.duration_s)
    assert event.duration_s >= 1.0
    assert event.key_frame and data.images[event.key_frame].startswith(b"\xff\xd8")
    entry = data.knowledge["thumbs_up"]
    assert entry.in_knowledge_base and "thumb" in entry.definition.lower()
    assert entry.confusions  # confusable classes come from the real knowledge base
    assert data.video.duration_s == pytest.approx(7.807, abs=0.05)
    assert data.provenance.index_settings["backend"] == "perception"
    assert {"perceive", "key_frames"} <= {e["stage"] for e in progress}


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.hrefs.append(attrs["href"])


def test_cli_writes_all_three_formats_reusing_the_index(
    shared_media, library, thumb_report, tmp_path, monkeypatch
):
    monkeypatch.setenv("BEHAVIOR_AGENT_HOME", str(library))
    out = tmp_path / "reports"
    result = CliRunner().invoke(
        app, ["report", str(shared_media / THUMB_VIDEO), "--format", "all", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    stem = Path(THUMB_VIDEO).stem
    written = [out / f"{stem}_report.{ext}" for ext in ("html", "md", "json")]
    assert [str(p) for p in written] == result.stdout.split()
    payload = json.loads(written[2].read_text(encoding="utf-8"))
    labels = [e["label"] for e in payload["events"]]
    assert "thumbs_up" in labels
    assert "already indexed" in result.stderr  # the module's library was reused
    page = _Anchors()
    page.feed(written[0].read_text(encoding="utf-8"))
    for event in payload["events"]:
        assert event["event_id"] in page.ids
        assert f"kb-{event['kb_id']}" in page.ids
        assert any(
            h.endswith(f"#t={event['start_s']:.1f},{event['end_s']:.1f}") for h in page.hrefs
        )
    assert "thumbs up" in written[1].read_text(encoding="utf-8").lower()


def test_cli_rejects_an_unknown_format_with_a_clear_message(shared_media, tmp_path):
    result = CliRunner().invoke(
        app, ["report", str(shared_media / THUMB_VIDEO), "--format", "pdf", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "Unknown report format 'pdf'" in str(result.exception)


@pytest.mark.browser
def test_real_report_renders_in_chromium_without_console_errors(thumb_report, tmp_path):
    data, _ = thumb_report
    html = write_report(data, "html", tmp_path / "thumb.html")
    with chromium() as browser:
        problems, page = render_png(browser, html, tmp_path / "thumb.png")
        decoded = page.evaluate(
            "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
        )
        events = page.evaluate("document.querySelectorAll('article.event').length")
    assert problems == []
    assert decoded
    assert events == len(data.events)
    assert (tmp_path / "thumb.png").stat().st_size > 50_000
