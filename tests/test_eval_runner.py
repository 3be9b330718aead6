"""The evaluation runner with a predictor double: outputs, failures, resume, worker pool."""

import json
from pathlib import Path

import pytest

from agent.context import Context
from agent.errors import VideoError
from agent.evaluation.predictors import (
    Prediction,
    label_from_detections,
    parse_label,
    parse_option,
    parse_span,
)
from agent.evaluation.runner import run_task
from agent.evaluation.tasks import load_task
from agent.state import Detection

ROWS = [
    ("good1.mp4", "anger"),
    ("good2.mp4", "happy"),
    ("wrong.mp4", "happy"),
    ("unparsed.mp4", "sad"),
    ("broken.mp4", "sad"),
    ("good3.mp4", "sad"),
]


class ScriptedPredictor:
    """Answers from the media name: good* right, wrong* wrong, unparsed* None, broken* fails."""

    backend = "double"
    model_id = "scripted-double"

    def __init__(self, calls: list[str] | None = None, stop_after: int | None = None) -> None:
        self.calls = calls if calls is not None else []
        self.stop_after = stop_after

    def predict(self, task, item):
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt  # the run is killed here
        self.calls.append(item.media)
        if item.media.startswith("broken"):
            raise VideoError(f"Cannot read '{item.path}' (truncated file).")
        if item.media.startswith("unparsed"):
            return Prediction(None, "I think it is somewhat positive", None)
        if item.media.startswith("wrong"):
            return Prediction("sad", "sad", 0.4)
        gold = task.gold(item)
        return Prediction(gold, json.dumps({"label": gold}), 0.9)


def scripted_factory(backend: str, ctx: Context) -> ScriptedPredictor:
    """Module level, so spawned worker processes can build it."""
    return ScriptedPredictor()


@pytest.fixture
def task(tmp_path: Path):
    (tmp_path / "media").mkdir()
    (tmp_path / "labels.csv").write_text(
        "media,label\n" + "".join(f"{m},{label}\n" for m, label in ROWS)
    )
    (tmp_path / "task.yaml").write_text(
        "name: scripted\ntype: classification\nkind: emotion\nannotations: labels.csv\n"
        "media_root: media\nlabel_map: {anger: angry}\nbackend: {name: perception}\n"
    )
    return load_task(tmp_path / "task.yaml")


def run(task, out, calls=None, stop_after=None, ctx=None, **kwargs):
    factory = lambda backend, ctx: ScriptedPredictor(calls, stop_after)  # noqa: E731
    ctx = ctx or Context(home=out / "home")
    return run_task(
        task, out, ctx=ctx, predictor_factory=factory, progress=lambda text: None, **kwargs
    )


def test_run_writes_metrics_predictions_summary_and_plot(task, tmp_path):
    out = tmp_path / "out"
    result = run(task, out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "scripted" and metrics["n"] == 6
    assert metrics["unparsed"] == 1 and metrics["failed"] == 1
    assert metrics["unparsed_rate"] == pytest.approx(1 / 6)
    # right: good1 (angry), good2 (happy), good3 (sad) = 3 of 6; the failed item counts wrong.
    assert metrics["war"] == pytest.approx(3 / 6)
    # recalls: angry 1/1, happy 1/2, sad 1/3
    assert metrics["uar"] == pytest.approx((1 + 0.5 + 1 / 3) / 3)
    assert metrics["confusion_matrix"]["rows"] == ["angry", "happy", "sad"]
    assert metrics["confusion_matrix"]["matrix"] == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 2]]
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [x["media"] for x in lines] == [m for m, _ in ROWS]
    assert {"media", "gold", "prediction", "raw", "score"} <= set(lines[0])
    assert lines[3]["raw"] == "I think it is somewhat positive" and lines[3]["prediction"] is None
    assert "truncated" in lines[4]["error"]
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.md").read_text()
    assert "| war | 0.5000 |" in summary and "broken.mp4" in summary
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["git_commit"] and run_info["versions"]["python"]
    assert run_info["settings"]["backend"] == "perception"
    assert (result.ran, result.cached, result.failed) == (5, 0, 1)


