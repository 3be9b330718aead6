"""Emotion rules: the learned facial-expression classifier, explained by action units, and the
FACS action-unit prototypes it falls back on.

`expression_model`: the classifier's probability for the class's `model_label` is the per-frame
score. The face's action-unit intensities (landmark geometry against the face's own neutral
baseline) do not decide the label; they are the explanation shown with it, and they temper the
score a little (`au_fusion`): a "happy" frame whose lip corners never moved is less certain.
`au_prototype`: the weighted mean of the prototype's action-unit intensities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.perception.face import au_calibration
from agent.perception.rules.common import Scored, Track, ramp


def smoothed_probability(track: Track, label: str, frames: int) -> np.ndarray:
    """The classifier's probability of `label` per frame, median of `frames` neighbouring
    frames (NaN where no face was classified). Single frames flicker between neighbouring
    expressions; a median removes the flicker but keeps the step of a real onset in place."""
    raw = np.array([f.expression.get(label, np.nan) for f in track.frames], dtype=float)
    half = max(0, int(frames) // 2)
    out = np.full(len(raw), np.nan)
    for index in np.flatnonzero(~np.isnan(raw)):
        window = raw[max(0, index - half) : index + half + 1]
        out[index] = float(np.nanmedian(window))
    return out


def expression_model(track: Track, p: dict[str, Any]) -> Scored:
    """Per-frame probability of one expression, fused with its action-unit prototype."""
    out = Scored.empty(len(track.frames))
    label = p["model_label"]
    weights = p.get("au_weights", {})
    fusion = float(p.get("au_fusion", 0.0))
    probabilities = smoothed_probability(track, label, p["smooth_frames"])
    for index, frame in enumerate(track.frames):
        probability = probabilities[index]
        if np.isnan(probability):
            continue
        aus = track.aus[index]
        score = probability
        cue = f"expression model: {label} {probability:.2f}"
        known = {au: w for au, w in weights.items() if au in aus}
        if known:
            score = (1.0 - fusion) * probability + fusion * min(1.0, au_score(aus, weights))
            cue += f"; {au_cue(aus, known)}"
        elif p.get("mode") == "absence" and aus:
            peak = max(aus, key=aus.get)
            cue += f"; strongest action unit {peak} {aus[peak]:.2f}"
        out.scores[index] = float(np.clip(score, 0.0, 1.0))
        out.boxes[index] = frame.face_box
        out.cues[index] = cue
    return out


def neutral_first(
    members: dict[str, tuple[dict, Scored]],
    aus: list[dict[str, float]],
    talking: np.ndarray | None,
) -> None:
    """Neutral unless an expression is clear of it, in place.

    `members` are one face's expression classes (label: (params, per-frame result)), `aus`
    the face's per-frame action units. In each frame a non-neutral class keeps its score only
    when it beats neutral's by `neutral_margin`; where `talking` (the talk rule's per-frame
    score, NaN or None where unmeasured) says the face speaks, a class with a `speech_margin`
    must beat neutral by that much more unless its own action units reach `speech_au_min`: a
    talking mouth opens like a smile or a gasp and the classifiers read it so, but talking
    does not pull the lip corners up. A frame no class is clear in is left to neutral, or to
    nothing when neutral is not above its own threshold either.
    """
    neutral = [label for label, (p, _) in members.items() if p.get("mode") == "absence"]
    if len(neutral) != 1:
        return
    baseline = np.nan_to_num(members[neutral[0]][1].scores, nan=0.0)
    speaking = np.zeros(len(baseline), dtype=bool)
    if talking is not None:
        speaking = np.nan_to_num(talking, nan=0.0) >= 0.5
    for label, (p, result) in members.items():
        if label == neutral[0]:
            continue
        weights = p.get("au_weights", {})
        unsupported = np.array(
            [au_score(frame_aus, weights) < p.get("speech_au_min", 1.0) for frame_aus in aus]
        )
        extra = np.where(speaking & unsupported, p.get("speech_margin", 0.0), 0.0)
        need = p.get("neutral_margin", 0.0) + extra
        seen = ~np.isnan(result.scores)
        weak = seen & (result.scores - baseline < need)
        result.scores = np.where(weak, 0.0, result.scores)


def au_score(aus: dict[str, float], weights: dict[str, float]) -> float:
    """The weighted mean of a prototype's action units in one frame (0 without them)."""
    known = {au: w for au, w in weights.items() if au in aus}
    if not known:
        return 0.0
    return sum(w * aus[au] for au, w in known.items()) / sum(weights.values())


def au_prototype(track: Track, p: dict[str, Any]) -> Scored:
    """Emotion from FACS action units: the weighted mean of the prototype's AU intensities.

    `mode: absence` (neutral) scores how close every AU stays to the face's baseline.
    """
    out = Scored.empty(len(track.frames))
    weights = p.get("au_weights", {})
    for index, aus in enumerate(track.aus):
        if not aus:
            continue
        out.boxes[index] = track.frames[index].face_box
        if p.get("mode") == "absence":
            peak_au = max(aus, key=aus.get)
            out.scores[index] = ramp(aus[peak_au], 2 * p["max_activation"], p["max_activation"])
            out.cues[index] = (
                f"no action unit above {p['max_activation']} "
                f"(strongest {peak_au} {aus[peak_au]:.2f})"
            )
            continue
        known = {au: w for au, w in weights.items() if au in aus}
        if not known:
            continue
        total = sum(weights.values())
        score = sum(w * aus[au] for au, w in known.items()) / total
        # AUs that contradict the prototype (a lip-corner pull is not disgust).
        against = [w * aus[au] for au, w in p.get("au_against", {}).items() if au in aus]
        if against:
            score *= 1.0 - min(1.0, max(against))
        if p.get("unilateral") and "AU14" in aus:
            score = min(score, ramp(aus["AU14"], 0.0, p.get("min_asymmetry", 0.3)))
        out.scores[index] = score
        out.cues[index] = au_cue(aus, known)
    return out


def au_cue(aus: dict[str, float], weights: dict[str, float]) -> str:
    """'AU12 lip corner puller 0.80, AU6 cheek raiser 0.60' for the prototype's active AUs."""
    names = au_calibration()
    active = sorted(weights, key=lambda au: -aus[au] * weights[au])
    return (
        ", ".join(f"{au} {names[au]['name']} {aus[au]:.2f}" for au in active if aus[au] >= 0.1)
        or "weak AU evidence"
    )
