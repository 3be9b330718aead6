"""Negative items (a class that is not there): reading, the perception and VLM decisions, the
false-claim rate in metrics.json, summary.md and the command, and the shipped shared_media task."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.context import Context
from agent.evaluation.annotations import AnnotationError
from agent.evaluation.predictors import ABSENT, PerceptionPredictor, Prediction, VLMPredictor
from agent.evaluation.runner import abstention_metrics, run_task
from agent.evaluation.tasks import SHIPPED_TASKS, load_task
from agent.events import Event
from tests.test_eval_runner import ScriptedVLM, vlm_task

CLI = str(Path(sys.executable).parent / "behavior-agent")

ROWS = """media,label,start_s,end_s,present
a.mp4,anger,0,2,true
b.mp4,happy,,,
c.mp4,sad,,,false
d.mp4,happy,0,1,no
e.mp4,fear,,,false
f.mp4,hug,,,false
g.mp4,sad,,,false
"""


class NegativeDouble:
    """Claims the class on c.mp4, abstains on d and e, cannot check f, fails on g."""

    backend = "double"
    model_id = "negative-double"

    def predict(self, task, item):
        if item.media == "g.mp4":
            raise RuntimeError("decoder gave up")
        if item.media == "f.mp4":
            return Prediction(None, "", None, {"why": "no offline rule"}, "uncheckable")
        if item.negative:
            claimed = task.gold(item) if item.media == "c.mp4" else ABSENT
            return Prediction(claimed, "[]", None)
        return Prediction(task.gold(item), "{}", 0.9)


@pytest.fixture
def task(tmp_path: Path):
    (tmp_path / "media").mkdir()
    (tmp_path / "labels.csv").write_text(ROWS)
    (tmp_path / "task.yaml").write_text(
        "name: negatives\ntype: classification\nkind: emotion\nannotations: labels.csv\n"
        "media_root: media\nlabel_map: {anger: angry}\n"
    )
    return load_task(tmp_path / "task.yaml")


def test_present_column_marks_negative_items_and_keys_them_apart(task):
    items = task.items()
    assert [i.negative for i in items] == [False, False, True, True, True, True, True]
    assert task.labels(items) == ["angry", "happy"]  # negatives' classes are not scored labels
    positive, negative = items[1], items[3]
    assert positive.model_copy(update={"negative": True}).key() != positive.key()
    assert negative.key() != negative.model_copy(update={"negative": False}).key()


def test_negative_of_an_unknown_class_names_the_line(tmp_path):
    (tmp_path / "media").mkdir()
    (tmp_path / "l.csv").write_text("a.mp4,happy\nb.mp4,cartwheel,,,false\n")
    (tmp_path / "t.yaml").write_text(
        "name: t\ntype: classification\nkind: emotion\nannotations: l.csv\nmedia_root: media\n"
    )
    with pytest.raises(AnnotationError, match=r"l.csv:2: a negative item must name a knowledge"):
        load_task(tmp_path / "t.yaml").items()


def test_false_claim_rate_next_to_war_in_metrics_summary_and_predictions(task, tmp_path):
    out = tmp_path / "out"
    result = run_task(
        task, out, predictor_factory=lambda b, c: NegativeDouble(), progress=lambda t: None
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n"], metrics["n_positive"], metrics["n_negative"]) == (7, 2, 5)
    assert metrics["war"] == 1.0 and metrics["uar"] == 1.0  # over the positive items only
    # c claimed (false), d and e abstained; f uncheckable and g failed are neither.
    assert (metrics["false_claims"], metrics["correct_abstentions"]) == (1, 2)
    assert metrics["uncheckable"] == 1 and metrics["failed"] == 1
    assert metrics["false_claim_rate"] == pytest.approx(1 / 3)
    assert metrics["per_class_recall"] == {"angry": 1.0, "happy": 1.0}
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [x.get("negative", False) for x in lines] == [False, False, True, True, True, True, True]
    summary = (out / "summary.md").read_text()
    assert "| false_claim_rate | 0.3333 |" in summary
    assert "## Negative items (5: the class is not there)" in summary
    assert "2 correct abstention(s), 1 false claim(s), 1 not checkable" in summary
    assert "labels.csv:4`: sad claimed in c.mp4" in summary
    assert "hug in f.mp4: no offline rule" in summary
    assert result.failed == 1


def test_no_checked_negative_gives_no_rate():
    only_uncheckable = [{"negative": True, "outcome": "uncheckable", "prediction": None}]
    metrics = abstention_metrics(only_uncheckable)
    assert metrics["false_claim_rate"] is None and metrics["uncheckable"] == 1
    assert abstention_metrics([]) == {"n_negative": 0}


def _event(label, kind, start_s, end_s, confidence=0.7):
    return Event(
        kind=kind,
        label=label,
        start_s=start_s,
        end_s=end_s,
        confidence=confidence,
        peak_confidence=confidence,
        strength=confidence * (end_s - start_s),
        key_time_s=(start_s + end_s) / 2,
    )


def test_perception_decides_negatives_by_the_events_rule(task, monkeypatch):
    monkeypatch.setattr("agent.perception.capabilities.calibration", lambda: {})
    predictor = PerceptionPredictor(Context(), perceiver=object())
    seen = [_event("sad", "emotion", 5.0, 6.0), _event("happy", "emotion", 0.0, 1.0)]
    monkeypatch.setattr(predictor, "events", lambda path, fps=25.0: seen)
    task.scored_labels = task.labels(task.items())
    by_media = {i.media: i for i in task.items()}
    claim = predictor.predict(task, by_media["c.mp4"])  # sad, whole video: 5-6 s is inside
    assert (claim.value, claim.outcome) == ("sad", "predicted")
    assert json.loads(claim.raw)[0]["start_s"] == 5.0
    # d.mp4 says happy is not in 0-1 s, but a happy event overlaps that span: a false claim.
    assert predictor.predict(task, by_media["d.mp4"]).value == "happy"
    absent = predictor.predict(task, by_media["e.mp4"])  # fear: nothing detected
    assert (absent.value, absent.outcome) == (ABSENT, "predicted")
    hug = predictor.predict(task, by_media["f.mp4"])  # no offline rule observes hugging
    assert (hug.value, hug.outcome) == (None, "uncheckable")
    off = {"classes": {"fear": {"enabled": False, "reason": "precision 0.1 on the dev media"}}}
    monkeypatch.setattr("agent.perception.capabilities.calibration", lambda: off)
    switched = predictor.predict(task, by_media["e.mp4"])
    assert switched.outcome == "uncheckable" and "precision 0.1" in switched.details["why"]


def test_vlm_negative_is_a_choice_between_the_class_and_none(tmp_path):
    task, _ = vlm_task(tmp_path, "classification")
    item = task.items()[0].model_copy(update={"negative": True, "label": "sad"})
    claims = ScriptedVLM('{"label": "sad"}', {"label": "sad"})
    assert VLMPredictor(Context(), claims).predict(task, item).value == "sad"
    assert claims.calls[0][1][0] == ["sad", "none"]
    abstains = ScriptedVLM('{"label": "none"}', {"label": "none"})
    assert VLMPredictor(Context(), abstains).predict(task, item).value == ABSENT
    rambles = ScriptedVLM("maybe", None)
    assert VLMPredictor(Context(), rambles).predict(task, item).outcome == "unparsed"


def test_shipped_shared_media_task_reads_its_own_annotations(tmp_path):
    (tmp_path / "media").mkdir()
    task = load_task("shared_media", data_root=tmp_path)
    assert task.annotations_path == SHIPPED_TASKS / "shared_media.csv"
    assert task.media_root == tmp_path / "media"
    items = task.items()
    negatives = [i for i in items if i.negative]
    assert len(negatives) >= 15 and len(items) - len(negatives) == 15
    kb_kinds = {task.kind_of(i) for i in negatives}
    assert kb_kinds == {"emotion", "gesture", "action"}


@pytest.mark.slow
def test_shared_media_task_runs_in_the_eval_command(tmp_path, shared_media, home):
    out = tmp_path / "out"
    done = subprocess.run(
        [CLI, "eval", "shared_media", "--data-root", str(shared_media.parent), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_negative"] == 22 and metrics["n_positive"] == 15 and metrics["failed"] == 0
    checked = metrics["false_claims"] + metrics["correct_abstentions"]
    assert checked + metrics["uncheckable"] == 22
    assert metrics["uncheckable"] >= 3  # hug, play_instrument, apply_makeup have no rule
    assert printed["false_claim_rate"] == f"{metrics['false_claim_rate']:.4f}"
    print(
        f"shared_media: false_claim_rate {metrics['false_claim_rate']:.4f} "
        f"({metrics['false_claims']}/{checked}), uncheckable {metrics['uncheckable']}, "
        f"WAR {metrics['war']:.4f}, UAR {metrics['uar']:.4f}"
    )
    # What the offline backend claims where nothing is must stay rare.
    assert metrics["false_claim_rate"] <= 0.2
