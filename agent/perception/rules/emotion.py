"""Emotion detector on the learned facial-expression classifier, explained by action units.

The classifier's probability for the class's `model_label` is the per-frame score. The face's
action-unit intensities (landmark geometry against the face's own neutral baseline) do not
decide the label; they are the explanation shown with it, and they temper the score a
little (`au_fusion`): a "happy" frame whose lip corners never moved is less certain.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agent.perception.rules import Scored, Track, au_cue


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
            au_score = sum(w * aus[au] for au, w in known.items()) / sum(weights.values())
            score = (1.0 - fusion) * probability + fusion * min(1.0, au_score)
            cue += f"; {au_cue(aus, known)}"
        elif p.get("mode") == "absence" and aus:
            peak = max(aus, key=aus.get)
            cue += f"; strongest action unit {peak} {aus[peak]:.2f}"
        out.scores[index] = float(np.clip(score, 0.0, 1.0))
        out.boxes[index] = frame.face_box
        out.cues[index] = cue
    return out
