"""index_video: probe → segment + perceive (one decoding pass) → describe → embed → store.

Heavy resources (perceiver, VLM, embedders) are injected; factories make the defaults. A video
already indexed with the same settings and models is a no-op; when they changed, the video is
re-indexed and the log says which setting changed. Progress goes to a callback as dicts
`{"stage", "done", "total", "elapsed_s", "message"}`.
"""

import hashlib
import importlib.metadata
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agent.context import Context
from agent.embed import ensure_loaded, load_text_embedder, load_visual_embedder
from agent.events import label_key, spans_overlap
from agent.index import ClipIndex, VideoPayload, VideoRecord, text_space
from agent.index import visual_space as visual_space_name
from agent.provenance import PERCEPTION_BACKEND, vlm_backend, vlm_label, vlm_model_id
from agent.state import Clip, Detection
from agent.timefmt import format_clock
from agent.video import (
    is_image,
    probe,
    sample_frames,
    sample_span,
    segment,
    still_batch,
)
from agent.vlm.parsing import without_times

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
INDEX_FORMAT = 1  # bump when the clip text or stored layout changes (forces re-indexing)
_KIND_ORDER = ("gesture", "emotion", "action")
_KEY_FRAMES_PER_CLIP = 3
# Settings that change what indexing produces; a change to any of these re-indexes a video.
PERCEPTION_SETTINGS = (
    "sample_fps",
    "clip_length_s",
    "clip_overlap_s",
    "min_clip_s",
    "shot_threshold",
    "decode_max_side",
    "learned_models",
    "object_fps",
    "min_object_score",
    "calibrate_confidence",
)
_VLM_SETTINGS = (
    "model_id",
    "quantization",
    "describe_fps",
    "max_frames_per_call",
    "max_visual_tokens",
    "max_new_tokens",
)


class _Reporter:
    """Turns pipeline steps into progress events with elapsed time."""

    def __init__(self, callback: Progress | None) -> None:
        self.callback = callback
        self.started = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int, message: str = "") -> None:
        if self.callback is not None:
            self.callback(
                {
                    "stage": stage,
                    "done": done,
                    "total": total,
                    "elapsed_s": round(time.perf_counter() - self.started, 3),
                    "message": message,
                }
            )

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


