"""Perception rules by kind (`emotion`, `gesture`, `action`) on what they share (`common`).

A knowledge-base class names its rule in `perception.detector`; `agent.perception.detectors`
is the registry that maps those names to the functions here.
"""

from agent.perception.rules.action import (
    exercise_posture,
    gait,
    joined_hands,
    object_interaction,
    people_motion,
    posture,
    posture_scores,
    posture_transition,
)
from agent.perception.rules.common import Scored, Track, defaults, merged_params, ramp, within
from agent.perception.rules.emotion import au_cue, au_prototype, expression_model
from agent.perception.rules.gesture import (
    arms_crossed,
    fidgeting,
    gaze_aversion,
    hand_near_face,
    hand_raise,
    hand_shape_score,
    hand_sign,
    head_oscillation,
    shrug,
    wrist_oscillation,
)

__all__ = [
    "Scored",
    "Track",
    "arms_crossed",
    "au_cue",
    "au_prototype",
    "defaults",
    "exercise_posture",
    "expression_model",
    "fidgeting",
    "gait",
    "gaze_aversion",
    "hand_near_face",
    "hand_raise",
    "hand_shape_score",
    "hand_sign",
    "head_oscillation",
    "joined_hands",
    "merged_params",
    "object_interaction",
    "people_motion",
    "posture",
    "posture_scores",
    "posture_transition",
    "ramp",
    "shrug",
    "within",
    "wrist_oscillation",
]
