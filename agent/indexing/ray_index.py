"""`index --ray`: each video perceived and embedded as a Ray task; the driver writes the library.

The driver decides what to do exactly as a local run does (a video indexed with the same
settings is skipped), sends the rest to Ray tasks (`agent.indexing.remote`), and stores each
returned payload with `ClipIndex.put_video`: one transaction per video, written once, by this
process only. A task whose worker dies is retried by Ray (`MAX_RETRIES`); a video never written
is simply done again by the next run, so an interrupted run resumes. The driver never loads a
model: it needs only the models' identities for the settings fingerprint.
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.cluster import connect_ray
from agent.context import Context
from agent.index import ClipIndex, VideoRecord
from agent.indexing.remote import RemoteResult, WorkerReport, index_remote
from agent.indexing.settings import index_settings, reuse_reason

log = logging.getLogger(__name__)

# Retries of a task whose worker process died (killed, out of memory, node lost).
MAX_RETRIES = 3


@dataclass
class RayIndexed:
    """One input's outcome: the library's record, or the error that stopped it."""

    path: Path
    record: VideoRecord | None = None
    error: str | None = None
    worker: WorkerReport | None = None


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
    to `index_video` on the workers (tests pass one that fails on purpose).
    """
    say = progress or (lambda text: None)
    settings = driver_settings(ctx)
    todo: list[Path] = []
    copies: list[Path] = []  # same content as an earlier input of this run: indexed once
    shas: set[str] = set()
    for path in paths:
        sha = library.resolve(path)  # None for a path that is not a file: its task says why
        existing = library.video(sha) if sha is not None else None
        if not force and existing is not None and reuse_reason(existing, settings) is None:
            yield _reused(library, path, sha)
        elif sha in shas:
            copies.append(path)
        else:
            todo.append(path)
            shas.add(sha)
    if todo:
        ray = connect_ray()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        slots = max(1, workers or cpus)
        say(f"[ray] {len(todo)} videos to index, {slots} at a time ({cpus} CPUs in the cluster)")
        gpus = _gpus(ray, ctx)
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=MAX_RETRIES)(_on_worker)
        yield from _run(ray, task, todo, ctx, library, settings, slots, session_factory)
    for path in copies:
        sha = library.resolve(path)
        record = library.video(sha)
        if record is not None and record.status == "complete":
            yield _reused(library, path, sha)
        else:
            yield RayIndexed(path, error="same content as another input, which failed")


def _reused(library: ClipIndex, path: Path, sha: str) -> RayIndexed:
    library.note_path(path, sha)
    return RayIndexed(path, library.video(sha).model_copy(update={"reused": True}))


def _run(ray, task, todo, ctx, library, settings, slots, session_factory) -> Iterator[RayIndexed]:
    queue = list(reversed(todo))
    pending: dict[Any, Path] = {}
    try:
        while queue or pending:
            while queue and len(pending) < slots:
                path = queue.pop()
                pending[task.remote(str(path), ctx, session_factory)] = path
            done, _ = ray.wait(list(pending), num_returns=1)
            path = pending.pop(done[0])
            try:
                result: RemoteResult = ray.get(done[0])
            except ray.exceptions.RayTaskError as error:  # a bug in the task: its own message
                yield RayIndexed(path, error=f"failed on a worker: {error.cause!r}")
                continue
            except ray.exceptions.RayError as error:  # the worker died more than MAX_RETRIES
                yield RayIndexed(path, error=_lost(error))
                continue
            yield _store(path, result, library, settings)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def _on_worker(path: str, ctx: Context, session_factory) -> RemoteResult:
    """The Ray task: `index_remote`, its report naming the Ray node as well as the host."""
    import ray

    result = index_remote(path, ctx, session_factory)
    node_id = ray.get_runtime_context().get_node_id()
    result.worker.node = f"{result.worker.node} (Ray node {node_id[:8]})"
    return result


def _store(path: Path, result: RemoteResult, library: ClipIndex, settings) -> RayIndexed:
    """Writes a worker's payload to the library (the same transaction a local run uses)."""
    if result.error is not None or result.payload is None:
        return RayIndexed(path, error=result.error or "no payload", worker=result.worker)
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
    library.begin_video(payload.info, payload.settings)
    return RayIndexed(path, library.put_video(payload), worker=result.worker)


def _gpus(ray, ctx: Context) -> float:
    """One GPU per task for VLM captions where the cluster has GPUs; none for perception."""
    wants = ctx.backend == "videollama3"
    return 1.0 if wants and ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _lost(error: Exception) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"lost after {MAX_RETRIES} retries ({type(error).__name__}: {first}); run the same "
        "command again to index it (videos already written are skipped)"
    )
