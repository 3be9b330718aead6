"""Running a predictor over benchmark items: one item's record, made in this process or in a
pool of spawned worker processes (each builds its own model once)."""

import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from agent.context import Context
from agent.errors import ConfigError
from agent.evaluation.annotations import Item
from agent.evaluation.predictors import Predictor, predictor_provenance
from agent.evaluation.tasks import Task
from agent.provenance import ModelProvenance

log = logging.getLogger(__name__)

PredictorFactory = Callable[[str, Context], Predictor]
_WORKER: dict[str, Any] = {}


def predict_all(items, task, backend, ctx, workers, factory, models):
    """Yields one record per item, in completion order, from this process or a pool; puts
    the predictor's provenance in `models["record"]` once a predictor is built."""
    if not items:
        return
    if workers <= 1:
        predictor = factory(backend, ctx)
        models["record"] = predictor_provenance(predictor)
        try:
            for item in items:
                yield predict_item(predictor, task, item)
        finally:
            if hasattr(predictor, "close"):
                predictor.close()
        return
    yield from _predict_in_pool(items, task, backend, ctx, workers, factory, models)


def _predict_in_pool(items, task, backend, ctx, workers, factory, models):
    # spawn, not fork: torch and mediapipe hold threads that a forked child would inherit dead.
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(factory, backend, ctx, task),
    )
    pending = set()
    queue = iter(items)
    try:
        # Every worker builds the same predictor; one of them says what it runs.
        models["record"] = pool.submit(_worker_provenance).result()
        # Keep at most 2 items per worker in flight, so an interrupt loses little work.
        for item in queue:
            pending.add(pool.submit(_predict_in_worker, item))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                next_item = next(queue, None)
                if next_item is not None:
                    pending.add(pool.submit(_predict_in_worker, next_item))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(factory: PredictorFactory, backend: str, ctx: Context, task: Task) -> None:
    """Runs once in each worker process: builds its own model."""
    _WORKER["predictor"] = factory(backend, ctx)
    _WORKER["task"] = task


def _worker_provenance() -> ModelProvenance:
    return predictor_provenance(_WORKER["predictor"])


def _predict_in_worker(item: Item) -> dict[str, Any]:
    return predict_item(_WORKER["predictor"], _WORKER["task"], item)


def predict_item(predictor: Predictor, task: Task, item: Item) -> dict[str, Any]:
    """One record for predictions.jsonl; a failing item becomes a record with `error`."""
    started = time.perf_counter()
    record: dict[str, Any] = {
        "key": item.key(),
        "media": item.media,
        "source": item.source,
        "start_s": item.start_s,
        "end_s": item.end_s,
        "gold": task.gold(item),
    }
    if item.negative:
        record["negative"] = True
    if item.query is not None:
        record["query"] = item.query
    if item.options:
        record["options"] = item.options
    try:
        prediction = predictor.predict(task, item)
    except ConfigError:
        raise  # a setting that cannot work for any item: stop, with the fix in the message
    except Exception as error:  # noqa: BLE001 - one bad item must not stop a benchmark
        log.debug("item %s failed", item.source, exc_info=True)
        record.update(prediction=None, outcome="failed", raw="", score=None, error=_describe(error))
    else:
        record.update(
            prediction=prediction.value,
            outcome=prediction.outcome,
            raw=prediction.raw,
            score=prediction.score,
            details=prediction.details,
            error=None,
        )
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def _describe(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return (
        text
        if not isinstance(error, (OSError, RuntimeError, ValueError))
        else (f"{type(error).__name__}: {text}")
    )
