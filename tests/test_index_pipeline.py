"""index_video with a perception-session double on synthetic videos: once, reuse, re-index, VLM."""

import logging
import shutil

import cv2
import numpy as np
import pytest

from agent.context import Context
from agent.embed import build_tiny_clip, load_text_embedder
from agent.index import ClipIndex
from agent.indexing import caption_of, clip_text, index_video, vlm_detections
from agent.knowledge import load_knowledge_base
from agent.state import Clip, Detection
from agent.vlm import VLMReply
from tests.synthetic import write_video

THUMBS = Detection(kind="gesture", label="thumbs_up", start_s=4.2, end_s=5.8, confidence=0.8)
EVENT_KEYS = {"stage", "done", "total", "elapsed_s", "message"}


class FakeSession:
    """Stands in for PerceptionSession: records the frames it was fed, returns set detections."""

    made: list["FakeSession"] = []

    def __init__(self, perceiver, kb, ctx, detections=(THUMBS,), still=False):
        self.timestamps: list[float] = []
        self.detections = list(detections)
        FakeSession.made.append(self)

    def add(self, batch):
        assert batch.frames.ndim == 4 and batch.frames.dtype == np.uint8
        self.timestamps.extend(float(t) for t in batch.timestamps_s)

    def finish(self):
        return self.detections


class FakeVLM:
    """Describes each clip; `fail_on` makes the n-th call raise (an interrupted run)."""

    name = "fake-vlm"
    version = "fake-vlm-1"

    def __init__(self, fail_on: int | None = None):
        self.calls: list[tuple[float, float, int]] = []
        self.fail_on = fail_on

    def describe(self, frames, info, kb_snippet):
        assert "thumbs_up" in kb_snippet  # the knowledge-base cues reach the prompt
        self.calls.append(
            (float(frames.timestamps_s[0]), float(frames.timestamps_s[-1]), len(frames))
        )
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise KeyboardInterrupt
        person = {
            "person": 1,
            "where": "center",
            "emotion": "happy",
            "gestures": [],
            "actions": ["walking"],
            "cues": "smiles while walking",
        }
        return VLMReply(text="{...}", data={"people": [person], "summary": "A person walks."})


@pytest.fixture(scope="module")
def embedder():
    return load_text_embedder(Context())


@pytest.fixture(scope="module")
def kb():
    return load_knowledge_base(Context())


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "two_scenes.mp4", [6.0, 6.0], fps=10.0, size=(160, 120))


@pytest.fixture
def ctx(tmp_path):
    return Context(home=tmp_path / "home", clip_length_s=4.0, sample_fps=2.0)


def run(video, ctx, embedder, kb, **kwargs):
    events: list[dict] = []
    record = index_video(
        video,
        ctx,
        perceiver=object(),
        embedder=embedder,
        kb=kb,
        session_factory=kwargs.pop("session_factory", FakeSession),
        progress=events.append,
        **kwargs,
    )
    return record, events


def test_indexes_once_and_the_second_run_does_no_work(video, ctx, embedder, kb):
    FakeSession.made.clear()
    record, events = run(video, ctx, embedder, kb)
    assert record.status == "complete" and not record.reused
    # One decoding pass fed every sampled frame (2 fps over 12 s) to perception.
    (session,) = FakeSession.made
    assert len(session.timestamps) == 24 and session.timestamps == sorted(session.timestamps)
    assert [(c.start_s, c.end_s) for c in ClipIndex(ctx).clips(video)] == [
        (0.0, 4.0),
        (4.0, 6.0),
        (6.0, 10.0),
        (10.0, 12.0),
    ]
    assert all(set(e) == EVENT_KEYS for e in events)
    stages = [e["stage"] for e in events]
    assert stages[0] == "probe" and stages[-1] == "done"
    assert {"perceive", "embed", "store"} <= set(stages)
    perceive = [(e["done"], e["total"]) for e in events if e["stage"] == "perceive"]
    assert [d for d, _ in perceive] == sorted(d for d, _ in perceive)
    assert perceive[-1] == (24, 24)
    again, events_again = run(video, ctx, embedder, kb)
    assert again.reused and again.sha256 == record.sha256
    assert len(FakeSession.made) == 1  # no perception the second time
    assert {e["stage"] for e in events_again} == {"probe", "done"}
    assert "already indexed" in events_again[-1]["message"]


