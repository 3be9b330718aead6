"""ClipIndex: storage, filtered search, persistence, crash recovery, HNSW switch, threads."""

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from agent.context import Context
from agent.embed import load_text_embedder
from agent.errors import BehaviorAgentError
from agent.events import label_key, spans_overlap
from agent.index import ClipIndex, VideoPayload, text_space
from agent.state import Clip, Detection, VideoInfo
from agent.video import sha256_file

TEXTS = [
    "A woman gives a thumbs up gesture with her right hand.",
    "Two people arm wrestling at a table.",
    "A man smiles broadly; happy facial expression.",
    "Pedestrians walking across a square outdoors.",
    "A person doing yoga poses on a mat.",
]


@pytest.fixture(scope="module")
def embedder():
    return load_text_embedder(Context())


def fake_video(folder: Path, name: str, seed: int) -> Path:
    """A file with unique content (the index keys videos by content hash, not by decoding)."""
    path = folder / name
    path.write_bytes(np.random.default_rng(seed).bytes(4096))
    return path


def store(
    index: ClipIndex,
    path: Path,
    texts: list[str],
    embedder,
    detections=(),
    clip_s=10.0,
    objects=(),
):
    info = VideoInfo(
        path=str(path),
        duration_s=clip_s * len(texts),
        fps=25.0,
        frame_count=int(25 * clip_s * len(texts)),
        width=64,
        height=48,
        sha256=sha256_file(path),
    )
    settings = {"format": 1}
    index.begin_video(info, settings)
    clips = [Clip(clip_id=i, start_s=i * clip_s, end_s=(i + 1) * clip_s) for i in range(len(texts))]
    vectors = {text_space(embedder.name): (embedder.version, embedder.embed(texts))}
    payload = VideoPayload(
        info, settings, clips, texts, texts, list(detections), vectors, objects=list(objects)
    )
    return index.put_video(payload)


def test_search_ranks_the_matching_clip_first(tmp_path, embedder):
    index = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    record = store(index, fake_video(tmp_path, "a.mp4", 1), TEXTS, embedder)
    assert record.status == "complete" and record.clip_count == 5
    hits = index.search("somebody shows a thumbs-up", k=3)
    assert [h.clip_id for h in hits][0] == 0
    assert hits[0].score > hits[1].score >= hits[2].score
    assert (hits[0].start_s, hits[0].end_s) == (0.0, 10.0)
    assert index.search("yoga", k=1)[0].clip_id == 4


def test_filters_by_video_time_range_and_label(tmp_path, embedder):
    index = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    thumbs = Detection(kind="gesture", label="thumbs_up", start_s=31.0, end_s=33.0, confidence=0.9)
    a = store(index, fake_video(tmp_path, "a.mp4", 1), TEXTS, embedder, [thumbs])
    b = store(index, fake_video(tmp_path, "b.mp4", 2), TEXTS, embedder)
    everywhere = index.search("thumbs up", k=2)
    assert {h.sha256 for h in everywhere} == {a.sha256, b.sha256}
    only_b = index.search("thumbs up", k=5, video=tmp_path / "b.mp4")
    assert {h.sha256 for h in only_b} == {b.sha256} and len(only_b) == 5
    # A span touching clip boundaries selects the clips it overlaps, not their neighbours.
    ranged = index.search("thumbs up", k=10, video=b.sha256, start_s=12.0, end_s=30.0)
    assert sorted(h.clip_id for h in ranged) == [1, 2]
    labelled = index.search("thumbs up", k=10, labels=["Thumbs Up"])
    assert [(h.sha256, h.clip_id) for h in labelled] == [(a.sha256, 3)]
    assert labelled[0].detections == [thumbs]
    assert index.search("thumbs up", k=10, labels=["wave"]) == []


