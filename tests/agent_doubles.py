"""Test doubles for the agent: a knowledge base, a clip index and a VLM with known behavior."""

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from agent.state import Clip, Detection


@dataclass(frozen=True)
class FakeMatch:
    id: str
    kind: str
    score: float


@dataclass(frozen=True)
class FakePerception:
    """A landmark rule that needs no learned model (`agent.perception.capabilities`: "rule")."""

    detector: str = "fake_rule"


@dataclass
class FakeClass:
    id: str
    kind: str
    name: str
    synonyms: list[str]
    definition: str
    # None = no offline rule can observe it (capabilities: not checkable offline).
    perception: FakePerception | None = field(default_factory=FakePerception)


CLASSES = [
    FakeClass(
        "thumbs_up",
        "gesture",
        "thumbs up",
        ["thumb up", "thumbs-up", "like"],
        "A closed fist with the thumb extended upward. Signals approval.",
    ),
    FakeClass(
        "happy",
        "emotion",
        "happy",
        ["smiling", "smile", "smiles", "joy"],
        "Happiness: AU6 cheek raiser with AU12 lip corner puller.",
    ),
    FakeClass(
        "sad",
        "emotion",
        "sad",
        ["sadness", "unhappy"],
        "Sadness: AU1 inner brow raiser with AU15 lip corner depressor.",
    ),
    FakeClass(
        "walk",
        "action",
        "walk",
        ["walking", "walks", "strolling"],
        "Moving on foot with alternating steps.",
    ),
    FakeClass(
        "sit_down",
        "action",
        "sit down",
        ["sits down", "sitting down"],
        "Lowering the body from standing onto a seat.",
    ),
    FakeClass(
        "wave",
        "gesture",
        "wave",
        ["waving", "waves"],
        "An open hand moved side to side, usually a greeting.",
    ),
    FakeClass(
        "play_instrument",
        "action",
        "Playing an instrument",
        ["playing the piano", "piano", "guitar"],
        "Producing music with a musical instrument.",
        perception=None,
    ),
]


class FakeKB:
    """Synonym matching only: a phrase found in the text scores 0.9, otherwise 0.1."""

    def __init__(self) -> None:
        self._classes = {c.id: c for c in CLASSES}

    def ids(self, kind: str | None = None) -> list[str]:
        return [c.id for c in CLASSES if kind is None or c.kind == kind]

    def get(self, class_id: str) -> FakeClass:
        return self._classes[class_id]

    def match(self, text: str, k: int = 5, kinds: list[str] | None = None) -> list[FakeMatch]:
        found = []
        for item in CLASSES:
            if kinds and item.kind not in kinds:
                continue
            words = [item.name, *item.synonyms]
            score = 0.9 if any(w in text.lower() for w in words) else 0.1
            found.append(FakeMatch(item.id, item.kind, score))
        return sorted(found, key=lambda m: -m.score)[:k]

    def prompt_snippet(self, ids: list[str] | None = None) -> str:
        return "\n".join(f"- {i}: {self._classes[i].definition}" for i in ids or self.ids())


@dataclass
class FakeHit:
    clip_id: int
    start_s: float
    end_s: float
    score: float
    caption: str = ""
    detections: list[Detection] = field(default_factory=list)


class FakeIndex:
    """Clips of fixed length and a list of detections; search returns overlapping clips."""

    def __init__(
        self,
        sha: str,
        duration_s: float,
        detections: list[Detection],
        clip_length_s: float = 10.0,
        captions: dict[int, str] | None = None,
    ) -> None:
        self.sha = sha
        self._detections = detections
        self._captions = captions or {}
        starts = [i * clip_length_s for i in range(int(duration_s // clip_length_s) + 1)]
        self._clips = [
            Clip(clip_id=n, start_s=s, end_s=min(s + clip_length_s, duration_s))
            for n, s in enumerate(starts)
            if s < duration_s
        ]
        self.searches: list[dict[str, Any]] = []

    def detections(self, sha: str) -> list[Detection]:
        assert sha == self.sha
        return list(self._detections)

    def clips(self, sha: str) -> list[Clip]:
        assert sha == self.sha
        return list(self._clips)

    def search(self, text, k, video=None, start_s=None, end_s=None, labels=None):
        self.searches.append({"text": text, "k": k, "start_s": start_s, "end_s": end_s})
        hits = [
            FakeHit(
                c.clip_id,
                c.start_s,
                c.end_s,
                1.0 - 0.1 * c.clip_id,
                self._captions.get(c.clip_id, ""),
            )
            for c in self._clips
            if (start_s is None or c.end_s >= start_s) and (end_s is None or c.start_s <= end_s)
        ]
        return hits[:k]

    def retrieve(self, text, k, *, kb, video=None, start_s=None, end_s=None, labels=None):
        """Hybrid search's shape: the same clips as `search`, as hits of a retrieval."""
        return SimpleNamespace(hits=self.search(text, k, video, start_s, end_s, labels))


@dataclass
class FakeReply:
    text: str
    data: dict | None


class FakeVLM:
    """Deterministic replies: streams its text token by token; `data` as given.

    It names itself "fake-vlm": answers must call it that, never VideoLLaMA3.
    """

    name = "fake-vlm"

    def __init__(
        self,
        text: str = "She raises her thumb.",
        data: dict | None = None,
        plan_data: dict | None = None,
    ) -> None:
        self.text, self.data, self.plan_data = text, data, plan_data
        self.calls: list[dict[str, Any]] = []

    def answer(self, question, frames, info, kb_snippet, on_token=None):
        self.calls.append({"question": question, "frames": len(frames), "snippet": kb_snippet})
        for word in self.text.split():
            if on_token:
                on_token(word + " ")
        return FakeReply(text=self.text, data=self.data)

    def generate(self, prompt, frames, info, on_token=None, max_new_tokens=None):
        """Free-form text: the plan JSON when one was given, otherwise unparsable prose."""
        self.calls.append({"prompt": prompt, "frames": len(frames)})
        text = json.dumps(self.plan_data) if self.plan_data is not None else "I think so, maybe."
        return FakeReply(text=f"Here is the plan: {text}", data=None)
