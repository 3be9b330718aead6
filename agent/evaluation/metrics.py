"""Benchmark metrics as pure functions: classification, temporal grounding, multiple choice.

A prediction of `None` means the model's answer could not be parsed (or the item failed): it is
counted in the unparsed rate and scored as wrong, never guessed.
"""

from collections.abc import Sequence

from sklearn import metrics as sk

Span = tuple[float, float] | list[float]
IOU_THRESHOLDS = (0.3, 0.5, 0.7)


def unparsed_rate(predictions: Sequence[object | None]) -> float:
    """Share of predictions that are None (0.0 for no items)."""
    if not predictions:
        return 0.0
    return sum(p is None for p in predictions) / len(predictions)


# What an unparsed prediction (None) is scored as: a label no gold item has.
_UNPARSED = "\x00unparsed"
_OTHER = "\x00other"


def _as_labels(predictions: Sequence[object | None]) -> list[str]:
    return [_UNPARSED if p is None else str(p) for p in predictions]


def accuracy(gold: Sequence[object], predictions: Sequence[object | None]) -> float:
    """Share of exact matches (WAR for classification, accuracy for MCQ); None is wrong."""
    _check_lengths(gold, predictions)
    if not gold:
        return 0.0
    return float(sk.accuracy_score([str(g) for g in gold], _as_labels(predictions)))


def per_class_recall(
    gold: Sequence[str], predictions: Sequence[str | None], labels: Sequence[str] | None = None
) -> dict[str, float]:
    """Recall of each class that occurs in `gold` (classes without gold items are left out)."""
    _check_lengths(gold, predictions)
    in_gold = set(gold)
    wanted = labels if labels is not None else sorted(in_gold)
    present = [label for label in wanted if label in in_gold]
    if not present:
        return {}
    recalls = sk.recall_score(
        list(gold), _as_labels(predictions), labels=present, average=None, zero_division=0
    )
    return {label: float(r) for label, r in zip(present, recalls, strict=True)}


def uar(
    gold: Sequence[str], predictions: Sequence[str | None], labels: Sequence[str] | None = None
) -> float:
    """Unweighted average recall: the mean of per-class recalls over classes present in gold."""
    recalls = per_class_recall(gold, predictions, labels)
    return sum(recalls.values()) / len(recalls) if recalls else 0.0


def macro_f1(
    gold: Sequence[str], predictions: Sequence[str | None], labels: Sequence[str] | None = None
) -> float:
    """Mean F1 over `labels` (default: the classes in gold); a class never predicted nor in gold
    scores 0 (scikit-learn's `f1_score(average="macro", labels=..., zero_division=0)`)."""
    _check_lengths(gold, predictions)
    labels = list(labels) if labels is not None else sorted(set(gold))
    if not labels or not gold:
        return 0.0
    return float(
        sk.f1_score(
            list(gold), _as_labels(predictions), labels=labels, average="macro", zero_division=0
        )
    )


def confusion_matrix(
    gold: Sequence[str], predictions: Sequence[str | None], labels: Sequence[str]
) -> tuple[list[list[int]], list[str]]:
    """Counts with gold classes as rows and predictions as columns.

    The columns are `labels` plus one last column "other" for predictions outside `labels`
    (unparsed answers, 'none', a class the task does not score); returns (matrix, column names).
    """
    _check_lengths(gold, predictions)
    labels = list(labels)
    known = set(labels)
    pairs = [(g, p if p in known else _OTHER) for g, p in zip(gold, predictions, strict=True)]
    pairs = [(g, p) for g, p in pairs if g in known]
    if not labels:
        return [], ["other"]
    if not pairs:
        return [[0] * (len(labels) + 1) for _ in labels], [*labels, "other"]
    matrix = sk.confusion_matrix(
        [g for g, _ in pairs], [p for _, p in pairs], labels=[*labels, _OTHER]
    )
    return matrix[:-1].tolist(), [*labels, "other"]


def temporal_iou(predicted: Span | None, gold: Span) -> float:
    """Intersection over union of two [start_s, end_s] spans; 0 for None or empty spans."""
    if not predicted:
        return 0.0
    p_start, p_end = sorted(float(t) for t in predicted)
    g_start, g_end = sorted(float(t) for t in gold)
    intersection = max(0.0, min(p_end, g_end) - max(p_start, g_start))
    union = max(p_end, g_end) - min(p_start, g_start)
    return intersection / union if union > 0 else 0.0


def recall_at_iou(
    gold: Sequence[Span], predictions: Sequence[Span | None], threshold: float
) -> float:
    """R@1 at an IoU threshold: share of items whose top-1 span reaches IoU >= threshold."""
    _check_lengths(gold, predictions)
    if not gold:
        return 0.0
    hits = sum(temporal_iou(p, g) >= threshold for g, p in zip(gold, predictions, strict=True))
    return hits / len(gold)


def mean_iou(gold: Sequence[Span], predictions: Sequence[Span | None]) -> float:
    """Mean temporal IoU over all items (unparsed items count 0)."""
    _check_lengths(gold, predictions)
    if not gold:
        return 0.0
    return sum(temporal_iou(p, g) for g, p in zip(gold, predictions, strict=True)) / len(gold)


def classification_metrics(
    gold: Sequence[str], predictions: Sequence[str | None], labels: Sequence[str]
) -> dict[str, float]:
    """WAR, UAR and macro-F1 over the task's labels."""
    return {
        "war": accuracy(gold, predictions),
        "uar": uar(gold, predictions, labels),
        "macro_f1": macro_f1(gold, predictions, labels),
    }


def grounding_metrics(gold: Sequence[Span], predictions: Sequence[Span | None]) -> dict[str, float]:
    """R@1 at IoU 0.3 / 0.5 / 0.7 and mIoU."""
    metrics = {
        f"r1_iou{threshold:g}": recall_at_iou(gold, predictions, threshold)
        for threshold in IOU_THRESHOLDS
    }
    metrics["miou"] = mean_iou(gold, predictions)
    return metrics


def mcq_metrics(gold: Sequence[int], predictions: Sequence[int | None]) -> dict[str, float]:
    """Multiple-choice accuracy."""
    return {"accuracy": accuracy(gold, predictions)}


def false_claim_rate(false_claims: int, checked: int) -> float | None:
    """Share of negative items (the class is not there) on which the class was claimed, over
    the items the backend could check; None when it could check none."""
    return false_claims / checked if checked else None


def _check_lengths(gold: Sequence[object], predictions: Sequence[object]) -> None:
    if len(gold) != len(predictions):
        raise ValueError(f"{len(gold)} gold labels but {len(predictions)} predictions")
