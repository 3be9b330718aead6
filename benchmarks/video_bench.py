"""Video layer speed and memory: segment + 1 fps sampling vs a plain decord loop, same frames.

    .venv/bin/python benchmarks/video_bench.py [--video PATH] [--minutes 10]

Without --video it writes a synthetic 720p, 25 fps video (scene cuts every 37 s) to the temp
folder once and reuses it. Each side runs in a fresh subprocess so that peak RSS is its own.
Targets: our layer within 1.2x of the plain decode; peak RSS under 1.5 GB.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLE_FPS = 1.0
BATCH = 16


def make_video(path: Path, minutes: float) -> None:
    import cv2

    fps, width, height = 25, 1280, 720
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    for index in range(int(minutes * 60 * fps)):
        if index % (37 * fps) == 0:  # a cut: a new random background
            base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
        frame = cv2.resize(base, (width, height), interpolation=cv2.INTER_NEAREST)
        x = (index * 7) % (width - 100)
        cv2.rectangle(frame, (x, 300), (x + 100, 420), (255, 255, 255), -1)
        writer.write(frame)
    writer.release()


def run_ours(video: str) -> dict:
    from agent.context import Context
    from agent.video import segment

    ctx = Context(sample_fps=SAMPLE_FPS, decode_batch=BATCH, home=Path(tempfile.gettempdir()))
    frames = 0

    def consume(batch) -> None:
        nonlocal frames
        frames += len(batch)

    start = time.perf_counter()
    clips = segment(video, ctx, on_frames=consume)
    return {"seconds": time.perf_counter() - start, "frames": frames, "clips": len(clips)}


def run_plain(video: str) -> dict:
    import decord

    start = time.perf_counter()
    reader = decord.VideoReader(video, ctx=decord.cpu(0))
    starts = reader.get_frame_timestamp(list(range(len(reader))))[:, 0]
    targets = np.arange(0.0, starts[-1] + 1e-6, 1.0 / SAMPLE_FPS)
    indices = np.unique(np.searchsorted(starts, targets + 1e-6, side="right") - 1)
    frames = 0
    for offset in range(0, len(indices), BATCH):
        frames += len(reader.get_batch(indices[offset : offset + BATCH].tolist()).asnumpy())
    return {"seconds": time.perf_counter() - start, "frames": frames}


def child(side: str, video: str) -> None:
    result = run_ours(video) if side == "ours" else run_plain(video)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(side: str, video: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", side, "--video", str(video)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--child", choices=["ours", "plain"])
    args = parser.parse_args()
    if args.child:
        child(args.child, str(args.video))
        return
    video = args.video or Path(tempfile.gettempdir()) / f"bench_720p_{args.minutes:g}min.mp4"
    if not video.exists():
        print(f"writing {video} ({args.minutes:g} min, 1280x720, 25 fps) ...", flush=True)
        make_video(video, args.minutes)

    from agent.context import Context
    from agent.video import probe

    duration_s = probe(video, Context.from_env()).duration_s
    plain = measure("plain", video)
    ours = measure("ours", video)
    ratio = ours["seconds"] / plain["seconds"]
    print(f"video: {video} ({duration_s:.0f} s), sampling {SAMPLE_FPS:g} fps, batch {BATCH}")
    print(f"{'side':<28}{'seconds':>9}{'frames':>8}{'x real time':>13}{'peak RSS MB':>13}")
    for name, row in (("plain decord loop", plain), ("segment + sampling (ours)", ours)):
        speed = duration_s / row["seconds"]
        print(
            f"{name:<28}{row['seconds']:>9.1f}{row['frames']:>8}{speed:>12.1f}x"
            f"{row['peak_rss_mb']:>13.0f}"
        )
    print(f"ratio ours / plain: {ratio:.2f} (target <= 1.2); clips: {ours['clips']}")
    print(f"peak RSS ours: {ours['peak_rss_mb']:.0f} MB (target < 1536 MB)")


if __name__ == "__main__":
    main()
