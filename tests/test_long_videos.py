"""Long recordings on real media: an index killed part-way resumes after its last finished
stretch and ends as an uninterrupted run does; peak memory does not grow with the length."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from agent.context import Context
from agent.index import ClipIndex
from agent.indexing import index_video
from agent.indexing import pipeline as pipeline_module
from benchmarks.long_video_bench import loop_video

pytestmark = pytest.mark.slow
PEDESTRIANS = "scene_pedestrians_walking_opencv_vtest.avi"
# Small frames and short stretches keep these tests quick; the logic is the same as at 300 s.
SETTINGS = {"decode_max_side": 384, "stretch_s": 4.0}


@pytest.fixture(scope="module")
def piece(shared_media, tmp_path_factory):
    """The first 8 s of the pedestrians clip (people walking, several at once)."""
    folder = tmp_path_factory.mktemp("long")
    return loop_video(shared_media / PEDESTRIANS, folder / "piece.mp4", 8.0)


def env_for(home) -> dict[str, str]:
    env = {**os.environ, "BEHAVIOR_AGENT_HOME": str(home)}
    env.update({f"BEHAVIOR_AGENT_{k.upper()}": str(v) for k, v in SETTINGS.items()})
    return env


def checkpoints(home) -> int:
    try:
        with sqlite3.connect(home / "library.sqlite", timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM stretches").fetchone()[0]
    except sqlite3.OperationalError:  # the library is not made yet
        return 0


def library_contents(ctx: Context, video) -> dict:
    with ClipIndex(ctx) as library:
        return {
            "clips": [(c.start_s, c.end_s, c.shot_index, c.text) for c in library.clips(video)],
            "detections": [d.model_dump() for d in library.detections(video)],
            "objects": [o.model_dump() for o in library.objects(video)],
        }


def test_a_killed_index_resumes_after_its_last_stretch_and_ends_as_one_run(piece, tmp_path):
    video = loop_video(piece, tmp_path / "twenty.mp4", 20.0)  # 5 stretches of 4 s
    killed_home = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "index", str(video)],
        env=env_for(killed_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 600
    while checkpoints(killed_home) < 2:
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no stretch finished in 10 minutes"
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()
    done_at_kill = checkpoints(killed_home)
    assert 2 <= done_at_kill < 5
    ctx = Context(home=killed_home, **SETTINGS)
    with ClipIndex(ctx) as library:
        # Readable meanwhile, and the half-indexed video says so.
        half = library.video(video)
        assert half.status == "indexing" and library.clips(video) == []
        assert half.checkpointed_s == pytest.approx(4.0 * done_at_kill)

    perceived: list[int] = []
    real = pipeline_module.perceive_stretch

    def counting(*args, **kwargs):
        perceived.append(kwargs["index"])
        return real(*args, **kwargs)

    events: list[dict] = []
    pipeline_module.perceive_stretch = counting
    try:
        record = index_video(video, ctx, progress=events.append)
    finally:
        pipeline_module.perceive_stretch = real
    assert record.status == "complete"
    # Only the stretches not checkpointed were perceived again.
    assert perceived == list(range(done_at_kill, 5))
    assert any(f"{done_at_kill} of 5 stretches already done" in e["message"] for e in events)
    assert checkpoints(killed_home) == 0  # the checkpoints go once the video is complete

    whole = Context(home=tmp_path / "whole", **SETTINGS)
    index_video(video, whole)
    resumed, uninterrupted = library_contents(ctx, video), library_contents(whole, video)
    assert resumed == uninterrupted
    assert uninterrupted["detections"] and uninterrupted["clips"]


_PEAK = """
import json, resource, sys
from agent.context import Context
from agent.indexing import index_video
record = index_video(sys.argv[1], Context.from_env())
print(json.dumps({"clips": record.clip_count,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_of_index(video, home) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(video)],
        env=env_for(home),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_length_of_a_looped_recording(piece, tmp_path):
    short = peak_of_index(loop_video(piece, tmp_path / "short.mp4", 16.0), tmp_path / "a")
    long = peak_of_index(loop_video(piece, tmp_path / "long.mp4", 64.0), tmp_path / "b")
    assert long["clips"] > short["clips"]  # the longer one really is longer
    # Four times the video, the same peak (a little allocator noise aside); before stretches
    # and the decoder fix the peak grew by hundreds of MB per minute of video.
    assert long["peak_mb"] - short["peak_mb"] < 75, (short, long)
