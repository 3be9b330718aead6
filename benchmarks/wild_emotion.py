"""Expressions and talking on everyday footage: their extra figures, and the neutral-first
parameters fitted in and out of sample.

Shared by `wild_eval.py` and `wild_set.py`. Figures: the share of neutral faces' length that
reads as a non-neutral expression, talking clips with `talk` over at least half their length,
and silent clips with any `talk` (`talk_labels.yaml` says which clips talk). The fit tries
each (neutral_margin, speech_margin, minimum duration) of `GRID` on the labelled faces and
keeps the one with the best WAR + UAR + neutral share - non-neutral share of neutral faces;
held out by source, each source is read with the best fit on the other sources.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

from agent.evaluation.metrics import accuracy, uar
from agent.perception.rules.common import Track, defaults, merged_params
from agent.perception.rules.speech import mouth_movement
from agent.perception.smoothing import segments
from agent.state import Detection

TALK_LABELS = yaml.safe_load(
    (Path(__file__).with_name("talk_labels.yaml")).read_text(encoding="utf-8")
)
BASIC = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
# neutral_margin (defaults.yaml expression_model), speech_margin (the classes that have one),
# min_duration_s of every non-neutral learned expression.
GRID = {
    "neutral_margin": (0.0, 0.1, 0.2, 0.3, 0.4),
    "speech_margin": (0.0, 0.1, 0.2, 0.3),
    "min_duration_s": (0.5, 1.0, 1.5),
}

# The talk rule's parameters tried (defaults.yaml mouth_movement).
TALK_GRID = {"window_s": (2.0, 3.0, 4.0), "min_step": (0.03, 0.04, 0.05), "min_turns": (1, 2)}
# A claimed talk on a silent face costs two talking clips found.
TALK_FALSE_COST = 2.0


def speech_figures(results) -> dict[str, float | int]:
    """Non-neutral share of neutral faces, and talk found / claimed, over (clip, detections,
    duration_s) triples."""
    f: dict[str, float | int] = {}
    neutral = [(d, s) for c, d, s in results if c.emotion == "neutral" and s > 0]
    shares = [min(1.0, _expressed_s(d) / s) for d, s in neutral]
    f["neutral_expr_share"] = float(np.mean(shares)) if shares else float("nan")
    f["neutral_videos"] = len(shares)
    by_name = {c.name: (d, s) for c, d, s in results}
    talking = [by_name[n] for n in TALK_LABELS["talking"] if n in by_name]
    f["talk_found"] = sum(_talk_s(d) >= 0.5 * s for d, s in talking)
    f["talk_clips"] = len(talking)
    silent = [by_name[n] for n in TALK_LABELS["silent"] if n in by_name]
    f["talk_false"] = sum(_talk_s(d) > 0 for d, _ in silent)
    f["silent_clips"] = len(silent)
    return f


def _expressed_s(detections) -> float:
    """Seconds of non-neutral expressions."""
    expressed = [d for d in detections if d.kind == "emotion" and d.label != "neutral"]
    return sum(d.end_s - d.start_s for d in expressed)


def _talk_s(detections) -> float:
    return sum(d.end_s - d.start_s for d in detections if d.label == "talk")


@contextmanager
def expression_params(kb, candidate: dict):
    """The knowledge base and defaults with one candidate's neutral-first parameters."""
    table = defaults()["expression_model"]
    saved_margin = table.get("neutral_margin")
    items = [
        i
        for i in kb.by_kind("emotion")
        if i.perception is not None and i.perception.detector == "expression_model"
    ]
    saved = {i.id: dict(i.perception.params) for i in items}
    table["neutral_margin"] = candidate["neutral_margin"]
    for item in items:
        params = item.perception.params
        if "speech_margin" in params:
            params["speech_margin"] = candidate["speech_margin"]
        if params.get("mode") != "absence":
            params["min_duration_s"] = candidate["min_duration_s"]
    try:
        yield
    finally:
        table["neutral_margin"] = saved_margin
        for item in items:
            item.perception.params.clear()
            item.perception.params.update(saved[item.id])


