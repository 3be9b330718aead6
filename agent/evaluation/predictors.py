"""How a benchmark item becomes a prediction, per backend (offline perception or the VLM).

A predictor is built once per worker (it holds the model) and called once per item; it returns
the parsed prediction (None when the answer cannot be parsed, which scores as wrong), the raw
model text, and a score. Parsing is strict: an answer is never guessed.
"""

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agent.context import Context
from agent.errors import ConfigError
from agent.evaluation.annotations import Item
from agent.evaluation.answers import (
    OPTION_LETTERS,
    finite_float,
    parse_label,
    parse_option,
    parse_span,
)
from agent.evaluation.framefolders import folder_info, iter_folder_frames, sample_folder_frames
from agent.evaluation.tasks import Task
from agent.events import Event, label_key, merge_detections, shared_s, spans_overlap
from agent.provenance import ModelProvenance, model_provenance
from agent.state import VideoInfo
from agent.video import FrameBatch, is_image, probe, sample_frames, still_batch

log = logging.getLogger(__name__)

DEFAULT_PROMPTS = {"mcq": "eval_mcq"}


# What became of an item: a prediction, a model answer that could not be read, nothing
# detected to answer from (perception saw no person or behavior of the task's kind), an item
# whose class the backend cannot check (negative items: neither a claim nor an abstention), or
# an error. Only "predicted" can score as right; the others are counted apart.
OUTCOMES = ("predicted", "unparsed", "no_detection", "uncheckable", "failed")
# The prediction of a negative item when the class was not detected: the right abstention.
ABSENT = "absent"


@dataclass
class Prediction:
    """One item's result: `value` None = no answer (`outcome` says why); `raw` is the model's
    text (or perception's detections) as it came."""

    value: Any
    raw: str
    score: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    outcome: str = ""

    def __post_init__(self) -> None:
        if not self.outcome:
            self.outcome = "unparsed" if self.value is None else "predicted"
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {OUTCOMES}")


def outcome_of(record: dict[str, Any]) -> str:
    """What became of an item's record (one of OUTCOMES); records cached before outcomes
    were written are read from their error and prediction."""
    if record.get("error"):
        return "failed"
    if record.get("outcome"):
        return record["outcome"]
    return "unparsed" if record.get("prediction") is None else "predicted"


class Predictor(Protocol):
    """Turns one item of a task into a Prediction; holds its model for the worker's lifetime.

    `provenance` names the backend and models it really runs (`agent.provenance`); a
    predictor without one is described by its `backend` and `model_id` alone.
    """

    backend: str
    model_id: str

    def predict(self, task: Task, item: Item) -> Prediction: ...


def predictor_provenance(predictor: Any) -> ModelProvenance:
    """The provenance record of a built predictor (see `Predictor`)."""
    record = getattr(predictor, "provenance", None)
    if isinstance(record, ModelProvenance):
        return record
    return ModelProvenance(backend=str(predictor.backend), model_id=str(predictor.model_id))


def build_predictor(backend: str, ctx: Context) -> Predictor:
    """The predictor of a backend, with its model loaded (called once in each worker)."""
    if backend == "perception":
        return PerceptionPredictor(ctx)
    if backend == "videollama3":
        from agent.vlm import load_vlm

        return VLMPredictor(ctx, load_vlm(ctx))
    raise ConfigError(f"Unknown backend {backend!r}; use perception or videollama3.")


# --- classification from detections -------------------------------------------------------


def label_from_detections(
    events: list[Event],
    kind: str,
    labels: list[str],
    start_s: float | None = None,
    end_s: float | None = None,
) -> tuple[str | None, float, dict[str, float]]:
    """The documented decision rule of the perception backend for a classification item.

    Among the events (merged detections, `agent.events`) of the task's kind whose label is a
    task label and that overlap the item's span, each label collects confidence x overlap
    seconds (a still image's events, which have no duration, count their confidence once); the
    label with the largest total wins, and its score is its share of all totals. With no such
    event the label is None: "no detection" is its own outcome, never a guessed `neutral`.
    """
    totals: dict[str, float] = {}
    for event in events:
        if event.kind != kind or event.label not in labels:
            continue
        weight = _weight_in_span(event, start_s, end_s)
        if weight > 0:
            totals[event.label] = totals.get(event.label, 0.0) + event.confidence * weight
    if not totals:
        return None, 0.0, {}
    best = max(sorted(totals), key=lambda label: totals[label])
    return best, totals[best] / sum(totals.values()), totals


