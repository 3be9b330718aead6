"""index_video: probe → perceive stretch by stretch (checkpointed) → describe → embed → store.

A video is decoded once, in stretches of `ctx.stretch_s` (`agent.indexing.stretches`): each is
segmented and perceived by a session of its own, then checkpointed in the library, so memory
is bounded by one stretch and an interrupted run resumes after the last finished stretch.

Heavy resources (perceiver, VLM, embedders) are injected; factories make the defaults. A video
already indexed with the same settings and models is a no-op (`agent.indexing.settings`); when
they changed, the video is re-indexed and the log says which setting changed. Progress goes to
a callback as dicts `{"stage", "done", "total", "elapsed_s", "message"}`.
"""

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from agent.context import Context
from agent.embed import ensure_loaded, load_text_embedder, load_visual_embedder
from agent.events import spans_overlap
from agent.index import ClipIndex, VideoPayload, VideoRecord, text_space
from agent.index import visual_space as visual_space_name
from agent.indexing.settings import caption_cache_key, index_settings, reuse_reason
from agent.indexing.stretches import (
    StretchResult,
    merge_stretches,
    perceive_stretch,
    plan_key,
    plan_stretches,
)
from agent.indexing.texts import caption_of, clip_text, thing_texts, vlm_detections
from agent.state import Clip, Detection, ObjectSighting
from agent.video import (
    is_image,
    probe,
    sample_frames,
    sample_span,
    still_batch,
)

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
_KEY_FRAMES_PER_CLIP = 3
_Spanned = TypeVar("_Spanned", Detection, ObjectSighting)


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
    ctx: Context,
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
    kb = kb if kb is not None else _default_kb(ctx)
    use_vlm = vlm is not None and ctx.backend == "videollama3"
    # Lazy handles: their identity goes into the settings, their models load only if needed.
    embedder = embedder if embedder is not None else load_text_embedder(ctx)
    if visual_embedder is None:
        visual_embedder = load_visual_embedder(ctx)
    settings = index_settings(ctx, embedder, visual_embedder, vlm if use_vlm else None, kb)
    # A file the library saw at this size and time needs no probe: hashing and opening a
    # two-hour recording would take seconds on every question asked about it.
    known = None if force else library.known_path(path)
    if known is not None and reuse_reason(known, settings) is None:
        report("probe", 1, 1, f"{path.name}: {known.duration_s:.1f} s (indexed before)")
        report("done", 1, 1, f"{path.name}: already indexed ({known.clip_count} clips)")
        return known.model_copy(update={"reused": True})
    info = probe(path, ctx)
    report("probe", 1, 1, f"{path.name}: {info.duration_s:.1f} s, {info.width}x{info.height}")
    existing = library.video(info.sha256)
    # None only for a complete video indexed with these settings (see `reuse_reason`).
    reason = "forced" if force else reuse_reason(existing, settings)
    if reason is None:
        moved_from = library.note_path(path, info.sha256)
        if moved_from:
            log.info("%s is the already indexed %s (same content); reusing it", path, moved_from)
        report("done", 1, 1, f"{path.name}: already indexed ({existing.clip_count} clips)")
        record = library.video(info.sha256)
        return record.model_copy(update={"reused": True})
    if existing is not None:
        log.warning("re-indexing %s: %s", path.name, reason)
        report("probe", 1, 1, f"re-indexing {path.name}: {reason}")
    # Models load now, not after a long perception pass: a model that cannot load fails fast.
    ensure_loaded(embedder)
    ensure_loaded(visual_embedder)
    # The first question asked of a new library would otherwise embed every class phrase
    # (~900 of them: seconds), inside the time the user waits for an answer.
    kb.prepare_matching()
    library.begin_video(info, settings)

    clips, detections, objects = _perceive(
        path, info, ctx, kb, perceiver, session_factory, report, library, settings
    )
    described = _describe(
        path, info, ctx, clips, kb, vlm if use_vlm else None, library, settings, report
    )
    captions = [caption for caption, _ in described]
    for clip, (_, data) in zip(clips, described, strict=True):
        detections.extend(vlm_detections(data, clip, kb))
    texts = [
        clip_text(clip, caption, _inside(detections, clip), kb, _inside(objects, clip))
        for clip, caption in zip(clips, captions, strict=True)
    ]
    report("embed", 0, len(clips), "embedding clip texts")
    # A caption is embedded alone (one description of the clip), not blended with the events,
    # which hybrid search reads one thing at a time from the detections and `things`.
    embedded = [caption or text for caption, text in zip(captions, texts, strict=True)]
    vectors = {text_space(embedder.name): (embedder.version, embedder.embed(embedded))}
    things = thing_texts(detections, objects, kb)
    thing_vectors = (
        {text_space(embedder.name): embedder.embed([t for _, _, t in things])} if things else {}
    )
    if visual_embedder is not None:
        space = visual_space_name(visual_embedder.name)
        vectors[space] = (
            visual_embedder.version,
            _key_frame_vectors(path, ctx, clips, visual_embedder),
        )
    report("embed", len(clips), len(clips), f"{len(clips)} clips embedded")
    report("store", 0, 1, "writing the library")
    record = library.put_video(
        VideoPayload(
            info,
            settings,
            clips,
            captions,
            texts,
            detections,
            vectors,
            report.elapsed_s,
            objects=objects,
            things=things,
            thing_vectors=thing_vectors,
        )
    )
    report("done", 1, 1, f"{path.name}: {len(clips)} clips, {len(detections)} detections")
    return record