def test_search_finds_the_clip_with_the_detected_gesture(video, ctx, embedder, kb):
    run(video, ctx, embedder, kb)
    hits = ClipIndex(ctx, embedder=embedder).search("someone giving a thumbs up", k=4)
    assert (hits[0].start_s, hits[0].end_s) == (4.0, 6.0)
    assert hits[0].detections == [THUMBS]
    assert "Thumbs up" in hits[0].text and "00:04" in hits[0].text
    labelled = ClipIndex(ctx, embedder=embedder).search("anything", labels=["thumbs_up"])
    assert [h.clip_id for h in labelled] == [1]


def test_changed_settings_reindex_and_say_why(video, ctx, embedder, kb, caplog):
    run(video, ctx, embedder, kb)
    with caplog.at_level(logging.WARNING, logger="agent.indexing"):
        record, events = run(video, ctx.replace(clip_length_s=6.0), embedder, kb)
    assert not record.reused
    assert "clip_length_s changed from 4.0 to 6.0" in caplog.text
    assert any("re-indexing" in e["message"] for e in events)
    assert [(c.start_s, c.end_s) for c in ClipIndex(ctx).clips(video)] == [(0.0, 6.0), (6.0, 12.0)]


def test_a_moved_copy_is_recognised(video, ctx, embedder, kb, tmp_path):
    first, _ = run(video, ctx, embedder, kb)
    moved = tmp_path / "elsewhere" / "renamed.mp4"
    moved.parent.mkdir()
    shutil.copy(video, moved)
    record, _ = run(moved, ctx, embedder, kb)
    assert record.reused and record.sha256 == first.sha256
    assert record.path == str(moved.resolve())
    assert set(record.paths) == {str(video.resolve()), str(moved.resolve())}


def test_vlm_captions_resume_after_an_interrupted_run(video, ctx, embedder, kb):
    ctx = ctx.replace(backend="videollama3", describe_fps=1.0, max_frames_per_call=3)
    broken = FakeVLM(fail_on=3)
    with pytest.raises(KeyboardInterrupt):
        run(video, ctx, embedder, kb, vlm=broken)
    library = ClipIndex(ctx)
    assert library.video(video).status == "indexing" and library.clips(video) == []
    vlm = FakeVLM()
    record, events = run(video, ctx, embedder, kb, vlm=vlm)
    # The backend is what the VLM object says it is: this double is not VideoLLaMA3.
    assert record.status == "complete" and record.settings["backend"] == "fake-vlm"
    assert record.settings["vlm"] == "fake-vlm [fake-vlm-1]"
    assert len(vlm.calls) == 2  # clips 1 and 2 came from the interrupted run's cache
    assert all(n <= 3 for *_, n in broken.calls)  # frames capped per call
    assert [e["done"] for e in events if e["stage"] == "describe"] == [1, 2, 3, 4]
    clips = library.clips(video)
    assert all(
        c.caption.startswith("A person walks. Person 1 (center): emotion happy") for c in clips
    )
    vlm_labels = {(d.label, d.source) for d in library.detections(video) if d.source == "vlm"}
    assert vlm_labels == {("happy", "vlm"), ("walk", "vlm")}
    # A perception-only request is served by the richer VLM index without work.
    plain, _ = run(video, ctx.replace(backend="perception"), embedder, kb)
    assert plain.reused