def _in_span(event: Event, start_s: float | None, end_s: float | None) -> bool:
    lo = -np.inf if start_s is None else start_s
    hi = np.inf if end_s is None else end_s
    return spans_overlap(event.start_s, event.end_s, lo, hi)


def _weight_in_span(event: Event, start_s: float | None, end_s: float | None) -> float:
    """Seconds of the event inside the span (1.0 for an instant inside it), else 0."""
    if not _in_span(event, start_s, end_s):
        return 0.0
    if event.end_s <= event.start_s:
        return 1.0
    lo = -np.inf if start_s is None else start_s
    hi = np.inf if end_s is None else end_s
    return shared_s(event.start_s, event.end_s, lo, hi)


# --- perception backend ---------------------------------------------------------------------


class PerceptionPredictor:
    """Offline landmarks: classification from detections, grounding through the clip index."""

    backend = "perception"

    def __init__(self, ctx: Context, perceiver: Any = None, kb: Any = None) -> None:
        from agent.knowledge import load_knowledge_base
        from agent.perception import Perceiver

        self.ctx = ctx
        self.kb = kb or load_knowledge_base()
        self.perceiver = perceiver or Perceiver(ctx)
        self.provenance = model_provenance(ctx=ctx)
        self.model_id = self.provenance.model_id
        # Items often share a video (several labelled segments); perceive each span once.
        self._cache: OrderedDict[str, list[Event]] = OrderedDict()

    def close(self) -> None:
        """Releases mediapipe's graphs (the runner calls it when the run ends)."""
        self.perceiver.close()

    def predict(self, task: Task, item: Item) -> Prediction:
        if task.type == "classification":
            return self._classify(task, item)
        if task.type == "grounding":
            return _ground_with_index(self.ctx, self.kb, item, perceiver=self.perceiver)
        raise ConfigError(
            "The perception backend cannot answer multiple-choice questions; run this task with "
            "`--backend videollama3`."
        )

    def _classify(self, task: Task, item: Item) -> Prediction:
        if item.negative:
            return self._check_absent(task, item)
        events = self.events(item.path, folder_fps(task))
        label, score, totals = label_from_detections(
            events, task.kind_of(item), task.labels_for(item), item.start_s, item.end_s
        )
        # The "model text" of perception: every event in the item's span, of any kind.
        raw = json.dumps(
            [
                e.model_dump(include={"kind", "label", "start_s", "end_s", "confidence"})
                for e in events
                if _in_span(e, item.start_s, item.end_s)
            ]
        )
        outcome = "predicted" if label is not None else "no_detection"
        return Prediction(label, raw, score, {"totals": totals, "events": len(events)}, outcome)

    def _check_absent(self, task: Task, item: Item) -> Prediction:
        """A negative item: `absent` unless the decision rule, restricted to the item's class,
        finds that class in the span (a false claim); a class the offline backend cannot check
        (`agent.perception.capabilities`) is `uncheckable`, never guessed either way."""
        from agent.perception.capabilities import capability

        class_id = task.gold(item)
        can = capability(self.kb.get(class_id), self.ctx)
        if not can.checkable:
            return Prediction(None, "", None, {"why": can.reason}, outcome="uncheckable")
        events = self.events(item.path, folder_fps(task))
        kind = task.kind_of(item)
        claimed, score, totals = label_from_detections(
            events, kind, [class_id], item.start_s, item.end_s
        )
        raw = json.dumps(
            [
                e.model_dump(include={"kind", "label", "start_s", "end_s", "confidence"})
                for e in events
                if e.label == class_id and _in_span(e, item.start_s, item.end_s)
            ]
        )
        details = {"totals": totals, "rule": can.rule, "capability": can.status}
        return Prediction(claimed or ABSENT, raw, score if claimed else None, details)

    def events(self, path: str, fps: float = 25.0) -> list[Event]:
        """The events of a still, or of a whole video or frame folder at ctx.sample_fps.

        The whole video, as indexing does, not just the item's span: the perception rules
        calibrate a per-person neutral baseline over the track, and items that share a video
        (several labelled segments) then cost one pass. `fps` is a frame folder's frame rate.
        """
        if path not in self._cache:
            self._cache[path] = self._perceive(path, fps)
            if len(self._cache) > 8:
                self._cache.popitem(last=False)
        return self._cache[path]

    def _perceive(self, path: str, fps: float) -> list[Event]:
        from agent.perception.runner import perceive_path, run_perception

        if Path(path).is_dir():
            frames = iter_folder_frames(path, fps, sample_fps=self.ctx.sample_fps, ctx=self.ctx)
            duration_s = folder_info(path, fps).duration_s
            detections = run_perception(
                frames, self.perceiver, self.kb, self.ctx, duration_s=duration_s
            )
        else:
            info = probe(path, self.ctx)  # unreadable or over-cap videos fail here
            duration_s = info.duration_s
            detections = perceive_path(path, self.ctx, self.kb, self.perceiver, info=info)
        return merge_detections(detections, duration_s, self.ctx)


