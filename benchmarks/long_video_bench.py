"""Long recordings: index the shared pedestrians clip looped to 10, 30 and 120 minutes.

Each length is built once from ../shared/media by looping (OpenCV writes it, so no ffmpeg is
needed), indexed in a fresh library in a subprocess of its own (so that each peak RSS is that
length's alone), and the table gives wall time, x real time and peak RSS per length, plus the
latency of `ask` on the longest library. Same content at every length, so only the length
changes.

    python benchmarks/long_video_bench.py                 # 10, 30 and 120 minutes
    python benchmarks/long_video_bench.py --minutes 2 10  # chosen lengths
    python benchmarks/long_video_bench.py --source ../shared/media/other.mp4 --max-side 1280
    python benchmarks/long_video_bench.py --minutes 120 --kill-at 0.7  # + kill -9 and resume

Built recordings are kept in --work (default: a folder under the system temp dir) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "media" / "scene_pedestrians_walking_opencv_vtest.avi"
QUESTION = "When do people walk?"


def loop_video(
    source: str | os.PathLike,
    out: str | os.PathLike,
    duration_s: float,
    *,
    max_side: int | None = None,
    codec: str = "mp4v",
) -> Path:
    """`source` played over and over until `duration_s` (at its own fps), written to `out`
    with OpenCV; `max_side` scales the frames so that their long side is that (e.g. 1280 makes
    a 720p-sized recording from a smaller source). An existing `out` is kept as it is."""
    out = Path(out)
    if out.is_file() and out.stat().st_size > 0:
        return out
    reader = cv2.VideoCapture(str(source))
    if not reader.isOpened():
        raise RuntimeError(f"OpenCV cannot read {source}")
    fps = reader.get(cv2.CAP_PROP_FPS) or 25.0
    frames = []
    while True:
        ok, frame = reader.read()
        if not ok:
            break
        if max_side is not None:
            scale = max_side / max(frame.shape[:2])
            size = tuple(int(round(side * scale / 2)) * 2 for side in frame.shape[1::-1])
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        # Encoded once, the loop re-encodes the same frames: a JPEG keeps the source small in
        # memory (an 80 s clip at 10 fps is 800 frames).
        frames.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])[1])
    reader.release()
    if not frames:
        raise RuntimeError(f"{source} has no readable frames")
    height, width = cv2.imdecode(frames[0], cv2.IMREAD_COLOR).shape[:2]
    partial = out.with_suffix(".partial" + out.suffix)
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {partial} with codec {codec}")
    for index in range(int(round(duration_s * fps))):
        writer.write(cv2.imdecode(frames[index % len(frames)], cv2.IMREAD_COLOR))
    writer.release()
    partial.rename(out)
    return out


# The indexing run of one length, in a process of its own: its peak RSS is that length's alone.
# It also notes the peak RSS so far at the end of each stretch, for the growth per hour.
_CHILD = """
import json, resource, sys, time
from agent.context import Context
from agent.indexing import index_video
ctx = Context.from_env(home=sys.argv[2])
peak_by_stretch = {}
def note_peak(event):
    if event["stage"] == "perceive" and ctx.stretch_s > 0:
        stretch = int(event["done"] / ctx.sample_fps // ctx.stretch_s)
        peak_by_stretch[stretch] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
record = index_video(sys.argv[1], ctx, progress=note_peak)
print(json.dumps({
    "stretch_s": ctx.stretch_s,
    "peak_by_stretch_mb": [peak_by_stretch[k] for k in sorted(peak_by_stretch)],
    "wall_s": time.perf_counter() - started,
    "duration_s": record.duration_s,
    "clips": record.clip_count,
    "detections": record.detection_count,
    "status": record.status,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

_ASK = """
import json, sys, time
from agent.api import ask
from agent.context import Context
ctx = Context.from_env(home=sys.argv[2])
times = []
for _ in range(3):
    started = time.perf_counter()
    answer = ask(sys.argv[1], sys.argv[3], ctx=ctx)
    times.append(time.perf_counter() - started)
print(json.dumps({"first_s": times[0], "best_s": min(times), "evidence": len(answer.evidence)}))
"""


# An index that prints its perception progress, one JSON line per event, to be killed part-way.
_KILLABLE = """
import json, sys
from agent.context import Context
from agent.indexing import index_video
def show(event):
    if event["stage"] == "perceive":
        print(json.dumps({"done": event["done"], "total": event["total"]}), flush=True)
index_video(sys.argv[1], Context.from_env(home=sys.argv[2]), progress=show)
"""

# The resumed run: how far its checkpoints took it, and then the rest of the index.
_RESUME = """
import json, resource, sys, time
from agent.context import Context
from agent.index import ClipIndex
from agent.indexing import index_video
from agent.indexing.stretches import plan_stretches
from agent.video import probe
ctx = Context.from_env(home=sys.argv[2])
info = probe(sys.argv[1], ctx)
with ClipIndex(ctx) as library:
    stored = library.video(info.sha256)
    checkpointed_s = (stored.checkpointed_s or 0.0) if stored is not None else 0.0
    status = stored.status if stored is not None else "absent"
started = time.perf_counter()
record = index_video(sys.argv[1], ctx)
print(json.dumps({
    "status_before": status,
    "checkpointed_s": checkpointed_s,
    "stretches": len(plan_stretches(info, ctx)),
    "resume_wall_s": time.perf_counter() - started,
    "status": record.status,
    "duration_s": record.duration_s,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def kill_and_resume(video: Path, home: Path, at: float) -> dict:
    """Index `video`, kill -9 the index when perception reaches `at` (a share of the frames),
    then index again: how much of the video the restart had to do again."""
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, str(video), str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    reached = 0.0
    for line in child.stdout:
        event = json.loads(line)
        reached = event["done"] / max(1, event["total"])
        if reached >= at:
            child.kill()
            break
    child.wait()
    if reached < at:
        raise RuntimeError(f"the index ended at {reached:.0%} before it could be killed")
    resumed = run_child(_RESUME, str(video), str(home))
    resumed["killed_at"] = reached
    return resumed


def growth_mb_per_hour(result: dict) -> float | None:
    """Slope (MB per hour of video) of the peak RSS at the end of each stretch, the first
    stretch (models loading) left out; None below three stretches to fit."""
    peaks = result["peak_by_stretch_mb"][1:]
    if len(peaks) < 3:
        return None
    hours = (np.arange(len(peaks)) + 2) * result["stretch_s"] / 3600
    return float(np.polyfit(hours, peaks, 1)[0])


def run_child(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter; its last stdout line is a JSON object."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 30.0, 120.0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--max-side", type=int, default=None, help="scale the source's frames")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "long_video")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument(
        "--kill-at",
        type=float,
        default=None,
        help="also index the longest recording again, kill -9 it at this share (e.g. 0.7) "
        "and restart it: how much the restart re-does",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for minutes in args.minutes:
        tag = f"{args.source.stem}_{minutes:g}min" + (f"_{args.max_side}" if args.max_side else "")
        video = loop_video(
            args.source, args.work / f"{tag}.mp4", minutes * 60, max_side=args.max_side
        )
        home = Path(tempfile.mkdtemp(prefix=f"{tag}_", dir=args.work))
        print(f"indexing {video.name} into {home} ...", file=sys.stderr, flush=True)
        result = run_child(_CHILD, str(video), str(home))
        rows.append((minutes, video, home, result))
        print(f"  {json.dumps(result)}", file=sys.stderr, flush=True)
    asked = None
    if rows:
        minutes, video, home, _ = max(rows, key=lambda row: row[0])
        asked = (minutes, run_child(_ASK, str(video), str(home), args.question))
    killed = None
    if rows and args.kill_at is not None:
        minutes, video, _, _ = max(rows, key=lambda row: row[0])
        home = Path(tempfile.mkdtemp(prefix=f"{video.stem}_killed_", dir=args.work))
        print(f"indexing {video.name} again, killed at {args.kill_at:.0%} ...", file=sys.stderr)
        killed = (minutes, kill_and_resume(video, home, args.kill_at))
        print(f"  {json.dumps(killed[1])}", file=sys.stderr, flush=True)
    print(f"\nLong recordings ({args.source.name} looped; {os.cpu_count()} cores)\n")
    print(
        "| length | index wall time | x real time | peak RSS | peak growth per hour "
        "| clips | detections | status |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for minutes, _, _, r in rows:
        growth = growth_mb_per_hour(r)
        print(
            f"| {minutes:g} min | {r['wall_s']:.0f} s | {r['duration_s'] / r['wall_s']:.1f}x "
            f"| {r['peak_rss_mb'] / 1024:.2f} GB "
            f"| {'–' if growth is None else f'{growth:+.0f} MB'} "
            f"| {r['clips']} | {r['detections']} | {r['status']} |"
        )
    if rows:
        print(
            "\nPeak growth per hour: slope of the peak RSS at the end of each stretch "
            "(the first left out), fitted over the stretches of that run."
        )
    if asked is not None:
        minutes, a = asked
        print(
            f"\n`ask` on the {minutes:g}-minute library ({args.question!r}): first answer "
            f"{a['first_s']:.2f} s (process start, models and index load included in the "
            f"library open), best of 3 {a['best_s']:.2f} s, {a['evidence']} evidence items"
        )

    if killed is not None:
        minutes, k = killed
        redone = max(0.0, k["killed_at"] - k["checkpointed_s"] / k["duration_s"])
        print(
            f"\nKilled (-9) at {k['killed_at']:.1%} of the {minutes:g}-minute index, status "
            f"{k['status_before']!r}; the restart resumed from {k['checkpointed_s']:.0f} s "
            f"({k['stretches']} stretches) and re-did {redone:.1%} of the video; it ended "
            f"{k['status']!r} after {k['resume_wall_s']:.0f} s, peak RSS "
            f"{k['peak_rss_mb'] / 1024:.2f} GB"
        )


if __name__ == "__main__":
    main()
