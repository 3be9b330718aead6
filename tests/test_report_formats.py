"""Each report format written and parsed back: JSON, self-contained HTML, Markdown with images."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.report import assemble_report, write_report
from agent.report.model import ReportData
from agent.state import Clip
from agent.video import probe
from tests.report_support import StubKB, detection, sample_report


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> ReportData:
    return sample_report(tmp_path_factory.mktemp("formats"), "session one.mp4")


class _Page(HTMLParser):
    """Collects ids, links, image sources, external references and event articles."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.articles: dict[str, list[str]] = {}
        self._article: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "article":
            self._article = attrs["id"]
            self.articles[self._article] = []
        if tag == "a":
            self.links.append(attrs["href"])
            if self._article:
                self.articles[self._article].append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in {"script", "link", "iframe"} and re.match(r"https?:", attrs.get("src") or ""):
            self.external.append(attrs.get("src"))
        if tag == "link" and re.match(r"https?:", attrs.get("href") or ""):
            self.external.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "article":
            self._article = None

    def handle_data(self, data):
        self.text.append(data)


def parse_html(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def test_json_report_parses_and_points_at_images_beside_it(data, tmp_path):
    path = write_report(data, "json", tmp_path / "out" / "report.json")
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["schema_version"] == 1
    assert payload["video"]["sha256"] == data.video.sha256
    assert (
        payload["video"]["url"].startswith("file://")
        and "session%20one.mp4" in payload["video"]["url"]
    )
    assert [e["event_id"] for e in payload["events"]] == [e.event_id for e in data.events]
    assert payload["timelines"] == data.timelines
    assert {t["label"] for t in payload["totals"]} == {e.label for e in data.events}
    for event in payload["events"]:
        assert (path.parent / event["key_frame"]).is_file()
        assert event["kb_id"] in payload["knowledge"]
    for chart in payload["charts"].values():
        assert (path.parent / chart).read_bytes().startswith(b"\x89PNG")
    assert "images" not in payload
    assert payload["segments"][0]["model_written"] is True
    assert payload["provenance"]["limits"]
    # The JSON round-trips into the same records (the documented schema is the model).
    again = ReportData.model_validate({**payload, "video": _without(payload["video"], "url")})
    assert again.events[0].start_s == data.events[0].start_s


def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


def test_html_report_is_self_contained_and_every_event_links_time_and_knowledge(data, tmp_path):
    path = write_report(data, "html", tmp_path / "report.html")
    assert not (tmp_path / "report_files").exists()  # nothing beside it: one file
    page = parse_html(path)
    assert page.images and all(src.startswith("data:image/") for src in page.images)
    assert page.external == []
    assert len(page.articles) == len(data.events)
    for event in data.events:
        links = page.articles[event.event_id]
        time_link = f"#t={event.start_s:.1f},{event.end_s:.1f}"
        assert any(link.startswith("file://") and link.endswith(time_link) for link in links)
        assert f"#kb-{event.kb_id}" in links
        assert f"kb-{event.kb_id}" in page.ids
    # All internal anchors resolve.
    for link in page.links:
        if link.startswith("#"):
            assert link[1:] in page.ids, link
    text = " ".join(page.text)
    assert "model-written" in text
    assert "The person smiles (call 1)." in text
    assert "not measurements of felt emotion" in text
    assert data.video.sha256 in text
    assert "@media print" in path.read_text(encoding="utf-8")


def test_markdown_report_has_structure_anchors_and_images_beside_it(data, tmp_path):
    path = write_report(data, "md", tmp_path / "r.md")
    text = path.read_text(encoding="utf-8")
    headings = re.findall(r"^(#{1,4}) (.+)$", text, flags=re.MULTILINE)
    level_one = [title for hashes, title in headings if hashes == "#"]
    level_two = [title for hashes, title in headings if hashes == "##"]
    assert level_one == ["Behavior report: session one.mp4"]
    assert level_two[:3] == ["Timeline", "Notable moments", "Totals"]
    assert "Knowledge base (appendix)" in level_two and level_two[-1] == "Provenance and limits"
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (path.parent / target).is_file(), target
    for event in data.events:
        assert f'<a id="{event.event_id}"></a>' in text
        assert f'<a id="kb-{event.kb_id}"></a>' in text
        assert f"#t={event.start_s:.1f},{event.end_s:.1f}>)" in text
        assert f"](#kb-{event.kb_id})" in text
    # Tables are well formed: each row has as many cells as its header.
    for table in re.findall(r"((?:^\|.*\|\n)+)", text, flags=re.MULTILINE):
        rows = [r for r in table.splitlines() if r.strip()]
        widths = {len(re.split(r"(?<!\\)\|", r)) for r in rows}
        assert len(widths) == 1, table
    assert "**[model-written]** The person smiles (call 1)." in text


def test_write_report_into_a_folder_uses_the_default_name(data, tmp_path):
    path = write_report(data, "md", tmp_path)
    assert path == tmp_path / "session one_report.md"
    assert (tmp_path / "session one_report_files" / "timeline.png").is_file()


def test_unknown_format_and_unwritable_target_are_user_errors(data, tmp_path):
    with pytest.raises(BehaviorAgentError, match="Unknown report format"):
        write_report(data, "pdf", tmp_path / "x.pdf")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BehaviorAgentError, match="Cannot write the report"):
        write_report(data, "html", blocker / "report.html")


@pytest.mark.slow
def test_installed_wheel_carries_the_report_templates(tmp_path):
    """A non-editable install must find the HTML/Markdown templates and the limits file."""
    import subprocess
    import sys
    import zipfile

    repo = Path(__file__).resolve().parents[1]
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path), str(repo)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("behavior_agent-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("report.html", "report.md", "report_limits.yaml"):
        assert f"agent/templates/{name}" in names
    assert "agent/_data/prompts/report_narrative.txt" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "from agent.report.render import TEMPLATES, _environment; "
        "from agent.report.provenance import load_limits; "
        "_environment(True).get_template('report.html'); "
        "_environment(False).get_template('report.md'); "
        "assert load_limits()['always']; print(TEMPLATES)"
    )
    found = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(site / "agent" / "templates")


def test_a_still_image_report_has_no_timeline_but_all_formats(tmp_path):
    image = tmp_path / "hand.png"
    Image.fromarray(np.full((90, 120, 3), 180, np.uint8)).save(image)
    ctx = Context(home=tmp_path / "home")
    data = assemble_report(
        probe(image, ctx),
        [Clip(clip_id=0, start_s=0.0, end_s=0.0)],
        [detection("gesture", "thumbs_up", 0.0, 0.0, 0.9)],
        ctx,
        kb=StubKB(),
    )
    assert "timeline" not in data.charts
    page = parse_html(write_report(data, "html", tmp_path / "r.html"))
    assert any(link.endswith("hand.png") for link in page.links)  # no #t= on a still
    assert "A still image has no timeline" in " ".join(page.text)
    markdown = write_report(data, "md", tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| still image | 120×90 |" in markdown
    payload = json.loads(write_report(data, "json", tmp_path / "r.json").read_text())
    assert payload["charts"] == {"totals": "r_files/totals.png"}