# --- steps ----------------------------------------------------------------------------------


def _perceive(path, info, ctx, kb, perceiver, session_factory, report, library, settings):
    """Clips, detections and objects seen: a still in one go, a video stretch by stretch
    (`agent.indexing.stretches`), each finished stretch checkpointed in the library so that
    an interrupted run resumes after the last one."""
    from agent.perception.runner import perceiver_for

    with perceiver_for(perceiver, ctx) as active:
        if is_image(path):
            return _perceive_still(path, ctx, kb, active, session_factory, report)
        results = _perceive_stretches(
            path, info, ctx, kb, active, session_factory, report, library, settings
        )
    clips, detections, objects = merge_stretches(results, info, ctx)
    frames = sum(r.frames for r in results)
    report(
        "perceive",
        frames,
        frames,
        f"{len(clips)} clips, {len(detections)} detections, {len(objects)} object sightings",
    )
    return clips, detections, objects


def _perceive_stretches(path, info, ctx, kb, perceiver, session_factory, report, library, settings):
    plan = plan_stretches(info, ctx)
    key = plan_key(settings, plan)
    done = {
        index: StretchResult.model_validate_json(text)
        for index, text in library.finished_stretches(info.sha256, key).items()
    }
    if done:
        message = f"resuming {path.name}: {len(done)} of {len(plan)} stretches already done"
        log.info(message)
        report("perceive", 0, 1, message)
    total_frames = max(1, math.ceil(info.duration_s * ctx.sample_fps))
    frames_before = 0
    results = []
    for index, (start_s, end_s) in enumerate(plan):
        result = done.get(index)
        if result is None:

            def forward(event: dict[str, Any], before: int = frames_before) -> None:
                done_frames = min(before + event["done"], total_frames)
                report("perceive", done_frames, total_frames, event["message"])

            result = perceive_stretch(
                path,
                start_s,
                end_s,
                ctx,
                index=index,
                duration_s=round(info.duration_s, 3),
                perceiver=perceiver,
                kb=kb,
                session_factory=session_factory,
                progress=forward,
            )
            library.store_stretch(info.sha256, key, index, start_s, end_s, result.model_dump_json())
        frames_before += result.frames
        results.append(result)
    return results


def _perceive_still(path, ctx, kb, perceiver, session_factory, report):
    from agent.perception.runner import PerceptionRun

    run = PerceptionRun(perceiver, kb, ctx, still=True, session_factory=session_factory)
    report("perceive", 0, 1, "perceiving the image")
    run.add(still_batch(path))
    detections = run.finish()
    report("perceive", 1, 1, f"{len(detections)} detections, {len(run.objects)} object sightings")
    return [Clip(clip_id=0, start_s=0.0, end_s=0.0)], detections, run.objects


def _describe(path, info, ctx, clips, kb, vlm, library, settings, report):
    """(caption, parsed data) per clip from the VLM; reused from an interrupted run's cache."""
    if vlm is None:
        return [("", None)] * len(clips)
    key = caption_cache_key(settings)
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


def _inside(found: list[_Spanned], clip: Clip) -> list[_Spanned]:
    """The detections or object sightings whose span overlaps the clip's."""
    return [d for d in found if spans_overlap(d.start_s, d.end_s, clip.start_s, clip.end_s)]


def _default_kb(ctx: Context):
    from agent.knowledge import load_knowledge_base

    return load_knowledge_base(ctx)
