"""Calibrated confidence: a rule's raw score → how often such detections were right.

`calibration.yaml` beside this module holds, per rule (the detector a class runs, see
`agent.perception.capabilities`), points (raw score, measured precision) fitted on labelled
development footage by `benchmarks/reliability_table.py --fit`, and per-class switches for
classes whose measured precision was too poor to ship. A detection's confidence is the precision
interpolated at its raw score: a confidence of 0.8 means about 80% of such detections were
right. A rule without fitted points gets a cautious default (its raw score halved), so an
unmeasured rule never reports high confidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from agent.perception.capabilities import calibration as calibration_data

# Raw score → confidence for rules never measured on labelled footage.
_UNMEASURED_SCALE = 0.5
# Prior of the precision estimate in each score bin (Beta(1, 1)): a bin with few detections
# stays near 0.5 instead of claiming 0 or 1.
_PRIOR_RIGHT, _PRIOR_WRONG = 1.0, 1.0


def rule_key(rule: str, person_tracks: bool = False) -> str:
    """The calibration key of a detection: its rule, with tracked people apart (walking from
    person tracks is a different measurement from walking from one person's landmarks)."""
    return f"{rule}:tracks" if person_tracks else rule


def calibrated(key: str, raw: float) -> float:
    """The calibrated confidence of a raw score for one rule."""
    points = calibration_data().get("rules", {}).get(key, {}).get("points")
    return map_score(points, raw)


def map_score(points: list[list[float]] | None, raw: float) -> float:
    """Raw score → confidence through fitted (raw, precision) points.

    The map scales the raw score by the measured precision-to-score ratio (interpolated
    between bins) rather than replacing it by the bin's precision: two detections of one rule
    keep their order and spread, and a rule measured in a single bin does not report one
    constant value. It never exceeds the best precision measured for the rule.
    """
    raw = float(np.clip(raw, 0.0, 1.0))
    if not points:
        return round(raw * _UNMEASURED_SCALE, 3)
    xs = [max(float(p[0]), 1e-6) for p in points]
    ratios = [float(p[1]) / x for p, x in zip(points, xs, strict=True)]
    best = max(float(p[1]) for p in points)
    return round(min(best, raw * float(np.interp(raw, xs, ratios))), 3)


@dataclass
class Outcome:
    """One development detection: its rule key, raw score, and whether it was right."""

    key: str
    raw: float
    right: bool


def fit_points(outcomes: Sequence[Outcome], edges: Sequence[float]) -> list[list[float]]:
    """(bin centre, smoothed precision) per non-empty score bin, made non-decreasing by
    isotonic regression weighted by the bins' counts (a higher raw score never means a lower
    confidence), capped below 1 by the prior."""
    raws = np.array([o.raw for o in outcomes], dtype=float)
    rights = np.array([o.right for o in outcomes], dtype=bool)
    centres, precisions, counts = [], [], []
    for lo, hi in zip(edges, edges[1:], strict=False):
        inside = (raws >= lo) & ((raws < hi) | (hi >= 1.0))
        if not inside.any():
            continue
        right = float(rights[inside].sum())
        precision = (right + _PRIOR_RIGHT) / (inside.sum() + _PRIOR_RIGHT + _PRIOR_WRONG)
        centres.append(round(float(raws[inside].mean()), 3))
        precisions.append(float(precision))
        counts.append(float(inside.sum()))
    monotone = isotonic(precisions, counts)
    return [[c, round(p, 3)] for c, p in zip(centres, monotone, strict=True)]


def isotonic(values: Sequence[float], weights: Sequence[float]) -> list[float]:
    """The non-decreasing sequence nearest `values` in weighted least squares (pool adjacent
    violators, as scikit-learn's IsotonicRegression computes it)."""
    blocks: list[list[float]] = []  # [mean, weight, members]
    for value, weight in zip(values, weights, strict=True):
        blocks.append([float(value), float(weight), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean2, weight2, n2 = blocks.pop()
            mean1, weight1, n1 = blocks.pop()
            total = weight1 + weight2
            blocks.append([(mean1 * weight1 + mean2 * weight2) / total, total, n1 + n2])
    return [mean for mean, _weight, members in blocks for _ in range(int(members))]


def reliability(
    reported: Iterable[tuple[float, bool]], edges: Sequence[float]
) -> list[tuple[float, float, int, float | None]]:
    """(bucket low, bucket high, count, measured precision) of reported confidences."""
    pairs = list(reported)
    rows = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        inside = [right for c, right in pairs if lo <= c < hi or (hi >= 1.0 and c >= lo)]
        rows.append((lo, hi, len(inside), (sum(inside) / len(inside)) if inside else None))
    return rows
