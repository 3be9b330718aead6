"""The registry of detectors that knowledge-base classes name in `perception.detector`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.capabilities import FALLBACK, REQUIRES
from agent.perception import action_rules, expression_rules, rules
from agent.perception.rules import Scored, Track

Detector = Callable[[Track, dict[str, Any]], Scored]

DETECTORS: dict[str, Detector] = {
    "hand_sign": rules.hand_sign,
    "hand_near_face": rules.hand_near_face,
    "hand_raise": rules.hand_raise,
    "wrist_oscillation": rules.wrist_oscillation,
    "head_oscillation": rules.head_oscillation,
    "gaze_aversion": rules.gaze_aversion,
    "au_prototype": rules.au_prototype,
    "expression_model": expression_rules.expression_model,
    "posture": rules.posture,
    "posture_transition": rules.posture_transition,
    "gait": rules.gait,
    "arms_crossed": rules.arms_crossed,
    "shrug": rules.shrug,
    "fidgeting": rules.fidgeting,
    "object_interaction": action_rules.object_interaction,
    "exercise_posture": action_rules.exercise_posture,
    "joined_hands": action_rules.joined_hands,
}
# Labels that compete frame by frame (one hand shape per hand, one expression per face).
EXCLUSIVE = ("hand_sign", "au_prototype", "expression_model")
__all__ = ["DETECTORS", "EXCLUSIVE", "FALLBACK", "REQUIRES"]
