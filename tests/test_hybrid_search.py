"""Hybrid search (agent.index.hybrid): moments of the classes a query names, spans inside the
clip, "no matching moment", one-thing texts, objects, the visual ranking (tiny random CLIP)."""

from pathlib import Path

import numpy as np
import pytest

from agent.context import Context
from agent.embed import VisualEmbedder, build_tiny_clip, load_text_embedder
from agent.errors import BehaviorAgentError
from agent.index import ClipIndex, VideoPayload, text_space, visual_space
from agent.indexing.texts import thing_texts
from agent.knowledge import load_knowledge_base
from agent.state import Clip, Detection, ObjectSighting, VideoInfo
from agent.video import sha256_file


@pytest.fixture(scope="module")
def embedder():
    return load_text_embedder(Context())


@pytest.fixture(scope="module")
def kb(embedder):
    kb = load_knowledge_base(Context())
    kb.embedder = embedder
    return kb


def det(label: str, kind: str, start_s: float, end_s: float, confidence: float = 0.8):
    return Detection(kind=kind, label=label, start_s=start_s, end_s=end_s, confidence=confidence)


def sighting(label: str, start_s: float, end_s: float) -> ObjectSighting:
    box = [0.1, 0.1, 0.2, 0.2]
    return ObjectSighting(
        label=label, start_s=start_s, end_s=end_s, score=0.8, bbox=box, best_s=start_s, count=1
    )


def store(
    index,
    folder: Path,
    name: str,
    detections,
    kb,
    embedder,
    clips=3,
    objects=(),
    visual=None,
    settings=None,
):
    """A fake video of `clips` 10 s clips with these detections, stored as indexing would."""
    settings = {"format": 3, **(settings or {})}
    path = folder / name
    path.write_bytes(np.random.default_rng(len(name)).bytes(2048))
    info = VideoInfo(
        path=str(path),
        duration_s=10.0 * clips,
        fps=25.0,
        frame_count=250 * clips,
        width=64,
        height=48,
        sha256=sha256_file(path),
    )
    index.begin_video(info, settings)
    spans = [Clip(clip_id=i, start_s=10.0 * i, end_s=10.0 * i + 10) for i in range(clips)]
    things = thing_texts(list(detections), list(objects), kb)
    space = text_space(embedder.name)
    vectors = {space: (embedder.version, embedder.embed(["clip"] * clips))}
    if visual is not None:  # (the visual embedder, one vector per clip)
        vectors[visual_space(visual[0].name)] = (visual[0].version, visual[1])
    payload = VideoPayload(
        info,
        settings,
        spans,
        [""] * clips,
        [f"clip {i}" for i in range(clips)],
        list(detections),
        vectors,
        objects=list(objects),
        things=things,
        thing_vectors={space: embedder.embed([t for _, _, t in things])},
    )
    return index.put_video(payload)


def test_thing_texts_name_one_thing_each(kb):
    found = thing_texts(
        [
            det("happy", "emotion", 0, 1),
            det("happy", "emotion", 5, 6),
            det("wave", "gesture", 1, 2),
        ],
        [sighting("cup", 0.0, 3.0)],
        kb,
    )
    texts = {label: text for _, label, text in found}
    assert set(texts) == {"happy", "wave", "cup"}  # one text per label, however often seen
    assert "Happiness" in texts["happy"] and "wave" not in texts["happy"].lower()
    assert texts["cup"] == "cup in view"


def test_a_query_lands_on_the_span_of_its_class(tmp_path, embedder, kb):
    index = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    # The crowded clip 0 holds many labels; the smile is in clip 2, from 23 to 26 s.
    crowded = [
        det(c, k, 1, 9)
        for c, k in [
            ("sad", "emotion"),
            ("fear", "emotion"),
            ("disgust", "emotion"),
            ("wave", "gesture"),
        ]
    ]
    record = store(
        index, tmp_path, "a.mp4", [*crowded, det("happy", "emotion", 23, 26)], kb, embedder
    )
    found = index.retrieve("smiling happily", kb=kb, video=record.sha256)
    top = found.hits[0]
    assert (top.label, top.clip_id) == ("happy", 2)
    assert (top.span_start_s, top.span_end_s) == (23.0, 26.0)
    assert (top.start_s, top.end_s) == (20.0, 30.0)
    assert "classes" in top.why
    assert all(h.label == "happy" for h in found.hits)  # no other class answers this query


def test_a_span_covers_the_time_its_samples_stand_for(tmp_path, embedder, kb):
    """At 2 fps a detection runs from its first sample to a step past its last (perception's
    convention): the onset lies in the half step before, so the span starts 0.25 s earlier;
    a sighting (1 fps, first to last) gets half a second on both sides; never past the video."""
    index = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    fps = {"sample_fps": 2.0, "object_fps": 1.0}
    detections = [det("happy", "emotion", 23, 26), det("wave", "gesture", 0, 2)]
    cup = sighting("cup", 12.0, 14.0)
    record = store(index, tmp_path, "a.mp4", detections, kb, embedder, objects=[cup], settings=fps)
    spans = {}
    for query in ("smiling happily", "waving", "a cup"):
        top = index.retrieve(query, kb=kb, video=record.sha256).hits[0]
        spans[top.label] = (top.span_start_s, top.span_end_s)
    assert spans == {"happy": (22.75, 26.0), "wave": (0.0, 2.0), "cup": (11.5, 14.5)}
    # Two smiles 1.5 s apart at 2 fps are 1.25 s apart once widened: still two moments.
    index.remove(record.sha256)
    twice = [det("happy", "emotion", 3, 5), det("happy", "emotion", 6.5, 8)]
    record = store(index, tmp_path, "b.mp4", twice, kb, embedder, settings=fps)
    found = index.retrieve("smiling happily", kb=kb, video=record.sha256).hits[0]
    assert (found.span_start_s, found.span_end_s) in {(2.75, 5.0), (6.25, 8.0)}


