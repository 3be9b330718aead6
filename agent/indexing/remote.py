"""Indexing work on a cluster worker: one stretch of a long video perceived
(`perceive_remote`), or one video indexed (`index_remote`: `index_video` run against a payload
collector instead of the library), with the models loaded once per worker process.

The worker never opens the library (it may live on another node): it returns a stretch's
result, which the driver checkpoints, or the `VideoPayload` that `ClipIndex.put_video`
stores, which the driver writes in the same one transaction as a local run. Nothing here
imports Ray, so it runs (and is tested) anywhere.
"""

import json
import os
import socket
from dataclasses import dataclass
from typing import Any

from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.index import VideoPayload, VideoRecord
from agent.indexing.pipeline import LazyPerceiver, index_video
from agent.state import VideoInfo


@dataclass
class WorkerReport:
    """Which process did a task, and how often that process has set up its models: `setups`
    (perceiver, embedders, knowledge base) and `learned_loads` (the learned models)."""

    pid: int
    node: str
    tasks: int
    setups: int
    learned_loads: int


@dataclass
class RemoteResult:
    """What a worker sends back for one video: its payload, or the error that stopped it."""

    path: str
    payload: VideoPayload | None
    error: str | None
    worker: WorkerReport


class PayloadCollector:
    """The part of `ClipIndex` that `index_video` uses, keeping the payload instead of storing it.

    It knows no video (the driver has already decided this one must be indexed) and caches VLM
    captions only for the length of the task.
    """

    def __init__(self, stretches: dict[int, str] | None = None) -> None:
        self.payload: VideoPayload | None = None
        self._captions: dict[tuple, tuple[str, Any]] = {}
        # Stretch results (JSON by number) perceived by other tasks: `index_video` resumes
        # after them as after its own checkpoints, so with all of them it only merges.
        self._stretches = dict(stretches or {})

    def video(self, path_or_sha) -> VideoRecord | None:
        return None

    def known_path(self, path) -> VideoRecord | None:
        return None

    def note_path(self, path, sha256: str) -> None:
        return None

    def begin_video(self, info: VideoInfo, settings: dict[str, Any]) -> None:
        return None

    def cached_caption(self, sha: str, key: str, start_s: float, end_s: float):
        return self._captions.get((sha, key, start_s, end_s))

    def store_caption(self, sha, key, start_s, end_s, caption: str, data: Any) -> None:
        self._captions[(sha, key, start_s, end_s)] = (caption, data)

    def finished_stretches(self, sha: str, plan_key: str) -> dict[int, str]:
        return dict(self._stretches)

    def store_stretch(self, sha, plan_key, idx, start_s, end_s, result: str) -> None:
        self._stretches[idx] = result

    def put_video(self, payload: VideoPayload) -> VideoRecord:
        self.payload = payload
        info = payload.info
        return VideoRecord(
            **info.model_dump(exclude={"path", "sha256"}),
            sha256=info.sha256,
            path=info.path,
            size_bytes=os.path.getsize(info.path),
            status="complete",
            settings=payload.settings,
            clip_count=len(payload.clips),
            detection_count=len(payload.detections),
        )

    def close(self) -> None:
        return None


class _Resources:
    """A worker process's heavy objects for one set of settings, made once and reused."""

    def __init__(self, ctx: Context) -> None:
        from agent.embed import load_text_embedder, load_visual_embedder
        from agent.knowledge import load_knowledge_base

        self.perceiver = LazyPerceiver(ctx)
        self.embedder = load_text_embedder(ctx)
        self.visual_embedder = load_visual_embedder(ctx)
        self.kb = load_knowledge_base(ctx)
        self.vlm = None
        if ctx.backend == "videollama3":
            from agent.vlm import LazyVLM

            self.vlm = LazyVLM(ctx)


_RESOURCES: dict[str, _Resources] = {}
_TASKS = {"count": 0}


def resources(ctx: Context) -> _Resources:
    """This process's perceiver, embedders, knowledge base and VLM for `ctx` (made once)."""
    key = json.dumps(ctx.as_dict(), sort_keys=True, default=str)
    if key not in _RESOURCES:
        _RESOURCES[key] = _Resources(ctx)
    return _RESOURCES[key]


def index_remote(
    path: str, ctx: Context, session_factory=None, stretches: dict[int, str] | None = None
) -> RemoteResult:
    """Index one video into a payload on this worker; a user-facing error comes back as text.

    `stretches`: results of stretches perceived by other tasks (all of them: then this task
    merges, describes and embeds only)."""
    _TASKS["count"] += 1
    held = resources(ctx)
    collector = PayloadCollector(stretches)
    error = None
    try:
        index_video(
            path,
            ctx,
            vlm=held.vlm,
            perceiver=held.perceiver,
            embedder=held.embedder,
            visual_embedder=held.visual_embedder,
            kb=held.kb,
            index=collector,
            session_factory=session_factory,
        )
    except BehaviorAgentError as failure:
        error = f"{failure} (on worker node {socket.gethostname()})"
    return RemoteResult(str(path), collector.payload, error, worker_report())


@dataclass
class StretchDone:
    """What a worker sends back for one stretch: its result (JSON), or the error."""

    index: int
    result: str | None
    error: str | None
    worker: WorkerReport


def perceive_remote(
    path: str,
    span: tuple[float, float],
    index: int,
    duration_s: float,
    ctx: Context,
    session_factory=None,
) -> StretchDone:
    """Perceive one stretch of a long video on this worker (`perceive_stretch`, with this
    process's perceiver and knowledge base)."""
    from agent.indexing.stretches import perceive_stretch

    _TASKS["count"] += 1
    held = resources(ctx)
    try:
        result = perceive_stretch(
            path,
            *span,
            ctx,
            index=index,
            duration_s=duration_s,
            perceiver=held.perceiver,
            kb=held.kb,
            session_factory=session_factory,
        )
    except BehaviorAgentError as failure:
        error = f"{failure} (on worker node {socket.gethostname()})"
        return StretchDone(index, None, error, worker_report())
    return StretchDone(index, result.model_dump_json(), None, worker_report())


def worker_report() -> WorkerReport:
    """This process: pid, host, tasks run, model set-ups and learned-model loads."""
    from agent.perception.learned import loads_in_process

    return WorkerReport(
        os.getpid(), socket.gethostname(), _TASKS["count"], len(_RESOURCES), loads_in_process()
    )
