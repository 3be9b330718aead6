"""Offline perception on CPU: mediapipe landmarks → features → knowledge-base rules → detections.

Public API: `Perceiver` (mediapipe, heavy: make one and inject it), `PerceptionSession`
(`add(batch)` as `segment(..., on_frames=session.add)`, then `finish()`), `perceive_video`,
`perceive_image` (one-call helpers over `agent.perception.runner`, the one perception runner),
`draw_overlay`, `render_overlay`.
"""

from agent.perception.landmarks import FrameLandmarks, Perceiver, Person
from agent.perception.overlay import draw_overlay, render_overlay
from agent.perception.runner import perceive_image, perceive_video
from agent.perception.session import PerceptionSession

__all__ = [
    "FrameLandmarks",
    "draw_overlay",
    "render_overlay",
    "PerceptionSession",
    "Perceiver",
    "Person",
    "perceive_image",
    "perceive_video",
]