def test_rerun_after_interruption_does_only_the_missing_items(task, tmp_path):
    out = tmp_path / "out"
    first_calls: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run(task, out, calls=first_calls, stop_after=3)
    assert first_calls == ["good1.mp4", "good2.mp4", "wrong.mp4"]
    assert not (out / "metrics.json").exists()

    second_calls: list[str] = []
    result = run(task, out, calls=second_calls)
    assert second_calls == ["unparsed.mp4", "broken.mp4", "good3.mp4"]
    assert (result.ran, result.cached, result.failed) == (2, 3, 1)
    assert result.metrics["n"] == 6 and result.metrics["war"] == pytest.approx(3 / 6)

    # A third run reuses everything but retries the failed item (its file may be fixed now).
    third_calls: list[str] = []
    result = run(task, out, calls=third_calls)
    assert third_calls == ["broken.mp4"] and result.cached == 5


def test_truncated_cache_line_from_a_killed_run_is_ignored(task, tmp_path):
    out = tmp_path / "out"
    run(task, out, limit=2)
    [cache_file] = (out / "cache").glob("*.jsonl")
    with open(cache_file, "a") as handle:
        handle.write('{"key": "abc", "media": "go')  # killed mid-write
    calls: list[str] = []
    result = run(task, out, calls=calls)
    assert calls == [m for m, _ in ROWS[2:]] and result.metrics["n"] == 6


def test_changed_settings_do_not_reuse_cached_predictions(task, tmp_path):
    out = tmp_path / "out"
    run(task, out)
    calls: list[str] = []
    run(task, out, calls=calls, ctx=Context(sample_fps=7.0))
    assert len(calls) == 6


def test_limit_and_worker_pool_give_the_same_results(task, tmp_path):
    alone = run_task(
        task, tmp_path / "a", ctx=Context(), predictor_factory=scripted_factory, progress=print
    )
    pooled = run_task(
        task,
        tmp_path / "b",
        ctx=Context(),
        predictor_factory=scripted_factory,
        workers=2,
        progress=print,
    )
    assert alone.metrics["war"] == pooled.metrics["war"]
    assert [r["prediction"] for r in alone.records] == [r["prediction"] for r in pooled.records]
    limited = run(task, tmp_path / "c", limit=2)
    assert limited.metrics["n"] == 2


# --- decision rule and parsing --------------------------------------------------------------


def detection(label, start_s, end_s, confidence, kind="emotion"):
    return Detection(kind=kind, label=label, start_s=start_s, end_s=end_s, confidence=confidence)


def test_label_from_detections_weights_confidence_by_overlap():
    detections = [
        detection("happy", 0.0, 2.0, 0.6),  # 1.2 inside [0, 3]
        detection("angry", 1.0, 1.5, 0.9),  # 0.45
        detection("happy", 5.0, 9.0, 1.0),  # outside the span
        detection("thumbs_up", 0.0, 3.0, 1.0, kind="gesture"),  # another kind
    ]
    labels = ["angry", "happy", "neutral"]
    label, score, totals = label_from_detections(detections, "emotion", labels, 0.0, 3.0)
    assert label == "happy" and score == pytest.approx(1.2 / 1.65)
    # Nothing of the kind in the span: no label at all (its own outcome), never "neutral".
    assert label_from_detections(detections, "emotion", labels, 4.0, 4.5) == (None, 0.0, {})
    assert label_from_detections([], "gesture", ["fist"], None, None)[0] is None
    # A still image: detections are instants at 0 s.
    still = [detection("fist", 0, 0, 0.7, "gesture"), detection("victory", 0, 0, 0.8, "gesture")]
    assert label_from_detections(still, "gesture", ["fist", "victory"])[0] == "victory"


def test_parsers_are_strict():
    assert parse_label({"label": "Happy"}, "", ["happy", "sad"]) == "happy"
    assert parse_label(None, "sad.", ["happy", "sad"]) == "sad"
    assert parse_label(None, "thumbs up", ["thumbs_up"]) == "thumbs_up"
    assert parse_label(None, "probably happy or sad", ["happy", "sad"]) is None
    options = ["running", "sitting", "waving"]
    assert parse_option(None, "B", options) == 1
    assert parse_option(None, "(C) waving", options) == 2
    assert parse_option(None, "The answer is A.", options) == 0
    assert parse_option(None, "sitting", options) == 1
    assert parse_option(None, "D", options) is None
    assert parse_option(None, "I am not sure", options) is None
    assert parse_option(None, "A man is waving", options) is None
    assert parse_option(None, "the answer is a dog", options) is None
    assert parse_option(None, "Answer: C", options) == 2
    assert parse_option({"answer": 2}, "", options) == 2
    assert parse_span({"start_s": 2, "end_s": 30}, "", 10.0) == [2.0, 10.0]
    assert parse_span({"span": [4, 1]}, "", 10.0) == [1.0, 4.0]
    assert parse_span({"start": "x", "end": 3}, "", 10.0) is None
    assert parse_span(None, "from 1 to 3", 10.0) is None
    assert parse_span({"found": True, "spans": [{"start_s": 1, "end_s": 2}]}, "", 9) == [1.0, 2.0]
    assert parse_span({"found": False, "spans": []}, "", 9.0) == []