def test_a_search_sees_what_was_indexed_after_it_started(tmp_path, embedder, kb):
    """What a search keeps between queries (the one-thing vectors, a video's clips) follows the
    library: a write through the same index and one through another connection (process)."""
    home = tmp_path / "home"
    index = ClipIndex(Context(home=home), embedder=embedder)
    a = store(index, tmp_path, "a.mp4", [det("wave", "gesture", 2, 3)], kb, embedder)
    assert index.retrieve("a cup", kb=kb).no_match
    assert index.retrieve("waving", kb=kb).hits[0].clip_id == 0
    # A thing only its one-thing text answers (no class names it): the text's vector is new.
    cup = [sighting("cup", 12.0, 14.0)]
    store(index, tmp_path, "b.mp4", [det("wave", "gesture", 2, 3)], kb, embedder, objects=cup)
    assert index.retrieve("a cup", kb=kb).hits[0].label == "cup"
    other = ClipIndex(Context(home=home), embedder=embedder)  # its own SQLite connection
    laptop = [sighting("laptop", 3.0, 5.0)]
    store(other, tmp_path, "cc.mp4", [], kb, embedder, objects=laptop)
    assert index.retrieve("a laptop", kb=kb).hits[0].label == "laptop"
    # The same video indexed again as one clip: its clips (rowids) are new.
    store(other, tmp_path, "a.mp4", [det("wave", "gesture", 2, 3)], kb, embedder, clips=1)
    hits = index.retrieve("waving", kb=kb, video=a.sha256).hits
    assert [(h.clip_id, h.start_s, h.end_s) for h in hits] == [(0, 0.0, 10.0)]
    other.close()


def test_nothing_seen_is_no_matching_moment_with_the_closest_labels(tmp_path, embedder, kb):
    index = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    record = store(index, tmp_path, "a.mp4", [det("thumbs_down", "gesture", 3, 5)], kb, embedder)
    found = index.retrieve("thumbs up", kb=kb, video=record.sha256)
    assert found.no_match and found.hits == []
    assert found.matched[0][0] == "thumbs_up"
    assert found.closest[0][0] == "thumbs_down"  # named, never given as the answer
    assert index.retrieve("fireworks in the night sky", kb=kb).no_match
    # The asked class is found as soon as it is there.
    assert index.retrieve("thumbs down", kb=kb).hits[0].label == "thumbs_down"


def test_objects_answer_queries_that_name_no_class(tmp_path, embedder, kb):
    index = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    cup = sighting("cup", 12.0, 14.0)
    store(index, tmp_path, "a.mp4", [det("neutral", "emotion", 0, 30)], kb, embedder, objects=[cup])
    top = index.retrieve("a cup", kb=kb).hits[0]
    assert (top.label, top.clip_id, top.span_start_s, top.span_end_s) == ("cup", 1, 12.0, 14.0)


def test_scope_filters_and_labels(tmp_path, embedder, kb):
    index = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    a = store(index, tmp_path, "a.mp4", [det("wave", "gesture", 2, 3)], kb, embedder)
    b = store(index, tmp_path, "bb.mp4", [det("wave", "gesture", 21, 22)], kb, embedder)
    assert {h.sha256 for h in index.retrieve("waving", kb=kb).hits} == {a.sha256, b.sha256}
    only_b = index.retrieve("waving", kb=kb, video=b.sha256).hits
    assert [(h.sha256, h.clip_id) for h in only_b] == [(b.sha256, 2)]
    assert index.retrieve("waving", kb=kb, start_s=10.0, end_s=15.0).no_match
    # --label picks the class; the query's words only order its moments.
    assert index.retrieve("anything at all", kb=kb, labels=["Wave"]).hits[0].label == "wave"
    with pytest.raises(BehaviorAgentError, match="not in the library"):
        index.retrieve("waving", kb=kb, video=tmp_path / "never.mp4")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return VisualEmbedder(str(build_tiny_clip(tmp_path_factory.mktemp("clip"), tokenizer=True)))


def test_visual_vectors_join_the_fusion_but_never_answer_alone(tmp_path, embedder, kb, tiny_clip):
    index = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    frames = np.random.default_rng(0).integers(0, 255, (3, 2, 32, 32, 3), dtype=np.uint8)
    visual = np.stack([tiny_clip.embed_clip(f) for f in frames])
    detections = [det("happy", "emotion", 3, 6), det("happy", "emotion", 13, 18)]
    store(index, tmp_path, "a.mp4", detections, kb, embedder, visual=(tiny_clip, visual))
    assert tiny_clip.reads_text and tiny_clip.embed_text(["smile"]).shape == (1, tiny_clip.dim)
    found = index.retrieve("smiling", kb=kb, visual_embedder=tiny_clip)
    assert [h.clip_id for h in found.hits] and all("visual" in h.why for h in found.hits)
    assert {h.clip_id for h in found.hits} == {0, 1}  # clip 2 (no smile) is not an answer
    without = index.retrieve("smiling", kb=kb)
    assert all("visual" not in h.why for h in without.hits)
    assert index.retrieve("fireworks in the night sky", kb=kb, visual_embedder=tiny_clip).no_match
