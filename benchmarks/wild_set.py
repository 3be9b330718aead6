"""Everyday footage (../shared/devset) as labelled clips, and how detections on them are judged.

Shared by `wild_eval.py` (the benchmark and the fit). Each clip knows its source repository
(the unit of the held-out folds), which kinds its labels cover, and the labelled events:

- gestures: the gestures/ manifest (one row per event; `other` events are hand motions that
  are no knowledge-base gesture, so any detection there is a false one), plus the sign-free
  clips (`hand_signs: none` in actions/, and the long recordings l01/l02): every gesture
  detection there is false.
- actions: the actions/ manifest, one action (or `other`) per clip. `talk` is not labelled
  there, so it is not scored.
- emotions: the emotions/ manifest and the clear faces of actions/, one expression per clip.
- ../shared/media (benchmarks/devset.yaml) as one more source, `shared/media`.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from devset import SHARED_MEDIA, load_devset  # benchmarks/ is the script's folder
from wild_emotion import speech_figures

from agent.evaluation.metrics import accuracy, uar
from agent.evaluation.predictors import label_from_detections
from agent.events import merge_detections

SHARED_DEVSET = SHARED_MEDIA.parent / "devset"
MEDIA_SOURCE = "shared/media"
# The seven basic classes of the expression figures (contempt and the rest are left out).
BASIC_EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
# Manifest gesture names → the knowledge-base classes a detection may carry for that event.
GESTURE_LABELS = {
    "waving": ("wave",),
    "raising_hand": ("hand_raise",),
    "nodding": ("nod",),
    "head_shake": ("head_shake",),
    "pointing": ("pointing",),
    "open_palm": ("open_palm",),
    "fist": ("fist",),
    # g02 is a finger held on the lips: touching the face, shushing, a hand at the mouth.
    "face_touching": ("face_touch", "shush", "hand_over_mouth"),
}
# Not labelled in the devset manifests: neither right nor wrong there.
UNLABELLED_ACTIONS = ("talk",)


@dataclass
class Event:
    """A labelled event: the classes that match it, and its span (None = the whole clip)."""

    name: str
    labels: tuple[str, ...]
    start_s: float | None = None
    end_s: float | None = None

    def matches(self, label: str, start_s: float, end_s: float) -> bool:
        if label not in self.labels:
            return False
        return self.start_s is None or (start_s <= self.end_s and end_s >= self.start_s)


@dataclass
class Clip:
    """One labelled file. A kind's events are None where that kind is not scored on it."""

    name: str
    path: Path
    source: str
    gestures: list[Event] | None = None
    actions: list[Event] | None = None
    emotion: str | None = None
    sign_free: bool = False
    ambiguous: set[str] = field(default_factory=set)
    # Whether the clip counts for the gesture precision figure (the gesture clips).
    gesture_clip: bool = False

    def events(self, kind: str) -> list[Event] | None:
        return {"gesture": self.gestures, "action": self.actions}.get(kind)

    def judge(self, kind: str, label: str, start_s: float, end_s: float) -> bool | None:
        """True/False for a detection of a scored kind; None where it is not scored."""
        if label in self.ambiguous:
            return None
        if kind == "emotion":
            return None if self.emotion is None else label == self.emotion
        events = self.events(kind)
        if events is None:
            return None
        return any(e.matches(label, start_s, end_s) for e in events)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rows(kind: str) -> list[dict[str, str]]:
    with open(SHARED_DEVSET / kind / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _span(row: dict, start: str, end: str) -> tuple[float | None, float | None]:
    if not row.get(start) and not row.get(end):
        return None, None
    return float(row[start] or 0.0), float(row[end] or 1e9)


def load_clips(generated_dir: Path, *, media: bool = True) -> list[Clip]:
    """Every labelled devset clip (and, with `media`, the shared media items)."""
    if not (SHARED_DEVSET / "actions" / "manifest.csv").is_file():
        raise SystemExit(
            f"{SHARED_DEVSET} has no actions/manifest.csv: set BEHAVIOR_AGENT_SHARED_MEDIA to "
            "the shared media folder (the devset lies beside it)"
        )
    clips = _action_clips() + _gesture_clips() + _emotion_clips()
    if media:
        clips += _media_clips(generated_dir)
    return clips


def _action_clips() -> list[Clip]:
    out = []
    for row in _rows("actions"):
        start, end = _span(row, "action_start_s", "action_end_s")
        actions = (
            []
            if row["action_id"] == "other"
            else [Event(row["action_id"], (row["action_id"],), start, end)]
        )
        sign_free = row["hand_signs"] == "none"
        emotion = (
            row["emotion"] if row["faces"] == "clear" and row["emotion"] in BASIC_EMOTIONS else None
        )
        out.append(
            Clip(
                name=f"actions/{row['file']}",
                path=SHARED_DEVSET / "actions" / row["file"],
                source=row["source_repo"],
                # Clips with a sign (ASL, pointing at a shelf) have no gesture labels.
                gestures=[] if sign_free else None,
                actions=actions,
                emotion=emotion,
                sign_free=sign_free,
                ambiguous=set(UNLABELLED_ACTIONS),
            )
        )
    return out


def _gesture_clips() -> list[Clip]:
    clips: dict[str, Clip] = {}
    for row in _rows("gestures"):
        clip = clips.get(row["file"])
        if clip is None:
            clip = clips[row["file"]] = Clip(
                name=f"gestures/{row['file']}",
                path=SHARED_DEVSET / "gestures" / row["file"],
                source=row["source_repo"],
                gestures=[],
                sign_free=row["label_type"] == "long",
                gesture_clip=row["label_type"] != "long",
            )
        if row["label_type"] == "gesture":
            start, end = _span(row, "start_s", "end_s")
            labels = GESTURE_LABELS.get(row["label"], ())
            clip.gestures.append(Event(row["label"], labels, start, end))
    return list(clips.values())


def _emotion_clips() -> list[Clip]:
    out = []
    for row in _rows("emotions"):
        if row["label"] not in BASIC_EMOTIONS:
            continue
        out.append(
            Clip(
                name=f"emotions/{row['file']}",
                path=SHARED_DEVSET / "emotions" / row["file"],
                source=row["source_repo"],
                emotion=row["label"],
            )
        )
    return out


def _media_clips(generated_dir: Path) -> list[Clip]:
    """The shared media items of benchmarks/devset.yaml, as clips of one extra source."""
    out = []
    for item in load_devset(generated_dir):
        ambiguous = set(item.ambiguous) | set(UNLABELLED_ACTIONS)
        clip = Clip(item.name, item.path, MEDIA_SOURCE, ambiguous=ambiguous)
        for kind in ("gesture", "action"):
            if kind in item.annotated:
                events = [Event(e.label, (e.label,), e.start_s, e.end_s) for e in item.present]
                setattr(clip, f"{kind}s", events)
        emotions = {e.label for e in item.present if e.label in BASIC_EMOTIONS}
        if "emotion" in item.annotated and len(emotions) == 1:
            clip.emotion = emotions.pop()
        out.append(clip)
    return out


# --- figures ----------------------------------------------------------------------------------


def emotion_reading(detections, duration_s: float, ctx) -> str | None:
    """The expression a clip is read as: the perception backend's documented decision rule
    (`label_from_detections`) over all emotion classes; None = nothing read. The hook the
    expression work refines (e.g. per person, or over the labelled span only)."""
    labels = sorted({d.label for d in detections if d.kind == "emotion"})
    events = merge_detections(detections, duration_s, ctx)
    label, _score, _totals = label_from_detections(events, "emotion", labels)
    return label


def figures(results: list[tuple[Clip, list, float]], ctx) -> dict[str, float | int]:
    """Every figure of the benchmark over (clip, detections, duration_s) triples."""
    f: dict[str, float | int] = {}
    gesture_clips = [(c, d) for c, d, _ in results if c.gesture_clip]
    judged = [
        c.judge("gesture", x.label, x.start_s, x.end_s)
        for c, dets in gesture_clips
        for x in dets
        if x.kind == "gesture"
    ]
    judged = [j for j in judged if j is not None]
    f["gesture_right"], f["gesture_dets"] = sum(judged), len(judged)
    f["gesture_precision"] = sum(judged) / len(judged) if judged else float("nan")
    events = [(c, e, dets) for c, dets in gesture_clips for e in c.gestures if e.labels]
    found = sum(
        any(x.kind == "gesture" and e.matches(x.label, x.start_s, x.end_s) for x in dets)
        for _, e, dets in events
    )
    f["gesture_found"], f["gesture_events"] = found, len(events)
    media = [(c, e, d) for c, d, _ in results if c.source == MEDIA_SOURCE for e in c.gestures or []]
    f["media_gesture_found"] = sum(
        any(x.kind == "gesture" and e.matches(x.label, x.start_s, x.end_s) for x in d)
        for _, e, d in media
    )
    f["media_gesture_events"] = len(media)
    free = [(c, d, s) for c, d, s in results if c.sign_free]
    false = sum(1 for _, dets, _ in free for x in dets if x.kind == "gesture")
    minutes = sum(s for _, _, s in free) / 60.0
    f["signfree_false"], f["signfree_min"] = false, minutes
    f["signfree_per_min"] = false / minutes if minutes else float("nan")
    action_clips = [
        (c, d) for c, d, _ in results if c.actions is not None and c.source != MEDIA_SOURCE
    ]
    labelled = [(c, d) for c, d in action_clips if c.actions]
    f["action_found"] = sum(
        any(x.kind == "action" and c.actions[0].matches(x.label, x.start_s, x.end_s) for x in d)
        for c, d in labelled
    )
    f["action_events"] = len(labelled)
    absent = 0
    for clip, dets in action_clips:
        present = {label for e in clip.actions for label in e.labels}
        absent += sum(
            1
            for x in dets
            if x.kind == "action" and x.label not in present and x.label not in clip.ambiguous
        )
    f["action_absent"], f["action_clips"] = absent, len(action_clips)
    faces = [(c, d, s) for c, d, s in results if c.emotion and c.source != MEDIA_SOURCE]
    gold = [c.emotion for c, _, _ in faces]
    read = [emotion_reading(d, s, ctx) for _, d, s in faces]
    f["emotion_n"] = len(gold)
    f["emotion_war"] = accuracy(gold, read) if gold else float("nan")
    f["emotion_uar"] = uar(gold, read, BASIC_EMOTIONS) if gold else float("nan")
    neutral = [r for g, r in zip(gold, read, strict=True) if g == "neutral"]
    f["neutral_n"] = len(neutral)
    f["neutral_ok"] = sum(r in (None, "neutral") for r in neutral)
    f.update(speech_figures([(c, d, s) for c, d, s in results if c.source != MEDIA_SOURCE]))
    return f
