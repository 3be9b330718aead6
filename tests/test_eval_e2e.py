"""End to end on the real labelled media: perception and the tiny VLM on tasks built from
../shared/media/manifest.csv, through run_task and the `behavior-agent eval` command."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.context import Context
from agent.evaluation.predictors import VLMPredictor
from agent.evaluation.runner import run_task
from agent.evaluation.tasks import load_task

LABEL_MAP = {
    "anger": "angry",
    "like": "thumbs_up",
    "peace": "victory",
    "one": "index_up",
    "palm": "open_palm",
    "thumb_up": "thumbs_up",
    "closed_fist": "fist",
}
CLI = str(Path(sys.executable).parent / "behavior-agent")
QUIET = lambda text: None  # noqa: E731


def shared_task(
    folder: Path, manifest, shared_media: Path, kind: str, backend: str, settings: str = "{}"
) -> Path:
    """A classification task file over the manifest rows of one kind (written by the test)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [r for r in manifest if r["label_type"] == kind]
    lines = ["media,label,start_s,end_s"]
    lines += [f"{r['file']},{r['label']},{r['start_s']},{r['end_s']}" for r in rows]
    (folder / f"{kind}.csv").write_text("\n".join(lines) + "\n")
    path = folder / f"{kind}.yaml"
    path.write_text(
        f"name: shared_{kind}\ntype: classification\nkind: {kind}\n"
        f"annotations: {kind}.csv\nmedia_root: {shared_media}\n"
        f"label_map: {json.dumps(LABEL_MAP)}\n"
        f"backend:\n  name: {backend}\n  num_frames: 4\n  settings: {settings}\n"
    )
    return path


def check_complete(result, expected_n: int, failed: int = 0) -> None:
    """Every item was processed: predicted (parsed or counted unparsed) or reported failed."""
    metrics = result.metrics
    assert metrics["n"] == expected_n and metrics["failed"] == failed
    assert len(result.records) == expected_n
    parsed = sum(r["prediction"] is not None for r in result.records)
    assert parsed + metrics["unparsed"] + failed == expected_n
    assert sum(r["error"] is not None for r in result.records) == failed
    assert 0.0 <= metrics["unparsed_rate"] <= 1.0


@pytest.mark.parametrize(("kind", "expected_n"), [("emotion", 5), ("gesture", 7)])
def test_perception_backend_on_shared_media(
    tmp_path, manifest, shared_media, home, kind, expected_n
):
    path = shared_task(tmp_path, manifest, shared_media, kind, "perception")
    broken = tmp_path / "broken.mp4"  # an unreadable file must be reported, not stop the run
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    with open(tmp_path / f"{kind}.csv", "a") as handle:
        handle.write(f"{broken},{'happy' if kind == 'emotion' else 'like'},,\n")
    task = load_task(path)
    result = run_task(task, tmp_path / "out", ctx=Context.from_env(), progress=QUIET)
    check_complete(result, expected_n + 1, failed=1)
    assert result.records[-1]["error"] and "broken.mp4" in result.records[-1]["error"]
    assert result.metrics["unparsed"] == 0  # detections always give a label (or neutral/none)
    assert "broken.mp4" in (tmp_path / "out" / "summary.md").read_text()
    for record in result.records[:-1]:
        assert record["prediction"] in [*task.scored_labels, "none"]
        json.loads(record["raw"])  # the detections behind the answer, as JSON
    if kind == "gesture":
        # The five HaGRID close-ups and the held thumbs-up are clear: most must be right.
        assert result.metrics["war"] >= 0.5 * 7 / 8, result.records
    assert (tmp_path / "out" / "confusion_matrix.png").stat().st_size > 1000
    print(kind, json.dumps({k: v for k, v in result.metrics.items() if k != "confusion_matrix"}))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    from agent.vlm.tiny import build_tiny_vl3

    return build_tiny_vl3(tmp_path_factory.mktemp("vl3") / "tiny")


@pytest.fixture(scope="module")
def tiny_vlm(tiny_dir):
    from agent.vlm import load_vlm

    return load_vlm(Context.from_env(model_id=str(tiny_dir), max_new_tokens=12))


def test_tiny_vlm_classifies_every_shared_item(
    tmp_path, manifest, shared_media, tiny_dir, tiny_vlm
):
    ctx = Context.from_env(model_id=str(tiny_dir), max_new_tokens=12)

    def factory(backend, run_ctx):
        assert backend == "videollama3"
        return VLMPredictor(run_ctx, tiny_vlm)

    for kind, expected_n in (("emotion", 5), ("gesture", 7)):
        # Small frames and few tokens: random weights, so only the plumbing is under test.
        settings = "{max_new_tokens: 12, decode_max_side: 256}"
        path = shared_task(tmp_path / kind, manifest, shared_media, kind, "videollama3", settings)
        task = load_task(path)
        result = run_task(
            task, tmp_path / kind / "out", ctx=ctx, predictor_factory=factory, progress=QUIET
        )
        check_complete(result, expected_n)
        # Random weights: the raw text is kept, and nothing outside the label list is accepted.
        assert all(isinstance(r["raw"], str) and r["raw"] for r in result.records)
        for record in result.records:
            assert record["prediction"] is None or record["prediction"] in task.scored_labels
        print(
            kind, json.dumps({k: v for k, v in result.metrics.items() if k != "confusion_matrix"})
        )