class LazyPerceiver:
    """Stands in for `agent.perception.Perceiver`: imports and makes it on the first frame.

    One shared across videos (the CLI, the agent service) means a video that is already
    indexed costs no perception import and no mediapipe graph.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._perceiver = None

    @property
    def loaded(self) -> bool:
        return self._perceiver is not None

    def get(self):
        """The real Perceiver (made on the first call)."""
        if self._perceiver is None:
            from agent.perception import Perceiver

            self._perceiver = Perceiver(self.ctx)
        return self._perceiver

    def process(self, *args, **kwargs):
        return self.get().process(*args, **kwargs)

    def reset(self) -> None:
        if self._perceiver is not None:
            self._perceiver.reset()

    def close(self) -> None:
        if self._perceiver is not None:
            self._perceiver.close()

    def __enter__(self) -> "LazyPerceiver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name: str):
        # Whatever else a Perceiver offers, made real on first use; private names stay private.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.get(), name)


def index_video(
    path: str | Path,
    ctx: Context | None = None,
    *,
    vlm=None,
    perceiver=None,
    embedder=None,
    visual_embedder=None,
    kb=None,
    progress: Progress | None = None,
    index: ClipIndex | None = None,
    session_factory=None,
    force: bool = False,
) -> VideoRecord:
    """Index one video (or still image) into the library under `ctx.home`.

    Returns the library record; `record.reused` is True when nothing had to be done.
    `session_factory(perceiver, kb, ctx)` makes the perception session (the real
    `PerceptionSession` by default; tests may pass a double).
    """
    ctx = ctx or Context.from_env()
    report = _Reporter(progress)
    own_index = index is None
    library = index or ClipIndex(ctx, embedder=embedder)
    try:
        return _index(
            Path(path),
            ctx,
            library,
            report,
            vlm=vlm,
            perceiver=perceiver,
            embedder=embedder,
            visual_embedder=visual_embedder,
            kb=kb,
            session_factory=session_factory,
            force=force,
        )
    finally:
        if own_index:
            library.close()


def _index(
    path,
    ctx,
    library,
    report,
    *,
    vlm,
    perceiver,
    embedder,
    visual_embedder,
    kb,
    session_factory,
    force,
) -> VideoRecord:
    report("probe", 0, 1, f"reading {path.name}")
    info = probe(path, ctx)
    report("probe", 1, 1, f"{path.name}: {info.duration_s:.1f} s, {info.width}x{info.height}")
    kb = kb if kb is not None else _default_kb()
    use_vlm = vlm is not None and ctx.backend == "videollama3"
    # Lazy handles: their identity goes into the settings, their models load only if needed.
    embedder = embedder if embedder is not None else load_text_embedder(ctx)
    if visual_embedder is None:
        visual_embedder = load_visual_embedder(ctx)
    settings = index_settings(ctx, embedder, visual_embedder, vlm if use_vlm else None, kb)
    existing = library.video(info.sha256)
    reason = None if force else reuse_reason(existing, settings)
    if existing is not None and existing.status == "complete" and reason is None:
        moved_from = library.note_path(path, info.sha256)
        if moved_from:
            log.info("%s is the already indexed %s (same content); reusing it", path, moved_from)
        report("done", 1, 1, f"{path.name}: already indexed ({existing.clip_count} clips)")
        record = library.video(info.sha256)
        return record.model_copy(update={"reused": True})
    if existing is not None:
        why = "forced" if force else reason
        log.warning("re-indexing %s: %s", path.name, why)
        report("probe", 1, 1, f"re-indexing {path.name}: {why}")
    # Models load now, not after a long perception pass: a model that cannot load fails fast.
    ensure_loaded(embedder)
    ensure_loaded(visual_embedder)
    library.begin_video(info, settings)

    clips, detections = _perceive(path, info, ctx, kb, perceiver, session_factory, report)
    described = _describe(
        path, info, ctx, clips, kb, vlm if use_vlm else None, library, settings, report
    )
    captions = [caption for caption, _ in described]
    for clip, (_, data) in zip(clips, described, strict=True):
        detections.extend(vlm_detections(data, clip, kb))
    texts = [
        clip_text(clip, caption, _inside(detections, clip), kb)
        for clip, caption in zip(clips, captions, strict=True)
    ]
    report("embed", 0, len(clips), "embedding clip texts")
    vectors = {text_space(embedder.name): (embedder.version, embedder.embed(texts))}
    if visual_embedder is not None:
        space = visual_space_name(visual_embedder.name)
        vectors[space] = (
            visual_embedder.version,
            _key_frame_vectors(path, ctx, clips, visual_embedder),
        )
    report("embed", len(clips), len(clips), f"{len(clips)} clips embedded")
    report("store", 0, 1, "writing the library")
    record = library.put_video(
        VideoPayload(info, settings, clips, captions, texts, detections, vectors, report.elapsed_s)
    )
    report("done", 1, 1, f"{path.name}: {len(clips)} clips, {len(detections)} detections")
    return record


# --- steps ----------------------------------------------------------------------------------


def _perceive(path, info, ctx, kb, perceiver, session_factory, report):
    """Clips and detections from one decoding pass (segment feeds the perception run)."""
    from agent.perception.runner import PerceptionRun, perceiver_for

    def forward(event: dict[str, Any]) -> None:
        report(event["stage"], event["done"], event["total"], event["message"])

    with perceiver_for(perceiver, ctx) as active:
        run = PerceptionRun(
            active,
            kb,
            ctx,
            still=is_image(path),
            duration_s=info.duration_s,
            progress=forward,
            session_factory=session_factory,
        )
        if run.still:
            report("perceive", 0, 1, "perceiving the image")
            run.add(still_batch(path))
            return [Clip(clip_id=0, start_s=0.0, end_s=0.0)], run.finish()
        clips = segment(path, ctx, on_frames=run.add)
        detections = run.finish()
    report(
        "perceive",
        run.total_frames,
        run.total_frames,
        f"{len(clips)} clips, {len(detections)} detections",
    )
    return clips, detections


def _describe(path, info, ctx, clips, kb, vlm, library, settings, report):
    """(caption, parsed data) per clip from the VLM; reused from an interrupted run's cache."""
    if vlm is None:
        return [("", None)] * len(clips)
    key = _settings_key({k: settings.get(k) for k in (*_VLM_SETTINGS, "vlm", "knowledge")})
    snippet = kb.prompt_snippet() if kb is not None else ""
    described = []
    for number, clip in enumerate(clips, start=1):
        cached = library.cached_caption(info.sha256, key, clip.start_s, clip.end_s)
        if cached is None:
            reply = vlm.describe(
                sample_span(
                    path,
                    clip.start_s,
                    clip.end_s,
                    fps=ctx.describe_fps,
                    max_frames=ctx.max_frames_per_call,
                    ctx=ctx,
                ),
                info,
                snippet,
            )
            cached = (caption_of(reply.text, reply.data), reply.data)
            library.store_caption(info.sha256, key, clip.start_s, clip.end_s, *cached)
        described.append(cached)
        report("describe", number, len(clips), f"clip {number} of {len(clips)}")
    return described


