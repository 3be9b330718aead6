"""`index --ray` on the session's real local Ray cluster: the same library as a local run (a
long video's stretches as tasks of their own), the models loaded on the workers only, a killed
worker's task retried and written once, an interrupted run resumed inside a video, and one
clear error for a cluster that cannot be reached."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.cluster import split_address
from agent.context import Context
from agent.errors import ConfigError
from agent.index import ClipIndex
from agent.indexing.ray_index import index_with_ray
from tests.synthetic import write_video

# Short ones, to keep the Ray tests quick: a still, a 1.9 s clip, and the 7.8 s thumbs-up
# video, which 2 s stretches make a "long" one of 4 stretches.
VIDEOS = (
    "gesture_like_hagrid_gestures_png_crop.png",
    "emotion_happy_cremad_1001_DFA_HAP_XX.mp4",
    "gesture_thumb_up_mediapipe_samples_test_video.mp4",
)
LONG = 2  # VIDEOS[LONG] is indexed in STRETCHES stretches
STRETCHES = 4
ENV = {
    "BEHAVIOR_AGENT_CLIP_LENGTH_S": "2",
    "BEHAVIOR_AGENT_SAMPLE_FPS": "2",
    "BEHAVIOR_AGENT_STRETCH_S": "2",
}
QUERIES = ("thumbs up", "a smiling happy face", "a raised hand")
# Modules that only loading a model imports: the driver of a --ray run must not hold them.
MODEL_MODULES = (
    "mediapipe",
    "onnxruntime",
    "ai_edge_litert",
    "agent.perception.learned.expression",
    "agent.perception.learned.objects",
    "agent.perception.landmarks",
)
# The driver of a --ray run in its own process: runs the command, then says what it imported.
DRIVER = f"""
import json, sys
from agent.cli import main
from agent.context import Context
from agent.embed import load_text_embedder
sys.argv = ["behavior-agent", *sys.argv[1:]]
try:
    main()
except SystemExit as done:
    code = done.code
held = [m for m in {MODEL_MODULES!r} if m in sys.modules]
loaded = load_text_embedder(Context.from_env()).loaded
report = {{"exit": code, "modules": held, "embedder": loaded}}
print("DRIVER " + json.dumps(report), file=sys.stderr)
"""

pytestmark = pytest.mark.slow


def cli(home: Path, *args: str):
    env = {"BEHAVIOR_AGENT_HOME": str(home), **ENV}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def settings(home: Path) -> Context:
    return Context(home=home, clip_length_s=2.0, sample_fps=2.0, stretch_s=2.0)


@pytest.fixture(scope="module")
def videos(shared_media) -> list[Path]:
    return [shared_media / name for name in VIDEOS]


@pytest.fixture(scope="module")
def local_home(tmp_path_factory, videos) -> Path:
    home = tmp_path_factory.mktemp("local")
    result = cli(home, "index", "--json", *map(str, videos))
    assert result.exit_code == 0, result.output
    return home


def driver_run(home: Path, ray_cluster, *args: str) -> tuple[dict, dict]:
    """`behavior-agent *args` in a process of its own, joined to the session's cluster."""
    address = ray_cluster.get_runtime_context().gcs_address
    env = {**os.environ, "BEHAVIOR_AGENT_HOME": str(home), "RAY_ADDRESS": address, **ENV}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args], env=env, capture_output=True, text=True, timeout=600
    )
    report = [line for line in done.stderr.splitlines() if line.startswith("DRIVER ")]
    assert report, done.stderr[-3000:]
    return json.loads(done.stdout), json.loads(report[-1].removeprefix("DRIVER "))


def library_rows(home: Path) -> list[tuple]:
    listing = json.loads(cli(home, "library", "--json").stdout)["videos"]
    return sorted(
        (v["sha256"], v["status"], v["clip_count"], v["detection_count"], v["duration_s"])
        for v in listing
    )


def hits(home: Path, query: str) -> list[tuple]:
    result = cli(home, "search", "--json", "--k", "4", query)
    assert result.exit_code == 0, result.output
    return [
        (h["sha256"], h["clip_id"], h["start_s"], h["end_s"], h["text"], round(h["score"], 5))
        + (sorted((d["label"], d["start_s"]) for d in h["detections"]),)
        for h in json.loads(result.stdout)["hits"]
    ]


def row_counts(home: Path) -> dict[str, int]:
    with sqlite3.connect(home / "library.sqlite") as conn:
        tables = ("videos", "clips", "detections", "objects", "vectors")
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}


