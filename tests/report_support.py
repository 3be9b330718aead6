"""Support for the report tests: a small knowledge base, a scripted VLM, detections."""

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from agent.context import Context
from agent.report import assemble_report
from agent.report.model import ReportData
from agent.state import Clip, Detection
from agent.video import probe
from tests.synthetic import write_video


@dataclass
class StubClass:
    """The fields of a knowledge-base class that a report quotes."""

    id: str
    kind: str
    name: str
    definition: str
    cues: list[str]
    confusions: list[SimpleNamespace] = field(default_factory=list)
    sources: list[str] = field(default_factory=lambda: ["A. Author (2020). A source."])
    temporal: SimpleNamespace | None = None
    action_units: list = field(default_factory=list)

    def au_text(self) -> str:
        return "AU6 cheek raiser + AU12 lip corner puller" if self.action_units else ""


class StubKB:
    """Knowledge-base double with the API the report uses (`in`, get, match, prompt_snippet)."""

    def __init__(self) -> None:
        temporal = SimpleNamespace(min_s=0.5, max_s=3.0, pattern="Quick rise, short hold, drop.")
        self.classes = {
            "happy": StubClass(
                "happy",
                "emotion",
                "Happiness",
                "A positive emotion shown by a smile with raised cheeks.",
                ["Lip corners pulled up (AU12)", "Cheeks raised (AU6)"],
                [SimpleNamespace(id="neutral", how_to_tell="Neutral has no lip-corner pull.")],
                action_units=["AU6", "AU12"],
                temporal=temporal,
            ),
            "neutral": StubClass(
                "neutral", "emotion", "Neutral", "A relaxed face without expression.", ["Relaxed"]
            ),
            "sad": StubClass(
                "sad", "emotion", "Sadness", "Inner brows raised, lip corners down.", ["AU1, AU15"]
            ),
            "thumbs_up": StubClass(
                "thumbs_up",
                "gesture",
                "Thumbs up",
                "A closed fist with the thumb extended upward.",
                ["Thumb extended up", "Fingers curled"],
                [
                    SimpleNamespace(id="fist", how_to_tell="A fist keeps the thumb folded."),
                    SimpleNamespace(id="happy", how_to_tell="Not a gesture; listed for links."),
                ],
                temporal=temporal,
            ),
            "wave": StubClass(
                "wave", "gesture", "Wave", "An open hand moved side to side.", ["Palm out"]
            ),
            "walk": StubClass("walk", "action", "Walking", "Moving on foot.", ["Legs alternate"]),
        }
        self.snippet_requests: list[list[str]] = []

    def __contains__(self, class_id: str) -> bool:
        return class_id in self.classes

    def get(self, class_id: str) -> StubClass:
        return self.classes[class_id]

    def match(self, text: str, k: int = 5, kinds=None) -> list[SimpleNamespace]:
        words = set(text.lower().split())
        found = [c for c in self.classes.values() if words & set(c.name.lower().split())]
        return [SimpleNamespace(id=c.id, kind=c.kind, score=0.8) for c in found][:k]

    def prompt_snippet(self, ids: list[str]) -> str:
        self.snippet_requests.append(list(ids))
        return "\n".join(f"- {i}: {self.classes[i].definition}" for i in ids)


class ScriptedVLM:
    """VLM double: narrates with fixed text, records what it was asked, can fail once.

    `text` may hold `{n}` (the call number); the default is plain prose without times.
    """

    model_id = "test/scripted-vlm"
    quantization = "4bit"
    name = "scripted"

    def __init__(
        self, fail_on_call: int | None = None, text: str = "  The person smiles (call {n}).  "
    ) -> None:
        self.calls: list[dict] = []
        self.fail_on_call = fail_on_call
        self.text = text

    def narrate(self, evidence, frames, info, kb_snippet):
        self.calls.append({"evidence": evidence, "frames": frames, "kb_snippet": kb_snippet})
        if self.fail_on_call == len(self.calls):
            raise RuntimeError("simulated out-of-memory")
        return SimpleNamespace(text=self.text.format(n=len(self.calls)), data=None)


def detection(kind, label, start_s, end_s, confidence=0.8, **extra) -> Detection:
    return Detection(
        kind=kind, label=label, start_s=start_s, end_s=end_s, confidence=confidence, **extra
    )


def sample_detections() -> list[Detection]:
    """A 12 s recording: a merged smile, a sad episode, a thumbs-up, a walk, an unknown action."""
    return [
        detection(
            "emotion", "happy", 0.5, 2.0, 0.8, cues="AU12 0.8, AU6 0.6", bbox=[0.3, 0.2, 0.3, 0.4]
        ),
        detection("emotion", "happy", 2.5, 4.0, 0.6, cues="AU12 0.6"),
        detection("emotion", "sad", 7.0, 9.0, 0.5),
        detection(
            "gesture", "thumbs_up", 3.0, 5.5, 0.9, bbox=[0.5, 0.5, 0.2, 0.3], cues="thumb up"
        ),
        detection("action", "walk", 6.0, 11.0, 0.7),
        detection("action", "arm wrestling", 8.0, 10.0, 0.6, source="vlm"),
    ]


def sample_report(folder: Path, video_name: str = "clip.mp4") -> ReportData:
    """The report of a synthetic 12 s, two-shot video with `sample_detections()`."""
    video = write_video(folder / video_name, [6.0, 6.0])
    ctx = Context(home=folder / "home")
    clips = [Clip(clip_id=0, start_s=0.0, end_s=6.0), Clip(clip_id=1, start_s=6.0, end_s=12.0)]
    return assemble_report(
        probe(video, ctx), clips, sample_detections(), ctx, kb=StubKB(), vlm=ScriptedVLM()
    )