def test_tiny_vlm_grounding(tmp_path, shared_media, tiny_dir, tiny_vlm):
    video = "gesture_thumb_up_mediapipe_samples_test_video.mp4"
    (tmp_path / "g.csv").write_text(
        f"media,query,start_s,end_s\n{video},the woman gives a thumbs up,2.2,7.807\n"
        f"{video},she raises a closed fist,1.3,2.0\n"
    )
    (tmp_path / "g.yaml").write_text(
        f"name: g\ntype: grounding\nannotations: g.csv\nmedia_root: {shared_media}\n"
        "backend: {name: videollama3, num_frames: 4, settings: {decode_max_side: 256}}\n"
    )
    result = run_task(
        load_task(tmp_path / "g.yaml"),
        tmp_path / "out",
        ctx=Context.from_env(model_id=str(tiny_dir), max_new_tokens=12),
        predictor_factory=lambda backend, ctx: VLMPredictor(ctx, tiny_vlm),
        progress=QUIET,
    )
    check_complete(result, 2)
    assert set(result.metrics) >= {"r1_iou0.3", "r1_iou0.5", "r1_iou0.7", "miou"}
    for record in result.records:  # a span inside the video, [] (not found) or unparsed
        span = record["prediction"]
        assert span is None or span == [] or 0 <= span[0] < span[1] <= 7.81


def test_tiny_vlm_mcq_through_the_command(tmp_path, shared_media, tiny_dir):
    questions = [
        {
            "media": "gesture_thumb_up_mediapipe_samples_test_video.mp4",
            "question": "What does the woman show?",
            "options": ["a thumbs up", "a wave", "a fist"],
            "answer": 0,
        },
        {
            "media": "gesture_like_hagrid_gestures_png_crop.png",
            "question": "Which gesture?",
            "options": ["like", "peace"],
            "answer": 0,
        },
    ]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    (tmp_path / "q.yaml").write_text(
        f"name: q\ntype: mcq\nannotations: q.jsonl\nmedia_root: {shared_media}\n"
        "backend: {name: videollama3, num_frames: 4}\n"
    )
    env = {
        **os.environ,
        "BEHAVIOR_AGENT_MAX_NEW_TOKENS": "12",
        "BEHAVIOR_AGENT_HOME": str(tmp_path),
        "BEHAVIOR_AGENT_DECODE_MAX_SIDE": "256",
    }
    out = tmp_path / "out"
    command = [CLI, "eval", str(tmp_path / "q.yaml"), "--model", str(tiny_dir)]
    command += ["--out", str(out), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads(done.stdout)
    assert metrics["n"] == 2 and metrics["failed"] == 0 and "accuracy" in metrics
    assert (
        metrics["unparsed"]
        + sum(
            json.loads(line)["prediction"] is not None
            for line in (out / "predictions.jsonl").open()
        )
        == 2
    )
    assert metrics["model_id"].startswith(str(tiny_dir))
    assert "[eval q]" in done.stderr  # progress went to stderr
    lines = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    assert [x["gold"] for x in lines] == [0, 0] and all(x["raw"] for x in lines)


def test_shipped_charades_sta_task_grounds_through_the_index(tmp_path, shared_media, home):
    """The shipped Charades-STA task file, unchanged, on a data root in its native layout."""
    videos = tmp_path / "datasets" / "Charades" / "Charades_v1_480"
    videos.mkdir(parents=True)
    (videos / "SMILE.mp4").symlink_to(
        shared_media / "emotion_neutral_then_happy_pyfeat_single_face.mp4"
    )
    (tmp_path / "datasets" / "Charades-STA").mkdir()
    (tmp_path / "datasets" / "Charades-STA" / "charades_sta_test.txt").write_text(
        "SMILE 0.6 2.433##the man smiles.\n"
    )
    out = tmp_path / "out"
    command = [CLI, "eval", "charades_sta", "--backend", "perception", "--data-root"]
    command += [str(tmp_path / "datasets"), "--out", str(out), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads(done.stdout)
    assert metrics["task"] == "charades_sta" and metrics["n"] == 1 and metrics["failed"] == 0
    [record] = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    assert json.loads(record["raw"])["class"] == "happy"  # answered from the detections
    assert metrics["miou"] > 0.3, record


def test_shipped_cremad_task_runs_on_a_data_root(tmp_path, shared_media, home):
    """The shipped task file, unchanged, over the CREMA-D clips in the shared media."""
    folder = tmp_path / "datasets" / "CREMA-D" / "VideoFlash"
    folder.mkdir(parents=True)
    for source in sorted(shared_media.glob("emotion_*_cremad_*.mp4")):
        (folder / source.name.split("_cremad_")[1]).symlink_to(source)
    out = tmp_path / "out"
    command = [CLI, "eval", "cremad", "--data-root"]
    command += [str(tmp_path / "datasets"), "--out", str(out), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads(done.stdout)
    assert metrics["task"] == "cremad" and metrics["n"] == 3 and metrics["failed"] == 0
    golds = sorted(json.loads(x)["gold"] for x in (out / "predictions.jsonl").open())
    assert golds == ["angry", "happy", "sad"]