def folder_fps(task: Task) -> float:
    """Frame rate of clips stored as frame folders (task option `fps`, default 25)."""
    return float(task.spec.options.get("fps", 25.0))


def _ground_with_index(
    ctx: Context, kb: Any, item: Item, *, perceiver: Any = None, vlm: Any = None
):
    """Grounding through the clip index, the agent's retrieval path.

    The video is indexed once (and reused from the library after). When the query names a
    knowledge-base class (`kb.match` score >= ctx.match_min_score) that was detected in the video,
    the answer is that class's strongest event (confidence x seconds; events are merged as
    everywhere, `agent.events`); otherwise the top-1 clip of a text search. The floor is the
    planner's (`Context.match_min_score`).
    """
    from agent.index import ClipIndex
    from agent.indexing import index_video

    record = index_video(item.path, ctx, vlm=vlm, perceiver=perceiver)
    index = ClipIndex(ctx)
    query = item.query or ""
    events = merge_detections(index.detections(record.sha256), record.duration_s, ctx)
    for match in kb.match(query, k=3):
        if match.score < ctx.match_min_score:
            break
        found = [e for e in events if label_key(e.label) == label_key(match.id)]
        if found:
            best = max(found, key=lambda e: e.strength)
            episodes = [[e.start_s, e.end_s, e.strength] for e in found]
            raw = json.dumps({"class": match.id, "match": match.score, "episodes": episodes})
            return Prediction([best.start_s, best.end_s], raw, match.score, {"via": "detections"})
    hits = index.search(query, 1, video=item.path)
    if not hits:
        return Prediction(None, "", None, {"why": "no clip found"}, outcome="no_detection")
    hit = hits[0]
    raw = json.dumps({"clip_id": hit.clip_id, "caption": hit.caption})
    return Prediction([hit.start_s, hit.end_s], raw, float(hit.score), {"via": "search"})


# --- VLM backend ----------------------------------------------------------------------------


