"""Moments: the stored detections (and object sightings) of some labels, merged into events
with a span, a calibrated confidence and how much of a clip they cover; the units hybrid search
ranks."""

import bisect
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from agent.events import spans_overlap

# Detections of one label closer than this are one moment (a smile that flickers off for half
# a second is one smile); detections are stored already merged per track, so this only joins
# neighbours.
MERGE_GAP_S = 1.0


@dataclass
class Moment:
    """One event of one label in one video: the span of its detections and how strong it is."""

    sha256: str
    kind: str
    label: str
    key: str
    start_s: float
    end_s: float
    confidence: float  # the best calibrated confidence of its detections
    covered_s: float  # seconds the detections cover (union)

    def strength(self, clip_length_s: float) -> float:
        """Confidence, discounted for a moment that fills little of a clip (a half-second
        flicker is weaker evidence than a smile held for the whole clip)."""
        coverage = 1.0 if self.end_s <= self.start_s else min(1.0, self.covered_s / clip_length_s)
        return self.confidence * (0.5 + 0.5 * coverage)


@dataclass(frozen=True)
class Scope:
    """Where to look: one video (sha256) or all, and a time window."""

    sha256: str | None = None
    start_s: float | None = None
    end_s: float | None = None

    def clamp(self, moment: "Moment") -> "Moment":
        """The moment cut to the window: what was seen outside it is not the answer."""
        lo = self.start_s if self.start_s is not None else moment.start_s
        hi = self.end_s if self.end_s is not None else moment.end_s
        start_s, end_s = max(moment.start_s, lo), min(moment.end_s, hi)
        if (start_s, end_s) == (moment.start_s, moment.end_s) or start_s > end_s:
            return moment
        covered_s = moment.covered_s * (end_s - start_s) / max(moment.end_s - moment.start_s, 1e-9)
        return replace(moment, start_s=start_s, end_s=end_s, covered_s=covered_s)

    def sql(self, table: str) -> tuple[str, list[Any]]:
        """A WHERE fragment (with its arguments) for rows of `table` in this scope."""
        where, args = [], []
        if self.sha256 is not None:
            where.append(f"{table}.sha256=?")
            args.append(self.sha256)
        if self.start_s is not None or self.end_s is not None:
            lo = self.start_s if self.start_s is not None else 0.0
            hi = self.end_s if self.end_s is not None else 1e18
            # `agent.events.spans_overlap`, with instants counting inside the window.
            where.append(
                f"(({table}.start_s < ? AND {table}.end_s > ?) OR ({table}.start_s = "
                f"{table}.end_s AND {table}.start_s >= ? AND {table}.start_s <= ?) OR "
                f"(? = ? AND {table}.start_s <= ? AND {table}.end_s >= ?))"
            )
            args.extend([hi, lo, lo, hi, lo, hi, lo, lo])
        return (" AND ".join(where) or "1"), args


@dataclass
class VideoClips:
    """What moments need of one video: its clips in time order, its duration, and how far
    apart the frames its detections and object sightings were read from (0 = not known)."""

    ids: list[int]
    starts_s: list[float]
    ends_s: list[float]
    duration_s: float | None
    sample_step_s: float
    object_step_s: float
    longest_s: float  # the longest clip: how far before a moment a clip holding it may start

    def clip_of(self, moment: "Moment") -> int | None:
        """The rowid of the clip that holds most of a moment."""
        lo = bisect.bisect_left(self.starts_s, moment.start_s - self.longest_s)
        hi = bisect.bisect_right(self.starts_s, moment.end_s)
        best, best_overlap = None, -1.0
        for rowid, start_s, end_s in zip(
            self.ids[lo:hi], self.starts_s[lo:hi], self.ends_s[lo:hi], strict=True
        ):
            if not spans_overlap(moment.start_s, moment.end_s, start_s, end_s):
                continue
            overlap = min(end_s, moment.end_s) - max(start_s, moment.start_s)
            if overlap > best_overlap:
                best, best_overlap = rowid, overlap
        return best

    def widen(self, kind: str, start_s: float, end_s: float) -> tuple[float, float]:
        """A stored span widened to the time its samples stand for, within the video.

        A detection (agent.perception.smoothing) runs from its first sample to one step past
        its last: the onset lies between the sample before and the first one, so the moment
        starts half a step earlier. An object sighting runs from first to last sighting (one
        per object step): half a step on both sides. A still (duration 0) stays an instant.
        """
        top_s = self.duration_s if self.duration_s else end_s
        if kind == "object":
            start_s, end_s = start_s - self.object_step_s / 2, end_s + self.object_step_s / 2
        else:
            start_s -= self.sample_step_s / 2
        return round(max(0.0, start_s), 3), round(min(top_s, end_s), 3)


