"""A report with the real VideoLLaMA3 code path (tiny random checkpoint, CPU): narratives."""

from pathlib import Path

import pytest

from agent.context import Context
from agent.report import build_report, write_report
from tests.report_support import detection
from tests.synthetic import write_video

pytestmark = pytest.mark.slow


class OneSmileSession:
    """Perception-session double (isolates the VLM path from mediapipe): one smile at 0.5-2 s."""

    def __init__(self, perceiver, kb, ctx, still=False) -> None:
        self.frames = 0

    def add(self, batch) -> None:
        self.frames += len(batch)

    def finish(self):
        return [detection("emotion", "happy", 0.5, 2.0, 0.9, cues="AU12 0.9")]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from agent.vlm.tiny import build_tiny_vl3

    return build_tiny_vl3(tmp_path_factory.mktemp("vl3") / "tiny")


def test_report_with_a_vlm_has_model_written_narratives_and_names_the_model(tiny_dir, tmp_path):
    from agent.vlm import load_vlm

    ctx = Context(
        home=tmp_path / "home",
        backend="videollama3",
        model_id=str(tiny_dir),
        device="cpu",
        quantization="none",
        max_new_tokens=4,
        describe_fps=1.0,
    )
    video = write_video(tmp_path / "clip.mp4", [3.0])
    vlm = load_vlm(ctx)
    stages: list[str] = []
    data = build_report(
        video,
        ctx,
        vlm=vlm,
        progress=lambda e: stages.append(e["stage"]),
        session_factory=OneSmileSession,
    )
    assert "describe" in stages and "narratives" in stages
    assert [e.label for e in data.events] == ["happy"]
    assert data.segments[0].event_ids == ["e001"]
    for segment in data.segments:
        assert segment.narrative_model == str(tiny_dir)  # every call returned
        assert segment.model_written == bool(segment.narrative)
    provenance = data.provenance
    assert provenance.backend == "videollama3"
    assert provenance.model_id == str(tiny_dir)
    assert provenance.quantization.startswith("none (cpu")
    assert provenance.index_settings["backend"] == "videollama3"
    assert provenance.sampling["describe_fps"] == 1.0
    html = write_report(data, "html", tmp_path / "r.html").read_text(encoding="utf-8")
    assert "vision-language model" in html
    if any(s.narrative for s in data.segments):
        assert "model-written" in html