# --- the VLM predictor with a scripted VLM double --------------------------------------------


class ScriptedVLM:
    """Replies like the VLM protocol, from a fixed script; records the prompts it was given."""

    name = "videollama3:scripted"

    def __init__(self, text: str, data: dict | None) -> None:
        self.text, self.data, self.calls = text, data, []

    def _reply(self, kind, *args):
        from agent.vlm import VLMReply

        self.calls.append((kind, args))
        return VLMReply(text=self.text, data=self.data)

    def classify(self, frames, info, labels, kb_snippet):
        return self._reply("classify", labels, kb_snippet)

    def locate(self, query, frames, info):
        return self._reply("locate", query)

    def answer(self, question, frames, info, kb_snippet, on_token=None):
        return self._reply("answer", question)


def vlm_task(tmp_path: Path, task_type: str, extra: str = ""):
    from PIL import Image

    (tmp_path / "media").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), (200, 120, 80)).save(tmp_path / "media" / "face.png")
    rows = {
        "classification": ("l.csv", "media,label\nface.png,happy\n"),
        "mcq": (
            "l.jsonl",
            json.dumps(
                {"media": "face.png", "question": "Mood?", "options": ["sad", "happy"], "answer": 1}
            )
            + "\n",
        ),
    }
    name, text = rows[task_type]
    (tmp_path / name).write_text(text)
    kind = "kind: emotion\nlabels: [happy, sad]\n" if task_type == "classification" else ""
    (tmp_path / "t.yaml").write_text(
        f"name: v\ntype: {task_type}\n{kind}annotations: {name}\nmedia_root: media\n{extra}"
    )
    task = load_task(tmp_path / "t.yaml")
    task.scored_labels = task.labels(task.items()) if task_type == "classification" else []
    return task, task.items()[0]


def test_vlm_predictor_classify_and_mcq_paths(tmp_path):
    from agent.evaluation.predictors import VLMPredictor

    task, item = vlm_task(tmp_path, "classification")
    vlm = ScriptedVLM(
        '{"label": "happy", "confidence": 0.8}', {"label": "happy", "confidence": 0.8}
    )
    prediction = VLMPredictor(Context.from_env(), vlm).predict(task, item)
    assert (prediction.value, prediction.score) == ("happy", 0.8)
    assert vlm.calls[0][0] == "classify" and vlm.calls[0][1][0] == ["happy", "sad"]
    assert "happy" in vlm.calls[0][1][1].lower()  # the knowledge-base snippet of the labels

    task, item = vlm_task(tmp_path / "q", "mcq")
    vlm = ScriptedVLM('{"answer": "B"}', {"answer": "B"})
    prediction = VLMPredictor(Context.from_env(), vlm).predict(task, item)
    assert prediction.value == 1 and prediction.raw == '{"answer": "B"}'
    question = vlm.calls[0][1][0]
    assert "Mood?" in question and "A. sad" in question and "B. happy" in question

    unparsed = ScriptedVLM("hmm, hard to say", None)
    assert VLMPredictor(Context.from_env(), unparsed).predict(task, item).value is None


def test_task_prompt_goes_through_answer(tmp_path):
    from agent.evaluation.predictors import VLMPredictor

    task, item = vlm_task(tmp_path, "classification", "prompt: eval_mcq\n")
    vlm = ScriptedVLM('{"answer": "sad"}', {"answer": "sad"})
    prediction = VLMPredictor(Context.from_env(), vlm).predict(task, item)
    assert prediction.value == "sad" and vlm.calls[0][0] == "answer"
