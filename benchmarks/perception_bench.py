"""Speed of the offline perception at the default sampling rate, against a bare mediapipe floor.

For each clip: the frames sampled at `Context.sample_fps` are decoded once; the floor is a
bare mediapipe holistic loop over exactly those frames (same settings as the Perceiver); the
pipeline is `run_perception` over the same frames (mediapipe + features + rules + smoothing)
and, separately, `perceive_video` end to end (decoding included). Ratio = pipeline / floor.
Floor and pipeline alternate `--repeat` times and the fastest of each counts, because a shared
machine's load varies from second to second.

    .venv/bin/python benchmarks/perception_bench.py [--media DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import mediapipe as mp
import numpy as np

from agent.context import Context
from agent.knowledge import load_knowledge_base
from agent.perception import Perceiver, perceive_video
from agent.perception.runner import run_perception
from agent.video import iter_frames, probe

DEFAULT_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
CLIPS = (
    "scene_pedestrians_walking_opencv_vtest.avi",
    "gesture_thumb_up_mediapipe_samples_test_video.mp4",
)


def bare_loop(frames: list[np.ndarray]) -> float:
    with mp.solutions.holistic.Holistic(
        static_image_mode=False, model_complexity=1, refine_face_landmarks=True
    ) as holistic:
        started = time.perf_counter()
        for frame in frames:
            holistic.process(frame)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    ctx = Context.from_env()
    kb = load_knowledge_base(ctx)
    print(f"sample_fps={ctx.sample_fps}  decode_max_side={ctx.decode_max_side}")
    print(
        f"{'clip':<48} {'frames':>6} {'size':>9} {'floor fps':>9} {'pipe fps':>8} "
        f"{'ratio':>6} {'e2e x rt':>8} {'e2e fps':>7}"
    )
    with Perceiver(ctx) as perceiver:
        for name in CLIPS:
            path = args.media / name
            info = probe(path, ctx)
            batches = list(iter_frames(path, fps=ctx.sample_fps, ctx=ctx))
            frames = [f for b in batches for f in b.frames]
            floors, pipes = [], []
            for _ in range(args.repeat):
                floors.append(bare_loop(frames))
                started = time.perf_counter()
                run_perception(batches, perceiver, kb, ctx, duration_s=info.duration_s)
                pipes.append(time.perf_counter() - started)
            floor_s, pipe_s = min(floors), min(pipes)
            started = time.perf_counter()
            perceive_video(path, ctx, kb, perceiver=perceiver)
            e2e_s = time.perf_counter() - started
            n = len(frames)
            size = f"{frames[0].shape[1]}x{frames[0].shape[0]}"
            print(
                f"{name:<48} {n:>6} {size:>9} {n / floor_s:>9.1f} {n / pipe_s:>8.1f} "
                f"{pipe_s / floor_s:>6.2f} {info.duration_s / e2e_s:>7.1f}x {n / e2e_s:>7.1f}"
            )


if __name__ == "__main__":
    main()
