"""What every perception rule shares: the per-person track it reads, the per-frame scores it
returns, its parameters (`defaults.yaml` under the knowledge base's own) and fuzzy ramps.

Every threshold comes from the class's `perception.params` (the knowledge base), on top of
`agent/perception/defaults.yaml`; none is a constant in a rule. A detector returns, for each
sampled frame, a score in 0..1 (NaN where the body part is not visible), the box it is about
and a short text of what was seen. `agent.perception.session` smooths these into detections.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agent.perception.features import FrameFeatures

_DEFAULTS = Path(__file__).resolve().parents[1] / "defaults.yaml"
NAN = float("nan")


@dataclass
class Track:
    """What detectors read: one person's per-frame features and AU intensities, in time order."""

    frames: list[FrameFeatures]
    aus: list[dict[str, float]]
    step_s: float

    @property
    def times_s(self) -> np.ndarray:
        return np.array([f.time_s for f in self.frames], dtype=float)

    def series(self, part: str, key: str) -> np.ndarray:
        """One body/head value over time (NaN where absent)."""
        return np.array([getattr(f, part).get(key, NAN) for f in self.frames], dtype=float)


@dataclass
class Scored:
    """Per-frame output of one detector for one class."""

    scores: np.ndarray
    boxes: list[list[float] | None]
    cues: list[str]

    @classmethod
    def empty(cls, n: int) -> Scored:
        return cls(np.full(n, NAN), [None] * n, [""] * n)


@cache
def defaults() -> dict[str, Any]:
    """Default parameters per detector and for smoothing (`defaults.yaml`)."""
    return yaml.safe_load(_DEFAULTS.read_text(encoding="utf-8"))


def merged_params(detector: str, params: dict[str, Any]) -> dict[str, Any]:
    """Smoothing defaults, then the detector's defaults, then the class's own params."""
    table = defaults()
    return {**table["smoothing"], **table.get(detector, {}), **(params or {})}


def ramp(value: float, lo: float, hi: float) -> float:
    """0 at `lo`, 1 at `hi` (either order), linear between."""
    if hi == lo:
        return float(value >= hi)
    return float(np.clip((value - lo) / (hi - lo), 0.0, 1.0))


def within(value: float, lo: float, hi: float, margin: float) -> float:
    """1 inside [lo, hi], falling to 0 at `margin` outside."""
    if lo <= value <= hi:
        return 1.0
    gap = lo - value if value < lo else value - hi
    return float(max(0.0, 1.0 - gap / max(margin, 1e-9)))


def windowed(track: Track, window_s: float):
    """For each frame, the indices of frames within ±window_s / 2."""
    times = track.times_s
    for index, time_s in enumerate(times):
        lo = np.searchsorted(times, time_s - window_s / 2, side="left")
        hi = np.searchsorted(times, time_s + window_s / 2, side="right")
        yield index, slice(lo, hi)
