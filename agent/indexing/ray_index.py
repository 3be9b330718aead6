"""`index --ray`: videos, and each stretch of a long one, perceived as Ray tasks; the driver
writes the library.

The driver decides what to do exactly as a local run does (a video indexed with the same
settings is skipped), then sends tasks (`agent.indexing.remote`): a video of one stretch is
one task that returns its payload; a long video is one task per stretch not yet checkpointed
(`agent.indexing.stretches.plan_stretches`), each result checkpointed in the library as it
comes (as a local run does), then one task that merges them, describes and embeds. The driver
stores each payload with `ClipIndex.put_video`: one transaction per video, written once, by
this process only. A task whose worker dies is retried by Ray (`MAX_RETRIES`); an interrupted
run resumes with the videos and stretches not yet written. The driver never loads a model: it
needs only the models' identities for the settings fingerprint.
"""

import logging
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.cluster import connect_ray
from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.index import ClipIndex, VideoRecord
from agent.indexing.remote import (
    RemoteResult,
    StretchDone,
    WorkerReport,
    index_remote,
    perceive_remote,
)
from agent.indexing.settings import index_settings, reuse_reason
from agent.indexing.stretches import plan_key, plan_stretches
from agent.state import VideoInfo
from agent.video import is_image, probe

log = logging.getLogger(__name__)

# Retries of a task whose worker process died (killed, out of memory, node lost).
MAX_RETRIES = 3


@dataclass
class RayIndexed:
    """One input's outcome: the library's record, or the error that stopped it; the worker
    that finished it and how many stretch tasks it took (0: the video was one task)."""

    path: Path
    record: VideoRecord | None = None
    error: str | None = None
    worker: WorkerReport | None = None
    stretch_tasks: int = 0


@dataclass
class _Video:
    """A video being indexed: its plan, and the stretch results in so far (JSON by number)."""

    path: Path
    info: VideoInfo
    plan: list[tuple[float, float]]
    key: str
    results: dict[int, str] = field(default_factory=dict)
    ran: int = 0
    failed: bool = False

    @property
    def stretched(self) -> bool:
        return len(self.plan) > 1


def driver_settings(ctx: Context) -> dict[str, Any]:
    """The settings fingerprint a local run would store, made from model identities only."""
    from agent.embed import load_text_embedder, load_visual_embedder
    from agent.knowledge import load_knowledge_base

    vlm = None
    if ctx.backend == "videollama3":
        from agent.vlm import LazyVLM

        vlm = LazyVLM(ctx)
    embedder, visual = load_text_embedder(ctx), load_visual_embedder(ctx)
    return index_settings(ctx, embedder, visual, vlm, load_knowledge_base())


def index_with_ray(
    paths: list[Path],
    ctx: Context,
    library: ClipIndex,
    *,
    workers: int | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    session_factory=None,
) -> Iterator[RayIndexed]:
    """Index `paths` on Ray; yields one outcome per path (reused ones first, then as done).

    `workers` caps the tasks in flight (default: the cluster's CPUs); `session_factory` goes
    to the perception on the workers (tests pass one that fails on purpose).
    """
    say = progress or (lambda text: None)
    settings = driver_settings(ctx)
    todo: list[_Video] = []
    copies: list[Path] = []  # same content as an earlier input of this run: indexed once
    shas: set[str] = set()
    for path in paths:
        sha = library.resolve(path)  # None for a path that is not a file: probe says why
        existing = library.video(sha) if sha is not None else None
        if not force and existing is not None and reuse_reason(existing, settings) is None:
            yield _reused(library, path, sha)
        elif sha in shas and sha is not None:
            copies.append(path)
        else:
            try:
                todo.append(_plan(path, ctx, library, settings))
            except BehaviorAgentError as error:
                yield RayIndexed(path, error=str(error))
                continue
            shas.add(todo[-1].info.sha256)
    if todo:
        yield from _Scheduler(ctx, library, settings, say, session_factory).run(todo, workers)
    for path in copies:
        sha = library.resolve(path)
        record = library.video(sha)
        if record is not None and record.status == "complete":
            yield _reused(library, path, sha)
        else:
            yield RayIndexed(path, error="same content as another input, which failed")


def _plan(path: Path, ctx: Context, library: ClipIndex, settings) -> _Video:
    """Probe a video, plan its stretches, pick up the checkpoints of an interrupted run."""
    info = probe(path, ctx)
    plan = [(0.0, 0.0)] if is_image(path) else plan_stretches(info, ctx)
    key = plan_key(settings, plan)
    video = _Video(path, info, plan, key)
    if video.stretched:
        video.results = library.finished_stretches(info.sha256, key)
    library.begin_video(info, settings)
    return video


