"""Temporal smoothing: per-frame scores → segments (hysteresis, minimum duration, merging)."""

from __future__ import annotations

import numpy as np


def hysteresis(scores: np.ndarray, on: float, off: float) -> np.ndarray:
    """Active mask: switches on at `score >= on`, stays on while `score >= off`.

    NaN (not observable in that frame) never switches on and ends an active run.
    """
    active = np.zeros(len(scores), dtype=bool)
    state = False
    for index, score in enumerate(scores):
        if np.isnan(score):
            state = False
        elif state:
            state = score >= off
        else:
            state = score >= on
        active[index] = state
    return active


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True values."""
    out: list[tuple[int, int]] = []
    start = None
    for index, value in enumerate(mask):
        if value and start is None:
            start = index
        elif not value and start is not None:
            out.append((start, index - 1))
            start = None
    if start is not None:
        out.append((start, len(mask) - 1))
    return out


def segments(
    times_s: np.ndarray,
    scores: np.ndarray,
    *,
    on: float,
    off: float,
    min_duration_s: float,
    merge_gap_s: float,
    step_s: float,
    whole_footage: bool = False,
) -> list[tuple[int, int, float, float]]:
    """(first, last, start_s, end_s) of each detection.

    A sampled frame stands for `step_s` seconds from its timestamp. Runs separated by less
    than `merge_gap_s` are merged; runs shorter than `min_duration_s` are dropped after
    merging (a gesture interrupted by one missed frame is one gesture).

    With `whole_footage` (the samples are a whole video from its start), a run through every
    sample of footage shorter than `min_duration_s` is kept: the hold asked for is longer
    than the footage, and a shape seen from its first sample to its last (two at least) is
    held as long as the footage shows.
    """
    times_s = np.asarray(times_s, dtype=float)
    spans = [
        [first, last, float(times_s[first]), float(times_s[last]) + step_s]
        for first, last in runs(hysteresis(np.asarray(scores, dtype=float), on, off))
    ]
    merged: list[list] = []
    for span in spans:
        if merged and span[2] - merged[-1][3] < merge_gap_s - 1e-9:
            merged[-1][1], merged[-1][3] = span[1], span[3]
        else:
            merged.append(span)
    whole = whole_footage and len(times_s) > 1 and float(times_s[0]) < step_s
    return [
        (first, last, start_s, end_s)
        for first, last, start_s, end_s in merged
        if end_s - start_s >= min_duration_s - 1e-9
        or (whole and first == 0 and last == len(times_s) - 1)
    ]


def exclusive(scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keep, in each frame, only the best of competing labels (others set to 0).

    Hand shapes and facial expressions are mutually exclusive per hand / face per frame.
    """
    if not scores:
        return scores
    labels = list(scores)
    stacked = np.stack([scores[label] for label in labels])
    filled = np.where(np.isnan(stacked), -np.inf, stacked)
    best = filled.argmax(axis=0)
    out = {}
    for row, label in enumerate(labels):
        keep = best == row
        out[label] = np.where(keep | np.isnan(stacked[row]), stacked[row], 0.0)
    return out