def test_persists_and_rebuilds_a_missing_faiss_file(tmp_path, embedder):
    ctx = Context(home=tmp_path / "home")
    index = ClipIndex(ctx, embedder=embedder)
    record = store(index, fake_video(tmp_path, "a.mp4", 1), TEXTS, embedder)
    before = [(h.clip_id, round(h.score, 5)) for h in index.search("arm wrestling", k=5)]
    index.close()
    files = list((ctx.home / "vectors").glob("*.faiss"))
    assert len(files) == 1
    reopened = ClipIndex(ctx, embedder=embedder)
    assert [(h.clip_id, round(h.score, 5)) for h in reopened.search("arm wrestling", k=5)] == before
    reopened.close()
    files[0].unlink()  # a lost or corrupt cache file is rebuilt from the SQLite blobs
    rebuilt = ClipIndex(ctx, embedder=embedder)
    assert [(h.clip_id, round(h.score, 5)) for h in rebuilt.search("arm wrestling", k=5)] == before
    assert files[0].is_file()
    assert rebuilt.video(record.sha256).clip_count == 5


def test_corrupt_faiss_file_is_rebuilt(tmp_path, embedder):
    ctx = Context(home=tmp_path / "home")
    store(ClipIndex(ctx, embedder=embedder), fake_video(tmp_path, "a.mp4", 1), TEXTS, embedder)
    (faiss_file,) = (ctx.home / "vectors").glob("*.faiss")
    faiss_file.write_bytes(b"garbage")
    assert ClipIndex(ctx, embedder=embedder).search("yoga", k=1)[0].clip_id == 4


def test_remove_deletes_everything_of_one_video(tmp_path, embedder):
    ctx = Context(home=tmp_path / "home")
    index = ClipIndex(ctx, embedder=embedder)
    det = Detection(kind="emotion", label="happy", start_s=20.0, end_s=25.0, confidence=0.7)
    a = store(index, fake_video(tmp_path, "a.mp4", 1), TEXTS, embedder, [det])
    b = store(index, fake_video(tmp_path, "b.mp4", 2), TEXTS[:2], embedder)
    assert index.remove(tmp_path / "a.mp4") is True
    assert index.video(a.sha256) is None and index.clips(a.sha256) == []
    assert index.detections(a.sha256) == []
    assert {h.sha256 for h in index.search("smiling", k=10)} == {b.sha256}
    assert index.stats()["spaces"][text_space(embedder.name)]["vectors"] == 2
    assert index.remove(a.sha256) is False
    assert len(list((ctx.home / "vectors").glob("*.faiss"))) == 1  # old generations dropped


def test_moved_file_is_recognised_by_content(tmp_path, embedder):
    index = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    original = fake_video(tmp_path, "a.mp4", 1)
    record = store(index, original, TEXTS, embedder)
    moved = tmp_path / "renamed.mp4"
    original.rename(moved)
    assert index.video(moved).sha256 == record.sha256
    assert index.note_path(moved, record.sha256) == str(original.resolve())
    again = index.video(moved)
    assert again.path == str(moved.resolve())
    assert set(again.paths) == {str(original.resolve()), str(moved.resolve())}
    # The old path is still known (a search result of an old path resolves to the video).
    assert index.resolve(original) == record.sha256


def test_interrupted_write_leaves_previous_state(tmp_path, embedder, monkeypatch):
    ctx = Context(home=tmp_path / "home")
    index = ClipIndex(ctx, embedder=embedder)
    store(index, fake_video(tmp_path, "a.mp4", 1), TEXTS, embedder)
    path_b = fake_video(tmp_path, "b.mp4", 2)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed while the FAISS file was being written

    monkeypatch.setattr("agent.index.vectors._write_atomically", crash)
    with pytest.raises(KeyboardInterrupt):
        store(index, path_b, TEXTS[:2], embedder)
    monkeypatch.undo()
    fresh = ClipIndex(ctx, embedder=embedder)
    assert fresh.video(path_b).status == "indexing"  # the next run redoes it
    assert fresh.clips(path_b) == []
    assert len(fresh.search("yoga", k=10)) == 5
    assert store(fresh, path_b, TEXTS[:2], embedder).status == "complete"
    assert len(fresh.search("yoga", k=10)) == 7
    # The object that saw the failure notices the newer generation and reloads.
    assert len(index.search("yoga", k=10)) == 7