class _Scheduler:
    """Keeps up to `workers` tasks in flight; a video's merge task goes first in the queue
    once its last stretch is in."""

    def __init__(self, ctx: Context, library: ClipIndex, settings, say, session_factory) -> None:
        self.ctx, self.library, self.settings = ctx, library, settings
        self.say, self.session_factory = say, session_factory

    def run(self, todo: list[_Video], workers: int | None) -> Iterator[RayIndexed]:
        ray = connect_ray()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        slots = max(1, workers or cpus)
        gpus = _gpus(ray, self.ctx)
        options = {"num_cpus": 1, "max_retries": MAX_RETRIES}
        self.video_task = ray.remote(num_gpus=gpus, **options)(_index_on_worker)
        self.stretch_task = ray.remote(**options)(_perceive_on_worker)
        queue: deque[tuple[_Video, int | None]] = deque()
        for video in todo:
            missing = [i for i in range(len(video.plan)) if i not in video.results]
            if video.stretched and missing:
                queue.extend((video, i) for i in missing)
            else:
                queue.append((video, None))  # one task: the whole video, or the merge
        self.say(
            f"[ray] {len(todo)} videos to index as {len(queue)} tasks (and a merge task per "
            f"long video), {slots} at a time ({cpus} CPUs in the cluster)"
        )
        pending: dict[Any, tuple[_Video, int | None]] = {}
        try:
            while queue or pending:
                while queue and len(pending) < slots:
                    video, stretch = queue.popleft()
                    if not video.failed:
                        pending[self._submit(video, stretch)] = (video, stretch)
                if not pending:
                    continue
                done, _ = ray.wait(list(pending), num_returns=1)
                video, stretch = pending.pop(done[0])
                if video.failed:
                    continue
                outcome = self._collect(ray, done[0], video, stretch)
                if outcome is not None:
                    yield outcome
                elif len(video.results) == len(video.plan):
                    queue.appendleft((video, None))  # all stretches in: merge it next
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def _submit(self, video: _Video, stretch: int | None):
        path = str(video.path)
        if stretch is None:
            stretches = video.results if video.stretched else None
            return self.video_task.remote(path, self.ctx, self.session_factory, stretches)
        span, duration_s = video.plan[stretch], round(video.info.duration_s, 3)
        return self.stretch_task.remote(
            path, span, stretch, duration_s, self.ctx, self.session_factory
        )

    def _collect(self, ray, ref, video: _Video, stretch: int | None) -> RayIndexed | None:
        """A finished task's outcome: the video's (done or failed), or None after a stretch."""
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as error:  # a bug in the task: its own message
            return self._fail(video, f"failed on a worker: {error.cause!r}")
        except ray.exceptions.RayError as error:  # the worker died more than MAX_RETRIES
            return self._fail(video, _lost(error))
        if stretch is None:
            return _store(video, result, self.library, self.settings)
        done: StretchDone = result
        if done.error is not None:
            return self._fail(video, done.error, done.worker)
        start_s, end_s = video.plan[stretch]
        self.library.store_stretch(
            video.info.sha256, video.key, stretch, start_s, end_s, done.result
        )
        video.results[stretch] = done.result
        video.ran += 1
        self.say(
            f"[ray] {video.path.name}: stretch {stretch + 1} of {len(video.plan)} done "
            f"(pid {done.worker.pid} on {done.worker.node})"
        )
        return None

    def _fail(self, video: _Video, error: str, worker: WorkerReport | None = None) -> RayIndexed:
        video.failed = True
        return RayIndexed(video.path, error=error, worker=worker, stretch_tasks=video.ran)


def _index_on_worker(path: str, ctx: Context, session_factory, stretches) -> RemoteResult:
    """The Ray task of a whole video (or a long one's merge): `index_remote`."""
    result = index_remote(path, ctx, session_factory, stretches)
    _name_node(result.worker)
    return result


def _perceive_on_worker(path, span, index, duration_s, ctx, session_factory) -> StretchDone:
    """The Ray task of one stretch: `perceive_remote`."""
    result = perceive_remote(path, span, index, duration_s, ctx, session_factory)
    _name_node(result.worker)
    return result


def _name_node(worker: WorkerReport) -> None:
    import ray

    worker.node = f"{worker.node} (Ray node {ray.get_runtime_context().get_node_id()[:8]})"


def _store(video: _Video, result: RemoteResult, library: ClipIndex, settings) -> RayIndexed:
    """Writes a worker's payload to the library (the same transaction a local run uses)."""
    path = video.path
    if result.error is not None or result.payload is None:
        error = result.error or "no payload"
        return RayIndexed(path, error=error, worker=result.worker, stretch_tasks=video.ran)
    payload = result.payload
    differ = sorted(
        k
        for k in settings.keys() | payload.settings.keys()
        if settings.get(k) != payload.settings.get(k)
    )
    if differ:
        log.warning(
            "%s was indexed on %s with other settings than this machine's (%s); install the "
            "same models and version on every node, or the next run indexes it again",
            path.name,
            result.worker.node,
            ", ".join(differ),
        )
    record = library.put_video(payload)
    return RayIndexed(path, record, worker=result.worker, stretch_tasks=video.ran)


def _reused(library: ClipIndex, path: Path, sha: str) -> RayIndexed:
    library.note_path(path, sha)
    return RayIndexed(path, library.video(sha).model_copy(update={"reused": True}))


def _gpus(ray, ctx: Context) -> float:
    """One GPU per video task for VLM captions where the cluster has GPUs; none otherwise."""
    wants = ctx.backend == "videollama3"
    return 1.0 if wants and ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _lost(error: Exception) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"lost after {MAX_RETRIES} retries ({type(error).__name__}: {first}); run the same "
        "command again to index it (videos and stretches already written are skipped)"
    )
