"""Knowledge-base schema: the behavior-class records (pydantic), required ids, FACS AU names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.errors import BehaviorAgentError
from agent.state import Kind

KINDS: tuple[Kind, ...] = ("emotion", "gesture", "action")
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

# The classes the shipped knowledge base must cover (issue 3; DFEW/FERV39k, MAFW, RAVDESS,
# HaGRID-style hand signs, conversational gestures, daily-living actions).
REQUIRED_IDS: dict[Kind, tuple[str, ...]] = {
    "emotion": (
        "neutral", "happy", "sad", "angry", "fear", "disgust", "surprise", "contempt",
        "anxiety", "helplessness", "disappointment", "calm",
    ),
    "gesture": (
        "thumbs_up", "thumbs_down", "victory", "ok_sign", "open_palm", "stop_sign", "fist",
        "pointing", "index_up", "call_sign", "shush", "wave", "hand_raise", "nod", "head_shake",
        "shrug", "arms_crossed", "face_touch", "head_scratch", "hand_over_mouth", "clapping",
        "fidgeting", "gaze_aversion",
    ),
    "action": (
        "walk", "run", "sit_down", "stand_up", "lie_down", "fall", "drink", "eat", "use_phone",
        "read", "write", "type", "talk", "cook", "clean", "take_medication", "exercise",
        "play_instrument", "apply_makeup", "hug", "shake_hands",
    ),
}  # fmt: skip

# FACS action unit names (Ekman, Friesen & Hager 2002), used to catch mislabelled AUs.
FACS_AU_NAMES: dict[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    11: "nasolabial deepener",
    12: "lip corner puller",
    13: "sharp lip puller",
    14: "dimpler",
    15: "lip corner depressor",
    16: "lower lip depressor",
    17: "chin raiser",
    18: "lip pucker",
    20: "lip stretcher",
    22: "lip funneler",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
    27: "mouth stretch",
    28: "lip suck",
    41: "lid droop",
    43: "eyes closed",
    45: "blink",
    51: "head turn left",
    52: "head turn right",
    53: "head up",
    54: "head down",
    55: "head tilt left",
    56: "head tilt right",
    57: "head forward",
    58: "head back",
    61: "eyes turn left",
    62: "eyes turn right",
    63: "eyes up",
    64: "eyes down",
}


ParamValue = bool | int | float | str | list[Any] | dict[str, Any]


class KnowledgeBaseError(BehaviorAgentError):
    """One or more knowledge-base files are malformed; `problems` lists each precisely."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = f"{len(problems)} problem(s) in the knowledge base:" if len(problems) > 1 else ""
        super().__init__("\n".join([head, *problems]).strip())


class UnknownClassError(BehaviorAgentError):
    """An id that no class in the knowledge base has."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionUnit(_Strict):
    """One FACS action unit of an emotion prototype."""

    au: int = Field(ge=1, le=99, description="FACS action unit number (AU12 -> 12).")
    name: str = Field(description="FACS name, e.g. 'lip corner puller'.")
    role: Literal["core", "common"] = Field(
        "core", description="core: part of the prototype; common: often present, not required."
    )

    @model_validator(mode="after")
    def _name_matches_number(self) -> ActionUnit:
        expected = FACS_AU_NAMES.get(self.au)
        if expected and self.name.strip().lower() != expected:
            raise ValueError(f"AU{self.au} is '{expected}' in FACS, not '{self.name}'")
        return self


class Temporal(_Strict):
    """How long the behavior typically lasts and how it unfolds."""

    min_s: float = Field(ge=0, description="Shortest typical duration in seconds.")
    max_s: float | None = Field(
        None, ge=0, description="Longest typical duration in seconds; null = open-ended state."
    )
    pattern: str = Field(min_length=10, description="Onset / apex / offset pattern in words.")

    @model_validator(mode="after")
    def _ordered(self) -> Temporal:
        if self.max_s is not None and self.max_s < self.min_s:
            raise ValueError(f"max_s ({self.max_s}) is below min_s ({self.min_s})")
        return self


class Confusion(_Strict):
    """A class this one is easily mistaken for, and how to tell the two apart."""

    id: str
    how_to_tell: str = Field(min_length=10)


class Perception(_Strict):
    """What the offline landmark backend checks; `detector` names a rule in agent/perception/."""

    detector: str = Field(min_length=1)
    landmarks: list[str] = Field(min_length=1)
    movement: str = Field(min_length=1)
    params: dict[str, ParamValue] = Field(default_factory=dict)


class BehaviorClass(_Strict):
    """One emotion, gesture or action, as the agent, the prompts and the reports know it."""

    id: str
    kind: Kind
    name: str = Field(min_length=1)
    synonyms: list[str] = Field(min_length=1)
    definition: str = Field(min_length=20)
    cues: list[str] = Field(min_length=1)
    action_units: list[ActionUnit] = Field(default_factory=list)
    temporal: Temporal
    confusions: list[Confusion] = Field(default_factory=list)
    perception: Perception | None
    sources: list[str] = Field(min_length=1)
    # Label names of this class in public datasets ({"HaGRID": ["like"]}); exact-match only.
    dataset_labels: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(f"'{value}' is not snake_case (lower-case letters, digits, '_')")
        return value

    def consistency_problems(self) -> list[tuple[str, str]]:
        """(field, problem) pairs that the field types alone cannot express."""
        problems = []
        if self.action_units and self.kind != "emotion":
            problems.append(("action_units", "only emotions have FACS action units; remove it"))
        seen: set[str] = set()
        for index, confusion in enumerate(self.confusions):
            if confusion.id == self.id:
                problems.append(
                    (f"confusions[{index}].id", "a class cannot be confused with itself")
                )
            elif confusion.id in seen:
                problems.append(
                    (
                        f"confusions[{index}].id",
                        f"'{confusion.id}' is listed twice; merge the entries",
                    )
                )
            seen.add(confusion.id)
        return problems

    def au_text(self) -> str:
        """'AU6 cheek raiser + AU12 lip corner puller' (core units only)."""
        return " + ".join(f"AU{a.au} {a.name}" for a in self.action_units if a.role == "core")


@dataclass(frozen=True)
class ClassMatch:
    """A class that a piece of text refers to, with a score in [0, 1]."""

    id: str
    kind: Kind
    score: float