def caption_of(text: str, data: dict | None) -> str:
    """One readable caption from a describe reply: the summary, then each person's behavior.

    Without any time the model wrote: clip times come from the index, never from its words.
    """
    return without_times(_caption_text(text, data))


def _caption_text(text: str, data: dict | None) -> str:
    if not isinstance(data, dict):
        return (text or "").strip()
    parts = [str(data["summary"]).strip()] if data.get("summary") else []
    for person in data.get("people") or []:
        if not isinstance(person, dict):
            continue
        seen = [
            f"{field} {', '.join(map(str, _as_list(person.get(field))))}"
            for field in ("emotion", "gestures", "actions")
            if _as_list(person.get(field)) and person.get(field) != "unclear"
        ]
        where = f" ({person['where']})" if person.get("where") else ""
        cues = f"; cues: {person['cues']}" if person.get("cues") else ""
        if seen:
            parts.append(f"Person {person.get('person', '?')}{where}: {'; '.join(seen)}{cues}.")
    return " ".join(parts) or (text or "").strip()


def vlm_detections(data: dict | None, clip: Clip, kb) -> list[Detection]:
    """Knowledge-base classes the VLM named in a clip, spanning the clip (times are ours)."""
    if not isinstance(data, dict) or kb is None:
        return []
    found: dict[str, Detection] = {}
    for number, person in enumerate(data.get("people") or [], start=1):
        if not isinstance(person, dict):
            continue
        person_id = person.get("person")
        for field in ("emotion", "gestures", "actions"):
            for name in _as_list(person.get(field)):
                class_id = _kb_id(str(name), kb)
                if class_id is None or class_id in found:
                    continue
                found[class_id] = Detection(
                    kind=kb.get(class_id).kind,
                    label=class_id,
                    start_s=clip.start_s,
                    end_s=clip.end_s,
                    confidence=0.5,  # the model gives no calibrated score
                    cues=without_times(str(person.get("cues") or ""))[:300],
                    person_id=person_id if isinstance(person_id, int) else number,
                    source="vlm",
                )
    return list(found.values())


def _kb_id(name: str, kb) -> str | None:
    key = label_key(name)
    if key in kb:
        return key
    for class_id in kb.ids():
        item = kb.get(class_id)
        if key in {label_key(item.name), *(label_key(s) for s in item.synonyms)}:
            return class_id
    return None


def _as_list(value) -> list:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _key_frame_vectors(path, ctx, clips, visual_embedder) -> np.ndarray:
    vectors = []
    for clip in clips:
        if is_image(path):
            frames = still_batch(path).frames
        else:
            frames = sample_frames(
                path, clip.start_s, clip.end_s, num_frames=_KEY_FRAMES_PER_CLIP, ctx=ctx
            ).frames
        vectors.append(visual_embedder.embed_clip(frames))
    return np.stack(vectors).astype(np.float32)


def _inside(detections: list[Detection], clip: Clip) -> list[Detection]:
    return [d for d in detections if spans_overlap(d.start_s, d.end_s, clip.start_s, clip.end_s)]


# --- the text that is embedded ----------------------------------------------------------------


def clip_text(clip: Clip, caption: str, detections: list[Detection], kb=None) -> str:
    """Detected events in words with their times, then the caption; what gets embedded.

    Events come first because the sentence model reads at most 256 word pieces.
    """
    sentences = []
    for kind in _KIND_ORDER:
        spans: dict[str, list[Detection]] = {}
        for d in detections:
            if d.kind == kind:
                spans.setdefault(d.label, []).append(d)
        for label, found in spans.items():
            sentences.append(_event_sentence(kind, label, found, clip, kb))
    if not sentences:
        sentences.append("No gesture, facial expression or action was detected.")
    if caption:
        sentences.append(caption.strip())
    return " ".join(sentences)


def _event_sentence(kind: str, label: str, found: list[Detection], clip: Clip, kb) -> str:
    name, synonyms = _names(label, kb)
    also = f" ({', '.join(synonyms)})" if synonyms else ""
    found = sorted(found, key=lambda d: d.start_s)
    times = [_when(d, clip) for d in found[:3]]
    more = f" and {len(found) - 3} more times" if len(found) > 3 else ""
    noun = {"emotion": "facial expression", "gesture": "gesture", "action": "action"}[kind]
    return f"{name}{also} {noun} {', '.join(times)}{more}."