class VLMPredictor:
    """A VLM (VideoLLaMA3 by default) through agent.vlm: classify, locate and answer, with
    strict parsing."""

    backend = "videollama3"

    def __init__(self, ctx: Context, vlm: Any, kb: Any = None) -> None:
        from agent.knowledge import load_knowledge_base

        self.ctx = ctx
        self.vlm = vlm
        self.kb = kb or load_knowledge_base()
        self.provenance = model_provenance(vlm, ctx)
        self.backend = self.provenance.backend
        self.model_id = self.provenance.model_id

    def predict(self, task: Task, item: Item) -> Prediction:
        frames, info = self._frames(task, item)
        if task.type == "classification" and item.negative:  # the same question, any prompt
            return self._check_absent(task, item, frames, info)
        if task.spec.prompt:
            return self._with_task_prompt(task, item, frames, info)
        if task.type == "classification":
            return self._classify(task, item, frames, info)
        if task.type == "grounding":
            reply = self.vlm.locate(item.query or "", frames, info)
            span = parse_span(reply.data, reply.text, info.duration_s)
            return Prediction(span, reply.text, None)
        return self._answer(task, item, frames, info)

    def _frames(self, task: Task, item: Item) -> tuple[FrameBatch, VideoInfo]:
        if is_image(item.path):
            batch = still_batch(item.path, self.ctx)
            height, width = batch.frames.shape[1:3]
            info = VideoInfo(
                path=item.path,
                duration_s=0.0,
                fps=1.0,
                frame_count=1,
                width=width,
                height=height,
                sha256="",
            )
            return batch, info
        # Grounding looks at the whole video; the other types at the item's span when given.
        start_s, end_s = (None, None) if task.type == "grounding" else (item.start_s, item.end_s)
        count = min(task.spec.backend.num_frames, self.ctx.max_frames_per_call)
        if Path(item.path).is_dir():
            fps = folder_fps(task)
            frames = sample_folder_frames(
                item.path, fps, start_s or 0.0, end_s, num_frames=count, ctx=self.ctx
            )
            return frames, folder_info(item.path, fps)
        info = probe(item.path, self.ctx)
        frames = sample_frames(item.path, start_s or 0.0, end_s, num_frames=count, ctx=self.ctx)
        return frames, info

    def _classify(self, task: Task, item: Item, frames: FrameBatch, info: VideoInfo) -> Prediction:
        labels = task.labels_for(item)
        known = [label for label in labels if label in self.kb]
        reply = self.vlm.classify(frames, info, labels, self.kb.prompt_snippet(known))
        label = parse_label(reply.data, reply.text, labels)
        score = finite_float((reply.data or {}).get("confidence"))
        return Prediction(label, reply.text, score)

    def _check_absent(
        self, task: Task, item: Item, frames: FrameBatch, info: VideoInfo
    ) -> Prediction:
        """A negative item: the model chooses between the class and `none`; `none` is the
        right abstention, the class a false claim, anything else unparsed."""
        class_id = task.gold(item)
        choices = [class_id, "none"]
        reply = self.vlm.classify(frames, info, choices, self.kb.prompt_snippet([class_id]))
        label = parse_label(reply.data, reply.text, choices)
        value = None if label is None else (class_id if label == class_id else ABSENT)
        return Prediction(value, reply.text, finite_float((reply.data or {}).get("confidence")))

    def _answer(self, task: Task, item: Item, frames: FrameBatch, info: VideoInfo) -> Prediction:
        question = task_prompt(DEFAULT_PROMPTS["mcq"], task, item)
        reply = self.vlm.answer(question, frames, info, "")
        return Prediction(parse_option(reply.data, reply.text, item.options), reply.text, None)

    def _with_task_prompt(
        self, task: Task, item: Item, frames: FrameBatch, info: VideoInfo
    ) -> Prediction:
        """The task file's own prompt, asked through `VLM.answer`; the reply's `answer` (or
        `moments` for grounding) is parsed as the type requires."""
        labels = task.labels_for(item) if task.type == "classification" else task.scored_labels
        snippet = self.kb.prompt_snippet([x for x in labels if x in self.kb]) if labels else ""
        reply = self.vlm.answer(task_prompt(task.spec.prompt, task, item), frames, info, snippet)
        if task.type == "classification":
            value = parse_label(reply.data, reply.text, labels)
        elif task.type == "grounding":
            value = parse_span(reply.data, reply.text, info.duration_s)
        else:
            value = parse_option(reply.data, reply.text, item.options)
        return Prediction(value, reply.text, None)


def task_prompt(name: str, task: Task, item: Item) -> str:
    """A prompt file filled with the item: {labels}, {query}, {question}, {options}."""
    from agent.vlm.prompting import render_prompt

    options = "\n".join(f"{OPTION_LETTERS[i]}. {o}" for i, o in enumerate(item.options))
    return render_prompt(
        name,
        labels=", ".join(task.scored_labels),
        query=item.query or "",
        question=item.query or "",
        options=options,
    )


__all__ = [
    "Prediction",
    "Predictor",
    "build_predictor",
    "label_from_detections",
    "parse_label",
    "parse_option",
    "parse_span",
]