def video_clips(conn: sqlite3.Connection, sha256: str) -> VideoClips:
    """One video's VideoClips, from its rows and the settings it was indexed with."""
    video = conn.execute(
        "SELECT duration_s, settings FROM videos WHERE sha256=?", (sha256,)
    ).fetchone()
    settings = json.loads(video[1]) if video else {}
    rows = conn.execute(
        "SELECT id, start_s, end_s FROM clips WHERE sha256=? ORDER BY start_s, id", (sha256,)
    ).fetchall()
    return VideoClips(
        ids=[r[0] for r in rows],
        starts_s=[r[1] for r in rows],
        ends_s=[r[2] for r in rows],
        duration_s=video[0] if video else None,
        sample_step_s=_step_s(settings.get("sample_fps")),
        object_step_s=_step_s(settings.get("object_fps")),
        longest_s=max((r[2] - r[1] for r in rows), default=0.0),
    )


def _step_s(fps: Any) -> float:
    return 1.0 / float(fps) if fps else 0.0


def fetch_moments(
    conn: sqlite3.Connection,
    keys: set[tuple[str, str]],
    labels: dict[str, str],
    scope: Scope,
    video: Callable[[str], VideoClips],
) -> list[Moment]:
    """The moments of the (kind, label key) pairs in `keys`, in scope; `video` gives the
    VideoClips of a sha256 (the spans are widened to what their samples stand for).

    Detections are read by label key; object sightings (kind "object") by their label, from
    `labels` (label key -> label).
    """
    rows: list[tuple] = []
    class_keys = sorted({key for kind, key in keys if kind != "object"})
    if class_keys:
        where, args = scope.sql("d")
        marks = ",".join("?" * len(class_keys))
        rows += conn.execute(
            f"SELECT d.sha256, d.kind, d.label, d.label_key, d.start_s, d.end_s, d.confidence "
            f"FROM detections d WHERE d.label_key IN ({marks}) AND {where}",
            [*class_keys, *args],
        ).fetchall()
    key_of = {labels[key]: key for kind, key in keys if kind == "object"}
    if key_of:
        where, args = scope.sql("o")
        marks = ",".join("?" * len(key_of))
        found = conn.execute(
            f"SELECT o.sha256, o.label, o.start_s, o.end_s, o.score FROM objects o "
            f"WHERE o.label IN ({marks}) AND {where}",
            [*sorted(key_of), *args],
        )
        rows += [(sha, "object", label, key_of[label], *rest) for sha, label, *rest in found]
    wanted = [
        (sha, kind, label, key, *video(sha).widen(kind, start_s, end_s), confidence)
        for sha, kind, label, key, start_s, end_s, confidence in rows
        if (kind, key) in keys
    ]
    return [scope.clamp(m) for m in merge_rows(wanted)]


def merge_rows(rows: list[tuple]) -> list[Moment]:
    """Rows (sha256, kind, label, key, start_s, end_s, confidence) merged into moments."""
    rows = sorted(rows, key=lambda r: (r[0], r[1], r[3], r[4], r[5]))
    moments: list[Moment] = []
    current: Moment | None = None
    for sha, kind, label, key, start_s, end_s, confidence in rows:
        confidence = float(confidence or 0.0)
        same = current is not None and (current.sha256, current.kind, current.key) == (
            sha,
            kind,
            key,
        )
        if same and start_s <= current.end_s + MERGE_GAP_S:
            current.covered_s += max(0.0, end_s - max(start_s, current.end_s))
            current.end_s = max(current.end_s, end_s)
            current.confidence = max(current.confidence, confidence)
            continue
        current = Moment(sha, kind, label, key, start_s, end_s, confidence, end_s - start_s)
        moments.append(current)
    return moments
