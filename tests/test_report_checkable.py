"""Reports list the knowledge-base classes the backend could not check, with the reason, in
every format."""

import json

import pytest

from agent.context import Context
from agent.knowledge import load_knowledge_base
from agent.report import assemble_report, not_checkable, write_report
from agent.state import Clip
from agent.video import probe
from tests.report_support import detection
from tests.synthetic import write_video


@pytest.fixture(scope="module")
def kb():
    return load_knowledge_base()


@pytest.fixture
def report(tmp_path, kb, monkeypatch):
    off = {"classes": {"wave": {"enabled": False, "reason": "measured precision 0.10 (n=30)"}}}
    monkeypatch.setattr("agent.perception.capabilities.calibration", lambda: off)
    video = write_video(tmp_path / "clip.mp4", [4.0])
    ctx = Context(home=tmp_path / "home")
    clips = [Clip(clip_id=0, start_s=0.0, end_s=4.0)]
    found = [detection("gesture", "thumbs_up", 1.0, 2.0, 0.9)]
    return assemble_report(probe(video, ctx), clips, found, ctx, kb=kb, key_frames=False)


def test_classes_without_a_rule_or_switched_off_are_listed_with_why(report, kb):
    listed = {u.id: u for u in report.not_checkable}
    for class_id in ("play_instrument", "hug", "shake_hands"):  # perception: null in the KB
        assert kb.get(class_id).perception is None
        assert listed[class_id].status == "none"
        assert listed[class_id].reason == "no offline rule can observe it"
    assert (listed["wave"].status, listed["wave"].reason) == (
        "off",
        "measured precision 0.10 (n=30)",
    )
    assert "thumbs_up" not in listed and "happy" not in listed  # checkable ones are not
    kinds = [u.kind for u in report.not_checkable]
    assert kinds == sorted(kinds, key=["emotion", "gesture", "action"].index)


def test_every_format_shows_the_section(report, tmp_path):
    md = write_report(report, "md", tmp_path / "r.md").read_text()
    section = md.split("## Not checkable by this backend", 1)[1].split("## Knowledge base", 1)[0]
    assert "| Playing an instrument (`play_instrument`) | action | no offline rule" in section
    assert "| Waving (`wave`) | gesture | measured precision 0.10 (n=30) |" in section
    html = write_report(report, "html", tmp_path / "r.html").read_text()
    part = html.split('<section id="not-checkable">', 1)[1].split("</section>", 1)[0]
    assert "<code>play_instrument</code>" in part and "measured precision 0.10" in part
    payload = json.loads(write_report(report, "json", tmp_path / "r.json").read_text())
    by_id = {u["id"]: u for u in payload["not_checkable"]}
    assert by_id["hug"] == {
        "id": "hug",
        "kind": "action",
        "name": "Hugging",
        "status": "none",
        "reason": "no offline rule can observe it",
    }


def test_with_a_vlm_the_reason_says_only_its_descriptions_can_report_it(kb, monkeypatch):
    monkeypatch.setattr("agent.perception.capabilities.calibration", lambda: {})
    unchecked = {u.id: u for u in not_checkable(kb, Context(), vlm=object())}
    assert unchecked["hug"].reason.endswith(
        "; only the vision-language model's clip descriptions can report it"
    )
    assert not_checkable(None, Context()) == []
