"""Offline perception on CPU: mediapipe landmarks → features → knowledge-base rules → detections.

Public API: `Perceiver` (mediapipe, heavy: make one and inject it), `PerceptionSession`
(`add(batch)` as `segment(..., on_frames=session.add)`, then `finish()`), `perceive_video`,
`perceive_image` (one-call helpers over `agent.perception.runner`, the one perception runner),
`draw_overlay`, `render_overlay`.

The names below are imported on first use, so that `agent.perception.capabilities` (files
only) can be read on the answer path without loading OpenCV, decord or mediapipe.
"""

from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in ("FrameLandmarks", "Perceiver", "Person"):
        from agent.perception import landmarks as module
    elif name in ("draw_overlay", "render_overlay"):
        from agent.perception import overlay as module
    elif name in ("perceive_image", "perceive_video"):
        from agent.perception import runner as module
    elif name == "PerceptionSession":
        from agent.perception import session as module
    else:
        raise AttributeError(f"module 'agent.perception' has no attribute '{name}'")
    return getattr(module, name)
