"""A report with the real VideoLLaMA3 code path (tiny random checkpoint, CPU): narratives."""

from pathlib import Path

import pytest
from markupsafe import escape

from agent.context import Context
from agent.provenance import files_sha256
from agent.report import build_report, write_report
from agent.vlm.reply_times import without_times
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
    replies = []  # the real model's raw narrative replies, recorded on their way through
    real_narrate = vlm.narrate

    def narrate(*args, **kwargs):
        replies.append(real_narrate(*args, **kwargs))
        return replies[-1]

    vlm.narrate = narrate
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
    assert len(replies) == len(data.segments) == 1  # one narrative call per segment
    for segment, reply in zip(data.segments, replies, strict=True):
        assert segment.narrative_model == str(tiny_dir)  # every call returned
        assert segment.narrative == without_times(reply.text)
    # The tiny checkpoint's greedy output is fixed noise, never empty: a narrative to render.
    narrative = data.segments[0].narrative
    assert narrative and data.segments[0].model_written
    provenance = data.provenance
    assert provenance.backend == "videollama3"
    assert provenance.model_id == str(tiny_dir)
    assert provenance.quantization.startswith("none (cpu")
    assert provenance.index_settings["backend"] == "videollama3"
    assert provenance.sampling["describe_fps"] == 1.0
    html = write_report(data, "html", tmp_path / "r.html").read_text(encoding="utf-8")
    assert "vision-language model" in html
    assert f'<span class="badge">model-written</span>{escape(narrative)}</p>' in html
    assert f"**[model-written]** {narrative}" in write_report(
        data, "md", tmp_path / "r.md"
    ).read_text(encoding="utf-8")
    landmarks, vlm_entry = provenance.models[0], provenance.models[-1]
    assert (landmarks.role, vlm_entry.role, vlm_entry.name) == ("landmarks", "vlm", str(tiny_dir))
    assert vlm_entry.sha256 == files_sha256([tiny_dir / "model.safetensors"])
