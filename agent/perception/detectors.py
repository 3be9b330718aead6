"""The registry of detectors that knowledge-base classes name in `perception.detector`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.perception.capabilities import FALLBACK, REQUIRES
from agent.perception.rules import action, emotion, gesture, speech
from agent.perception.rules.common import Scored, Track

Detector = Callable[[Track, dict[str, Any]], Scored]

DETECTORS: dict[str, Detector] = {
    "hand_sign": gesture.hand_sign,
    "hand_near_face": gesture.hand_near_face,
    "hand_raise": gesture.hand_raise,
    "wrist_oscillation": gesture.wrist_oscillation,
    "head_oscillation": gesture.head_oscillation,
    "gaze_aversion": gesture.gaze_aversion,
    "au_prototype": emotion.au_prototype,
    "expression_model": emotion.expression_model,
    "posture": action.posture,
    "posture_transition": action.posture_transition,
    "gait": action.gait,
    "arms_crossed": gesture.arms_crossed,
    "shrug": gesture.shrug,
    "fidgeting": gesture.fidgeting,
    "object_interaction": action.object_interaction,
    "exercise_posture": action.exercise_posture,
    "joined_hands": action.joined_hands,
    "mouth_movement": speech.mouth_movement,
}
# Labels that compete frame by frame (one hand shape per hand, one expression per face).
EXCLUSIVE = ("hand_sign", "au_prototype", "expression_model")
__all__ = ["DETECTORS", "EXCLUSIVE", "FALLBACK", "REQUIRES"]