def test_a_still_image_is_one_clip_at_zero(tmp_path, ctx, embedder, kb):
    image = tmp_path / "hand.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 200, np.uint8))
    still_detection = Detection(
        kind="gesture", label="thumbs_up", start_s=0.0, end_s=0.0, confidence=0.9
    )

    def session(perceiver, kb_, ctx_, still=False):
        assert still  # mediapipe's static-image mode for stills
        return FakeSession(perceiver, kb_, ctx_, detections=[still_detection])

    record, _ = run(image, ctx, embedder, kb, session_factory=session)
    assert (record.duration_s, record.clip_count, record.detection_count) == (0.0, 1, 1)
    hit = ClipIndex(ctx, embedder=embedder).search("thumbs up", k=1)[0]
    assert (hit.start_s, hit.end_s, hit.detections) == (0.0, 0.0, [still_detection])


def test_visual_vectors_find_clips_that_look_alike(tmp_path, ctx, embedder, kb):
    model_dir = build_tiny_clip(tmp_path / "tiny_clip")
    ctx = ctx.replace(visual_embed_model=str(model_dir))
    # Six 2 s shots; the synthetic palette has five colours, so shot 5 looks like shot 0.
    video = write_video(tmp_path / "palette.mp4", [2.0] * 6, fps=10.0, size=(160, 120))
    record, _ = run(video, ctx, embedder, kb)
    assert record.clip_count == 6
    assert record.settings["visual_embed_model"].startswith(str(model_dir))
    library = ClipIndex(ctx, embedder=embedder)
    hits = library.similar(video, clip_id=0, k=3)
    assert len(hits) == 3 and hits[0].clip_id == 5
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_clip_text_puts_events_with_times_first(kb):
    clip = Clip(clip_id=0, start_s=0.0, end_s=10.0)
    happy = Detection(kind="emotion", label="happy", start_s=0.0, end_s=10.0, confidence=0.7)
    text = clip_text(clip, "A man talks.", [THUMBS, happy], kb)
    first = text.split(". ")[0]
    assert first.startswith(kb.get("thumbs_up").name + " (")
    assert first.endswith("gesture from 00:04 to 00:06")
    assert "throughout" in text and text.endswith("A man talks.")
    assert clip_text(clip, "", [], kb).startswith("No gesture")


def test_model_written_times_reach_neither_captions_nor_cues(kb):
    clip = Clip(clip_id=0, start_s=0.0, end_s=10.0)
    person = {"person": 1, "emotion": "happy", "cues": "smiles from 3 to 5 s; cheeks raised"}
    data = {"summary": "At 0:45 a man waves. He sits.", "people": [person]}
    assert caption_of("", data) == "He sits. Person 1: emotion happy. Cheeks raised."
    (found,) = vlm_detections(data, clip, kb)
    assert (found.label, found.start_s, found.end_s) == ("happy", 0.0, 10.0)  # clip times
    assert found.cues == "Cheeks raised."
    plain = {"summary": "A man sits; he smiles.", "people": []}
    assert caption_of("", plain) == "A man sits; he smiles."  # nothing to leave out


def test_the_real_videollama3_class_describes_clips(tmp_path, ctx, embedder, kb):
    """The tiny random VideoLLaMA3 (real processor and model class): structure, not meaning."""
    from agent.vlm import load_vlm
    from agent.vlm.tiny import build_tiny_vl3

    folder = build_tiny_vl3(tmp_path / "tiny_vl3")
    ctx = ctx.replace(
        backend="videollama3",
        model_id=str(folder),
        device="cpu",
        max_new_tokens=8,
        max_frames_per_call=2,
    )
    video = write_video(tmp_path / "short.mp4", [3.0], fps=10.0, size=(96, 64))
    record, events = run(video, ctx, embedder, kb, vlm=load_vlm(ctx))
    assert record.settings["backend"] == "videollama3" and record.settings["vlm"]
    assert [e["done"] for e in events if e["stage"] == "describe"] == [1]
    (clip,) = ClipIndex(ctx).clips(video)
    assert clip.caption and clip.caption in clip.text  # noise, but stored and embedded