def test_a_library_indexed_on_ray_is_the_local_one(tmp_path, videos, local_home, ray_cluster):
    summary, driver = driver_run(
        tmp_path, ray_cluster, "index", "--ray", "--json", *map(str, videos)
    )
    assert driver["exit"] == 0 and summary["failed"] == []
    assert library_rows(tmp_path) == library_rows(local_home)
    assert row_counts(tmp_path) == row_counts(local_home)
    for query in QUERIES:
        assert hits(tmp_path, query) == hits(local_home, query), query
    # The models were loaded on the workers, once per worker process, never on the driver.
    assert driver["modules"] == [] and driver["embedder"] is False
    workers = [item["worker"] for item in summary["indexed"]]
    assert all(w["setups"] == 1 and w["learned_loads"] == 1 for w in workers)
    # The long video's stretches ran as tasks of their own; the short ones as one task each.
    tasks = {Path(item["video"]).name: item.get("stretch_tasks", 0) for item in summary["indexed"]}
    assert tasks == {VIDEOS[0]: 0, VIDEOS[1]: 0, VIDEOS[LONG]: STRETCHES}
    # A second run skips both videos, and starts no task.
    again = json.loads(cli(tmp_path, "index", "--ray", "--json", *map(str, videos)).stdout)
    assert [item["reused"] for item in again["indexed"]] == [True] * len(VIDEOS)
    assert all("worker" not in item for item in again["indexed"])


class KillFirstAttempt:
    """Perception session factory that kills its own worker process the first time it runs
    anywhere (the marker file is made atomically); later attempts perceive for real."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, perceiver, kb, ctx, **options):
        try:
            handle = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            from agent.perception.session import PerceptionSession

            return PerceptionSession(perceiver, kb, ctx, **options)
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_worker_is_retried_and_its_video_written_once(
    tmp_path, videos, local_home, ray_cluster
):
    marker = tmp_path / "killed.pid"
    home = tmp_path / "home"
    with ClipIndex(settings(home)) as library:
        done = list(
            index_with_ray(
                videos, settings(home), library, workers=2, session_factory=KillFirstAttempt(marker)
            )
        )
    assert [d.error for d in done] == [None] * len(VIDEOS)
    killed = int(marker.read_text())
    assert killed not in {d.worker.pid for d in done}  # the retry ran in another process
    assert library_rows(home) == library_rows(local_home)
    assert row_counts(home) == row_counts(local_home)  # nothing lost, nothing written twice


class StopAfterStretches:
    """A progress callback that interrupts the driver (as Ctrl-C does) once `count` stretches
    have been checkpointed."""

    def __init__(self, count: int) -> None:
        self.count, self.seen = count, 0

    def __call__(self, text: str) -> None:
        if "stretch" in text and text.rstrip().endswith(")") and " done " in text:
            self.seen += 1
            if self.seen == self.count:
                raise KeyboardInterrupt


def test_an_interrupted_run_resumes_inside_a_long_video(tmp_path, videos, local_home, ray_cluster):
    home = tmp_path / "home"
    with ClipIndex(settings(home)) as library, pytest.raises(KeyboardInterrupt):
        for _ in index_with_ray(videos, settings(home), library, progress=StopAfterStretches(2)):
            pass
    with ClipIndex(settings(home)) as library:
        record = library.video(videos[LONG])
        assert record.status == "indexing"
        assert library.stretch_progress(record.sha256)[0] == 2  # checkpointed, not lost
    copy = tmp_path / "copy.png"  # the same content as videos[0] at another path
    shutil.copyfile(videos[0], copy)
    with ClipIndex(settings(home)) as library:
        resumed = list(index_with_ray([*videos, copy], settings(home), library, workers=2))
    assert [d.error for d in resumed] == [None] * (len(VIDEOS) + 1)
    outcome = {d.path: d for d in resumed}
    assert outcome[copy].record.reused
    assert outcome[videos[LONG]].stretch_tasks == STRETCHES - 2  # only the missing stretches
    assert library_rows(home) == library_rows(local_home)
    assert row_counts(home) == row_counts(local_home)


def test_an_unreachable_cluster_is_one_clear_error(tmp_path):
    video = write_video(tmp_path / "a.mp4", [1.0])
    env = {
        **os.environ,
        "BEHAVIOR_AGENT_HOME": str(tmp_path / "home"),
        "RAY_ADDRESS": "127.0.0.1:9",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "behavior-agent"), "index", "--ray", str(video)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert "Cannot reach the Ray cluster at 127.0.0.1:9" in errors[0]
    assert "ray start --head" in errors[0] and "unset RAY_ADDRESS" in errors[0]


def test_cluster_addresses_are_read_as_ray_writes_them():
    assert split_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert split_address("ray://head.lab:10001") == ("head.lab", 10001)
    assert split_address("head.lab") == ("head.lab", 6379)
    with pytest.raises(ConfigError, match="host:port of the head node"):
        split_address("head.lab:port")
