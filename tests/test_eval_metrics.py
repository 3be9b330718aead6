"""Benchmark metrics against hand-computed values and scikit-learn on random labels."""

import random

import pytest
from sklearn import metrics as skm

from agent.evaluation import metrics as m

GOLD = ["happy", "happy", "happy", "sad", "sad", "angry"]
PRED = ["happy", "sad", None, "sad", "sad", "happy"]


def test_war_uar_f1_by_hand():
    assert m.accuracy(GOLD, PRED) == pytest.approx(3 / 6)
    # recalls: happy 1/3, sad 2/2, angry 0/1
    assert m.per_class_recall(GOLD, PRED) == pytest.approx(
        {"angry": 0.0, "happy": 1 / 3, "sad": 1.0}
    )
    assert m.uar(GOLD, PRED) == pytest.approx((1 / 3 + 1 + 0) / 3)
    # F1: happy P=1/2 R=1/3 -> 0.4; sad P=2/3 R=1 -> 0.8; angry 0
    assert m.macro_f1(GOLD, PRED) == pytest.approx((0.4 + 0.8 + 0.0) / 3)


def test_unparsed_counts_wrong_and_is_reported():
    assert m.unparsed_rate(PRED) == pytest.approx(1 / 6)
    assert m.accuracy(["a"], [None]) == 0.0
    assert m.unparsed_rate([]) == 0.0


def test_confusion_matrix_has_other_column_for_unparsed_and_foreign_labels():
    matrix, columns = m.confusion_matrix(GOLD, PRED, ["angry", "happy", "sad"])
    assert columns == ["angry", "happy", "sad", "other"]
    assert matrix == [[0, 1, 0, 0], [0, 1, 1, 1], [0, 0, 2, 0]]
    matrix, _ = m.confusion_matrix(["a", "b"], ["none", "b"], ["a", "b"])
    assert matrix == [[0, 0, 1], [0, 1, 0]]


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn_on_random_labels(seed):
    rng = random.Random(seed)
    labels = ["angry", "happy", "neutral", "sad", "surprise"]
    gold = [rng.choice(labels) for _ in range(200)]
    pred = [rng.choice([*labels, "none"]) for _ in range(200)]
    present = sorted(set(gold))
    assert m.accuracy(gold, pred) == pytest.approx(skm.accuracy_score(gold, pred))
    assert m.uar(gold, pred, present) == pytest.approx(
        skm.recall_score(gold, pred, labels=present, average="macro", zero_division=0)
    )
    assert m.macro_f1(gold, pred, labels) == pytest.approx(
        skm.f1_score(gold, pred, labels=labels, average="macro", zero_division=0)
    )
    matrix, _ = m.confusion_matrix(gold, pred, labels)
    reference = skm.confusion_matrix(gold, pred, labels=labels)
    assert [row[:-1] for row in matrix] == reference.tolist()


def test_uar_skips_classes_absent_from_gold():
    # "fear" is a task label with no gold item: it must not drag UAR down.
    assert m.uar(["a", "b"], ["a", "a"], ["a", "b", "fear"]) == pytest.approx(0.5)


def test_temporal_iou_by_hand():
    assert m.temporal_iou([0, 10], [5, 15]) == pytest.approx(5 / 15)
    assert m.temporal_iou([0, 10], [0, 10]) == 1.0
    assert m.temporal_iou([0, 1], [2, 3]) == 0.0
    assert m.temporal_iou(None, [2, 3]) == 0.0
    assert m.temporal_iou([10, 0], [0, 10]) == 1.0  # reversed span is read as sorted


def test_grounding_metrics_by_hand():
    gold = [[0, 10], [0, 10], [0, 10], [0, 10]]
    pred = [[0, 10], [0, 6], [0, 4], None]  # IoU 1.0, 0.6, 0.4, 0
    scores = m.grounding_metrics(gold, pred)
    assert scores["r1_iou0.3"] == pytest.approx(3 / 4)
    assert scores["r1_iou0.5"] == pytest.approx(2 / 4)
    assert scores["r1_iou0.7"] == pytest.approx(1 / 4)
    assert scores["miou"] == pytest.approx((1 + 0.6 + 0.4 + 0) / 4)


def test_mcq_accuracy_and_length_check():
    assert m.mcq_metrics([0, 1, 2, 3], [0, 1, None, 0]) == {"accuracy": 0.5}
    with pytest.raises(ValueError):
        m.accuracy([1, 2], [1])
