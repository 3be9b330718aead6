"""Objects seen over time: per-frame detector output → one sighting per label per stretch,
stored with its box in the clip library and named in the clip's embedded text."""

import pytest

from agent.context import Context
from agent.index import ClipIndex
from agent.indexing.texts import clip_text
from agent.perception.learned.objects import SeenObject
from agent.perception.sightings import object_sightings
from agent.state import Clip, ObjectSighting
from tests.test_index import TEXTS, fake_video, store


def cup(score: float, x: float = 0.5) -> SeenObject:
    return SeenObject("cup", score, (x, 0.4, 0.1, 0.1))


def person(score: float = 0.8) -> SeenObject:
    return SeenObject("person", score, (0.1, 0.1, 0.3, 0.8))


def test_a_label_seen_again_within_the_gap_continues_its_stretch():
    frames = [
        (0.0, [cup(0.5), person()]),
        (0.5, None),  # the detector did not run on this frame: neither continues nor ends
        (1.0, [cup(0.9, x=0.6), person(), person(0.6)]),
        (2.0, []),  # ran, saw nothing: within the gap the stretch survives one miss
        (3.0, [cup(0.4)]),
        (7.0, [cup(0.7)]),  # 4 s after the last sighting: a new stretch
    ]
    found = object_sightings(frames, gap_s=2.5)
    cups = [s for s in found if s.label == "cup"]
    assert [(s.start_s, s.end_s, s.frames) for s in cups] == [(0.0, 3.0, 3), (7.0, 7.0, 1)]
    # The best frame's score, box and time; not the last frame's.
    assert (cups[0].score, cups[0].bbox, cups[0].best_s) == (0.9, [0.6, 0.4, 0.1, 0.1], 1.0)
    (people,) = [s for s in found if s.label == "person"]
    assert (people.start_s, people.end_s, people.count) == (0.0, 1.0, 2)


def test_a_still_has_its_sightings_at_zero():
    (found,) = object_sightings([(0.0, [cup(0.8)])], gap_s=2.5, still=True)
    assert (found.start_s, found.end_s, found.best_s) == (0.0, 0.0, 0.0)
    assert object_sightings([(0.0, None)], gap_s=2.5) == []


def test_clip_text_names_the_objects_in_view():
    clip = Clip(clip_id=0, start_s=0.0, end_s=10.0)
    objects = [
        ObjectSighting(label="person", start_s=0, end_s=9, score=0.9, bbox=[0, 0, 1, 1],
                       best_s=1, count=3),
        ObjectSighting(label="cup", start_s=2, end_s=4, score=0.7, bbox=[0, 0, 1, 1],
                       best_s=3, count=2),
        ObjectSighting(label="cell phone", start_s=5, end_s=6, score=0.6, bbox=[0, 0, 1, 1],
                       best_s=5),
    ]  # fmt: skip
    text = clip_text(clip, "A caption.", [], None, objects)
    assert text == (
        "No gesture, facial expression or action was detected. "
        "In view: cup (up to 2), cell phone, people, up to 3 at once. A caption."
    )
    assert "In view" not in clip_text(clip, "", [], None, [])


@pytest.fixture
def index(tmp_path):
    from agent.embed import load_text_embedder

    embedder = load_text_embedder(Context())
    library = ClipIndex(Context(home=tmp_path / "home"), embedder=embedder)
    yield library, embedder
    library.close()


def test_the_library_stores_sightings_filters_them_and_removes_them(index, tmp_path):
    library, embedder = index
    seen = [
        ObjectSighting(label="cup", start_s=2.0, end_s=6.0, score=0.8,
                       bbox=[0.1, 0.2, 0.3, 0.4], best_s=3.0, count=1, frames=5),
        ObjectSighting(label="person", start_s=12.0, end_s=18.0, score=0.9,
                       bbox=[0.0, 0.0, 0.5, 1.0], best_s=14.0, count=2, frames=7),
    ]  # fmt: skip
    video = fake_video(tmp_path, "a.mp4", 1)
    record = store(library, video, TEXTS[:2], embedder, objects=seen)
    assert library.objects(record.sha256) == seen  # every field back, boxes included
    assert [s.label for s in library.objects(video, start_s=10.0, end_s=20.0)] == ["person"]
    assert library.stats()["objects"] == 2
    # Re-indexing replaces the sightings; removing the video removes them.
    store(library, video, TEXTS[:2], embedder, objects=seen[:1])
    assert [s.label for s in library.objects(record.sha256)] == ["cup"]
    assert library.remove(record.sha256)
    assert library.objects(record.sha256) == [] and library.stats()["objects"] == 0
