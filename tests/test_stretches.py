"""Long videos in stretches: the plan, frames split exactly, merging across boundaries."""

import numpy as np

from agent.context import Context
from agent.indexing import StretchResult, merge_stretches, plan_stretches
from agent.state import Detection, ObjectSighting, VideoInfo
from agent.video import ShotCuts, iter_frames, iter_stretch, windows_between_cuts
from tests.synthetic import cut_times, write_video


def info(duration_s: float) -> VideoInfo:
    return VideoInfo(
        path="x.mp4",
        duration_s=duration_s,
        fps=10.0,
        frame_count=int(duration_s * 10),
        width=64,
        height=48,
        sha256="0" * 64,
    )


def test_the_plan_covers_the_video_and_a_short_tail_joins_the_stretch_before():
    ctx = Context(stretch_s=300.0)
    assert plan_stretches(info(80.0), ctx) == [(0.0, 80.0)]
    assert plan_stretches(info(700.0), ctx) == [(0.0, 300.0), (300.0, 600.0), (600.0, 700.0)]
    # 20 s left over is under a quarter of a stretch: it joins the last one.
    assert plan_stretches(info(620.0), ctx) == [(0.0, 300.0), (300.0, 620.0)]
    assert plan_stretches(info(7200.0), Context(stretch_s=0.0)) == [(0.0, 7200.0)]


def test_stretches_get_the_frames_and_cuts_of_one_pass(tmp_path):
    scenes = [3.0, 4.0, 5.0]
    video = write_video(tmp_path / "cuts.mp4", scenes, fps=10.0, size=(96, 64))
    ctx = Context(sample_fps=2.0, decode_max_side=96)
    whole = np.concatenate([b.timestamps_s for b in iter_frames(video, fps=2.0, ctx=ctx)])
    parts, results = [], []
    # The boundary at 7 s is a cut: only the histograms on both sides can find it.
    for index, (start_s, end_s) in enumerate([(0.0, 7.0), (7.0, 12.0)]):
        cuts = ShotCuts(ctx.shot_threshold)
        for batch in iter_stretch(video, start_s, end_s if index == 0 else np.inf, ctx):
            parts.append(batch.timestamps_s)
            cuts.add(batch)
        results.append(
            StretchResult(
                index=index,
                start_s=start_s,
                end_s=end_s,
                cut_times_s=cuts.times_s,
                first_s=cuts.first_s,
                first_histogram=cuts.first.tolist(),
                last_histogram=cuts.last.tolist(),
            )
        )
    assert np.array_equal(np.concatenate(parts), whole)
    clips, _, _ = merge_stretches(results, info(12.0), Context(clip_length_s=4.0))
    expected = windows_between_cuts(cut_times(scenes), 12.0, Context(clip_length_s=4.0))
    assert clips == expected and {c.start_s for c in clips} >= {3.0, 7.0}


def smile(start_s: float, end_s: float, confidence: float, person_id: int = 0) -> Detection:
    return Detection(
        kind="emotion",
        label="happy",
        start_s=start_s,
        end_s=end_s,
        confidence=confidence,
        person_id=person_id,
        cues=f"AU12 {confidence}",
    )


def test_a_detection_cut_by_a_boundary_is_one_again_and_people_are_numbered_apart():
    walker = Detection(kind="action", label="walk", start_s=10.0, end_s=20.0, confidence=0.7)
    first = StretchResult(
        index=0,
        start_s=0.0,
        end_s=300.0,
        detections=[
            smile(100.0, 110.0, 0.8),
            smile(290.0, 299.5, 0.6),
            walker.model_copy(update={"person_id": 2}),
        ],
        objects=[
            ObjectSighting(
                label="cup",
                start_s=280.0,
                end_s=299.0,
                score=0.5,
                bbox=[0, 0, 1, 1],
                best_s=290.0,
                frames=19,
            )
        ],
    )
    second = StretchResult(
        index=1,
        start_s=300.0,
        end_s=600.0,
        detections=[
            smile(300.0, 309.5, 0.9),
            walker.model_copy(update={"start_s": 310.0, "end_s": 320.0, "person_id": 1}),
        ],
        objects=[
            ObjectSighting(
                label="cup",
                start_s=300.0,
                end_s=350.0,
                score=0.9,
                bbox=[0.5, 0.5, 0.1, 0.1],
                best_s=320.0,
                frames=50,
                count=2,
            )
        ],
    )
    # Given out of order, as workers may finish.
    _, detections, objects = merge_stretches([second, first], info(600.0), Context())
    smiles = [(d.start_s, d.end_s, d.confidence) for d in detections if d.label == "happy"]
    # 9.5 s at 0.6 and 9.5 s at 0.9 weigh equally: one smile of 0.75 across the boundary.
    assert smiles == [(100.0, 110.0, 0.8), (290.0, 309.5, 0.75)]
    walkers = sorted(d.person_id for d in detections if d.label == "walk")
    assert walkers == [2, 3]  # stretch 2's person 1 is not stretch 1's person 1
    (cup,) = objects
    assert (cup.start_s, cup.end_s, cup.score, cup.best_s, cup.frames, cup.count) == (
        280.0,
        350.0,
        0.9,
        320.0,
        69,
        2,
    )