def fit_expressions(clips, read: Callable[[object], list], kb, reading) -> dict:
    """{"in_sample", "held_out"}: {clip name: emotion detections} on the labelled faces, and
    "chosen": the in-sample candidate. `read(clip)` perceives a clip from its record;
    `reading(detections, duration_s)` is the clip's expression (wild_set.emotion_reading)."""
    faces = [c for c in clips if c.emotion]
    names = list(GRID)
    candidates = [dict(zip(names, v, strict=True)) for v in itertools.product(*GRID.values())]
    runs = []
    for candidate in candidates:
        with expression_params(kb, candidate):
            found = {}
            for clip in faces:
                detections, duration_s = read(clip)
                emotions = [d for d in detections if d.kind == "emotion"]
                found[clip.name] = (emotions, duration_s, reading(emotions, duration_s))
        runs.append((candidate, found))

    def best(keep):
        # Ties go to the more cautious candidate (a larger speech margin, a longer hold).
        return max(
            runs,
            key=lambda run: (
                round(_objective([c for c in faces if keep(c)], run[1]), 9),
                run[0]["speech_margin"],
                run[0]["min_duration_s"],
            ),
        )

    chosen, in_sample = best(lambda c: True)
    held_out = {}
    for source in sorted({c.source for c in faces}):
        _, found = best(lambda c, s=source: c.source != s)
        held_out.update({c.name: found[c.name] for c in faces if c.source == source})
    return {
        "in_sample": {k: v[0] for k, v in in_sample.items()},
        "held_out": {k: v[0] for k, v in held_out.items()},
        "chosen": chosen,
    }


def _objective(faces, found) -> float:
    if not faces:
        return 0.0
    gold = [c.emotion for c in faces]
    read = [found[c.name][2] for c in faces]
    neutral = [r in (None, "neutral") for g, r in zip(gold, read, strict=True) if g == "neutral"]
    shares = []
    for clip in faces:
        emotions, duration_s, _ = found[clip.name]
        if clip.emotion == "neutral" and duration_s > 0:
            shares.append(min(1.0, _expressed_s(emotions) / duration_s))
    return (
        accuracy(gold, read)
        + uar(gold, read, BASIC)
        + (float(np.mean(neutral)) if neutral else 0.0)
        - (float(np.mean(shares)) if shares else 0.0)
    )


def fit_talk(clips, records, kb) -> dict:
    """{"in_sample", "held_out"}: {clip name: talk detections} on the clips of
    talk_labels.yaml, and "chosen": the in-sample candidate of `TALK_GRID`."""
    item = kb.get("talk")
    base = merged_params(item.perception.detector, item.perception.params)
    labelled = [c for c in clips if c.name in TALK_LABELS["talking"] + TALK_LABELS["silent"]]
    names = list(TALK_GRID)
    runs = []
    for values in itertools.product(*TALK_GRID.values()):
        candidate = dict(zip(names, values, strict=True))
        params = {**base, **candidate}
        runs.append((candidate, {c.name: _talk(records[c.name], params) for c in labelled}))

    def best(keep):
        def gain(run):
            found = run[1]
            right = sum(
                _talk_s(found[c.name]) >= 0.5 * records[c.name]["duration_s"]
                for c in labelled
                if keep(c) and c.name in TALK_LABELS["talking"]
            )
            false = sum(
                bool(found[c.name]) for c in labelled if keep(c) and c.name in TALK_LABELS["silent"]
            )
            return right - TALK_FALSE_COST * false

        return max(runs, key=gain)

    chosen, in_sample = best(lambda c: True)
    held_out = {}
    for source in sorted({c.source for c in labelled}):
        _, found = best(lambda c, s=source: c.source != s)
        held_out.update({c.name: found[c.name] for c in labelled if c.source == source})
    return {"in_sample": in_sample, "held_out": held_out, "chosen": chosen}


def _talk(record: dict, params: dict) -> list[Detection]:
    """The talk detections of one recorded clip with these talk-rule parameters."""
    frames = record["frames"]
    if record["still"] or len(frames) < 2:
        return []
    times = np.array([f.time_s for f in frames], dtype=float)
    step_s = float(np.median(np.diff(times)))
    result = mouth_movement(Track(frames, [], step_s=step_s), params)
    found = segments(
        times,
        result.scores,
        on=params["min_score"],
        off=params["min_score"] * params["off_ratio"],
        min_duration_s=params["min_duration_s"],
        merge_gap_s=params["merge_gap_s"],
        step_s=step_s,
    )
    end = record["duration_s"] or np.inf
    return [
        Detection(kind="action", label="talk", start_s=s, end_s=min(e, end), confidence=0.5)
        for _, _, s, e in found
    ]


def replaced(results, found: dict[str, list], kind: str, label: str | None = None) -> list:
    """(clip, detections, duration_s) with the detections of `kind` (and `label`) of the
    clips in `found` ({clip name: detections}) replaced by those."""
    out = []
    for clip, detections, duration_s in results:
        if clip.name in found:
            kept = [
                d for d in detections if d.kind != kind or (label is not None and d.label != label)
            ]
            detections = kept + found[clip.name]
        out.append((clip, detections, duration_s))
    return out