def test_switches_to_hnsw_above_the_threshold(tmp_path, embedder, caplog):
    ctx = Context(home=tmp_path / "home", approximate_index_above=8)
    index = ClipIndex(ctx, embedder=embedder)
    store(index, fake_video(tmp_path, "a.mp4", 1), TEXTS, embedder)
    space = text_space(embedder.name)
    assert index.stats()["spaces"][space]["index"] == "flat"
    with caplog.at_level(logging.WARNING, logger="agent.index"):
        b = store(index, fake_video(tmp_path, "b.mp4", 2), TEXTS, embedder)
    assert "HNSW" in caplog.text
    assert index.stats()["spaces"][space]["index"] == "hnsw"
    assert index._load_space(space).approximate
    hits = index.search("yoga", k=2)
    assert {h.clip_id for h in hits} == {4}
    # Filtered searches on the approximate index are exact on small candidate sets.
    assert [h.clip_id for h in index.search("yoga", k=1, video=b.sha256)] == [4]
    assert index.remove(b.sha256)  # HNSW cannot delete: rebuilt, back to flat below threshold
    assert not index._load_space(space).approximate
    assert len(index.search("yoga", k=20)) == 5


def test_concurrent_searches_while_writing(tmp_path, embedder):
    ctx = Context(home=tmp_path / "home")
    index = ClipIndex(ctx, embedder=embedder)
    store(index, fake_video(tmp_path, "a.mp4", 1), TEXTS, embedder)
    errors: list[BaseException] = []
    results: list[int] = []

    def searcher():
        try:
            for _ in range(15):
                hits = index.search("a person doing yoga", k=1)
                results.append(hits[0].clip_id)
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=searcher) for _ in range(6)]
    for thread in threads:
        thread.start()
    for n in range(3):  # writes from this thread while the others search
        store(index, fake_video(tmp_path, f"w{n}.mp4", 10 + n), TEXTS[:3], embedder)
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [4] * 90
    assert index.stats()["clips"] == 14


def test_two_library_objects_see_each_others_writes(tmp_path, embedder):
    ctx = Context(home=tmp_path / "home")
    reader, writer = ClipIndex(ctx, embedder=embedder), ClipIndex(ctx, embedder=embedder)
    store(writer, fake_video(tmp_path, "a.mp4", 1), TEXTS[:2], embedder)
    assert len(reader.search("yoga", k=10)) == 2
    store(writer, fake_video(tmp_path, "b.mp4", 2), TEXTS, embedder)
    assert len(reader.search("yoga", k=10)) == 7


def test_unknown_video_filter_says_how_to_fix(tmp_path, embedder):
    index = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    store(index, fake_video(tmp_path, "a.mp4", 1), TEXTS[:1], embedder)
    with pytest.raises(BehaviorAgentError, match="behavior-agent index"):
        index.search("yoga", video=fake_video(tmp_path, "other.mp4", 3))


def test_overlap_rule_and_label_keys():
    assert spans_overlap(2.0, 3.0, 0.0, 10.0)
    assert not spans_overlap(10.0, 12.0, 0.0, 10.0)  # touching ends do not overlap
    assert spans_overlap(0.0, 0.0, 0.0, 0.0)  # a still image's detection in its clip
    assert spans_overlap(5.0, 5.0, 0.0, 10.0)
    assert label_key("Thumbs Up") == label_key("thumbs-up") == "thumbs_up"


def test_a_fresh_object_appends_without_duplicates(tmp_path, embedder, caplog):
    ctx = Context(home=tmp_path / "home")
    store(ClipIndex(ctx, embedder=embedder), fake_video(tmp_path, "a.mp4", 1), TEXTS, embedder)
    fresh = ClipIndex(ctx, embedder=embedder)  # has not loaded the FAISS file yet
    with caplog.at_level(logging.WARNING, logger="agent.index"):
        store(fresh, fake_video(tmp_path, "b.mp4", 2), TEXTS[:2], embedder)
    assert "rebuilding" not in caplog.text
    space = fresh._load_space(text_space(embedder.name))
    assert space.index.ntotal == 7
    hits = ClipIndex(ctx, embedder=embedder).search("yoga", k=20)
    assert len({(h.sha256, h.clip_id) for h in hits}) == len(hits) == 7