def _names(label: str, kb) -> tuple[str, list[str]]:
    """Display name and a few synonyms from the knowledge base (the label itself otherwise)."""
    if kb is not None and label in kb:
        item = kb.get(label)
        synonyms = [s for s in item.synonyms if s.lower() != item.name.lower()][:3]
        return item.name, synonyms
    return label.replace("_", " "), []


def _when(d: Detection, clip: Clip) -> str:
    if d.end_s - d.start_s < 0.05:
        return f"at {format_clock(d.start_s)}"
    if d.start_s <= clip.start_s and d.end_s >= clip.end_s:
        return f"throughout, from {format_clock(d.start_s)} to {format_clock(d.end_s)}"
    return f"from {format_clock(d.start_s)} to {format_clock(d.end_s)}"


# --- settings fingerprint ---------------------------------------------------------------------


def index_settings(ctx: Context, embedder, visual_embedder, vlm, kb) -> dict[str, Any]:
    """What a stored index was built with: settings and model versions (JSON-ready)."""
    settings: dict[str, Any] = {k: getattr(ctx, k) for k in PERCEPTION_SETTINGS}
    settings["format"] = INDEX_FORMAT
    # What the VLM object says it is (agent.provenance), not what the settings asked for.
    settings["backend"] = vlm_backend(vlm) if vlm is not None else PERCEPTION_BACKEND
    settings["perception"] = _perception_version()
    settings["learned"] = _learned_models(ctx)
    settings["knowledge"] = _knowledge_version(kb)
    settings["embed_model"] = f"{embedder.name} [{embedder.version}]"
    settings["visual_embed_model"] = (
        f"{visual_embedder.name} [{visual_embedder.version}]" if visual_embedder else ""
    )
    if vlm is not None:
        settings.update({k: getattr(ctx, k) for k in _VLM_SETTINGS})
        settings["model_id"] = vlm_model_id(vlm)
        version = getattr(vlm, "version", None)
        settings["vlm"] = vlm_label(vlm) + (f" [{version}]" if version else "")
    return settings


def reuse_reason(existing: VideoRecord | None, settings: dict[str, Any]) -> str | None:
    """None when `existing` can be reused as it is; otherwise why it must be (re)built.

    An index made with VLM captions also serves a perception-only request (it is a superset).
    """
    if existing is None:
        return "not indexed yet"
    if existing.status != "complete":
        return "the previous indexing run did not finish"
    stored = existing.settings
    keys = set(stored) | set(settings)
    if settings.get("backend") == PERCEPTION_BACKEND and stored.get("backend") not in (
        None,
        PERCEPTION_BACKEND,
    ):
        keys -= {*_VLM_SETTINGS, "vlm", "backend"}
    changes = [
        f"{k} changed from {stored.get(k)!r} to {settings.get(k)!r}"
        for k in sorted(keys)
        if stored.get(k) != settings.get(k)
    ]
    return "; ".join(changes) or None


def _settings_key(values: dict[str, Any]) -> str:
    return hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()[:16]


def _perception_version() -> str:
    """mediapipe's version plus a hash of the perception code and its YAML thresholds."""
    try:
        mediapipe = importlib.metadata.version("mediapipe")
    except importlib.metadata.PackageNotFoundError:
        mediapipe = "absent"
    folder = Path(__file__).resolve().parent / "perception"
    digest = hashlib.sha256()
    for source in sorted([*folder.rglob("*.py"), *folder.rglob("*.yaml")]):
        digest.update(str(source.relative_to(folder)).encode() + source.read_bytes())
    return f"mediapipe=={mediapipe} rules:{digest.hexdigest()[:12]}"


def _learned_models(ctx: Context) -> str:
    """The learned models installed for perception (id and sha256 from each model's
    provenance.json), read without importing perception: installing or updating a model
    re-indexes, as its detections change."""
    if not ctx.learned_models:
        return "off"
    installed = []
    for record_path in sorted(Path(ctx.models_dir).glob("*/provenance.json")):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            installed.append(f"{record['id']}:{record['sha256'][:12]}")
        except (OSError, ValueError, KeyError):
            installed.append(f"{record_path.parent.name}:unreadable")
    return ", ".join(installed) or "none installed"


def _knowledge_version(kb) -> str:
    """Hash of the knowledge-base files (detector thresholds live there as data)."""
    folder = getattr(kb, "folder", None)
    if folder is None:
        return "none" if kb is None else f"classes:{len(kb)}"
    digest = hashlib.sha256()
    for item in sorted(Path(folder).rglob("*.yaml")):
        digest.update(str(item.relative_to(folder)).encode() + item.read_bytes())
    return digest.hexdigest()[:12]


def _default_kb():
    from agent.knowledge import load_knowledge_base

    return load_knowledge_base()
