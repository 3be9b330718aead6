"""Runs a benchmark task: items through a worker pool (one model per worker), resumable.

Each finished item is appended to a cache file in OUT/cache at once, so an interrupted run
(Ctrl-C, a crash, a killed job) loses at most the items in flight and a rerun with the same
settings does only what is missing. The results are metrics.json, predictions.jsonl,
summary.md, confusion_matrix.png (classification) and run.json (settings and provenance).
"""

import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.context import Context
from agent.evaluation import metrics as m
from agent.evaluation.execution import PredictorFactory, predict_all
from agent.evaluation.predictors import (
    ABSENT,
    build_predictor,
    outcome_of,
)
from agent.evaluation.provenance import provenance
from agent.evaluation.reporting import write_outputs
from agent.evaluation.tasks import Task
from agent.provenance import ModelProvenance
from agent.timefmt import format_clock

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class RunResult:
    """What a run did: the metrics, and how many items it predicted now, reused, or lost."""

    metrics: dict[str, Any]
    out_dir: Path
    ran: int = 0
    cached: int = 0
    failed: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


class ResultCache:
    """Append-only JSONL of finished items, keyed by item; one file per settings fingerprint.

    Beside it, `<fingerprint>.models.json` records the models that made those predictions, so
    a run served from the cache still names them.
    """

    def __init__(self, folder: Path, fingerprint: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{fingerprint}.jsonl"
        self.models_path = folder / f"{fingerprint}.models.json"
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # the last line of a run killed while writing
                    self.records[record["key"]] = record

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["key"]] = record
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def models(self, ran: ModelProvenance | None, backend: str) -> ModelProvenance:
        """The models of this run (saved for later runs), else those saved by an earlier one."""
        if ran is not None:
            self.models_path.write_text(ran.model_dump_json(indent=2) + "\n", encoding="utf-8")
            return ran
        if self.models_path.is_file():
            return ModelProvenance.model_validate_json(self.models_path.read_text("utf-8"))
        return ModelProvenance(
            backend=backend, model_id="unknown (no model ran; the cache does not name one)"
        )


def resolve_backend(task: Task, ctx: Context, backend: str | None) -> tuple[str, Context]:
    """The backend name (command line > task file > context) and the run's Context."""
    ctx = ctx.replace(**task.spec.backend.settings)
    name = backend or task.spec.backend.name or ctx.backend
    return name, ctx.replace(backend=name)


def run_task(
    task: Task,
    out_dir: Path,
    *,
    ctx: Context,
    backend: str | None = None,
    limit: int | None = None,
    workers: int = 1,
    predictor_factory: PredictorFactory = build_predictor,
    progress: Progress | None = None,
    use_ray: bool = False,
) -> RunResult:
    """Predicts every item not yet cached, then scores all of them and writes the results."""
    started = time.time()
    progress = progress or _stderr
    out_dir = Path(out_dir)
    backend_name, ctx = resolve_backend(task, ctx, backend)
    items = task.items()
    task.scored_labels = task.labels(items) if task.type == "classification" else []
    if limit is not None:
        items = items[: max(0, limit)]
    cache = ResultCache(out_dir / "cache", fingerprint(task, backend_name, ctx))
    todo = [item for item in items if item.key() not in cache]
    progress(
        f"[eval {task.name}] {len(items)} items, {len(items) - len(todo)} cached, "
        f"{len(todo)} to run on {backend_name} with {max(1, workers)} "
        f"{'Ray actor' if use_ray else 'worker'}(s)"
    )
    failures: dict[str, dict[str, Any]] = {}
    ticker = _Ticker(task.name, len(todo), progress)
    ran_models: dict[str, ModelProvenance] = {}
    if use_ray:
        from agent.evaluation.ray_pool import predict_with_ray

        records_in = predict_with_ray(
            todo, task, backend_name, ctx, workers, predictor_factory, models=ran_models
        )
    else:
        records_in = predict_all(
            todo, task, backend_name, ctx, workers, predictor_factory, ran_models
        )
    for record in records_in:
        if record.get("error"):
            failures[record["key"]] = record
            progress(f"[eval {task.name}] item failed: {record['source']}: {record['error']}")
        else:
            cache.add(record)
        ticker.tick(failed=len(failures))
    records = [failures.get(item.key()) or cache.records[item.key()] for item in items]
    scores = score(task, records)
    models = cache.models(ran_models.get("record"), backend_name)
    run_info = provenance(task, models, ctx, workers=workers, limit=limit)
    run_info.update(
        started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        elapsed_s=round(time.time() - started, 2),
        items_run=len(todo) - len(failures),
        items_cached=len(items) - len(todo),
        cache_file=str(cache.path),
    )
    scores.update(
        backend=models.backend, model_id=models.model_id, git_commit=run_info["git_commit"]
    )
    write_outputs(out_dir, task, scores, records, run_info)
    progress(f"[eval {task.name}] done: {json.dumps(_headline(scores))} -> {out_dir}")
    return RunResult(
        scores, out_dir, len(todo) - len(failures), len(items) - len(todo), len(failures), records
    )


def score(task: Task, records: list[dict[str, Any]]) -> dict[str, Any]:
    """metrics.json contents: task, n, unparsed and no-detection items (counts and rates),
    failed, and the metrics (every item without a prediction scores as wrong).

    Classification metrics (WAR, UAR, ...) are over the positive items; negative items (a class
    that is not there) are scored apart by `abstention_metrics`.
    """
    outcomes = [outcome_of(r) for r in records]
    n = len(records)
    result: dict[str, Any] = {"task": task.name, "type": task.type, "n": n}
    for outcome in ("unparsed", "no_detection"):
        count = outcomes.count(outcome)
        result.update({outcome: count, f"{outcome}_rate": count / n if n else 0.0})
    result["failed"] = outcomes.count("failed")
    positives = [r for r in records if not r.get("negative")]
    gold = [r["gold"] for r in positives]
    predictions = [r["prediction"] if outcome_of(r) == "predicted" else None for r in positives]
    if task.type == "classification":
        labels = task.scored_labels
        scores = m.classification_metrics(gold, predictions, labels)
        result["n_positive"] = len(positives)
        result.update({k: v for k, v in scores.items() if k in task.metrics})
        result.update(abstention_metrics([r for r in records if r.get("negative")]))
        result["per_class_recall"] = m.per_class_recall(gold, predictions, labels)
        if "confusion_matrix" in task.metrics:
            matrix, columns = m.confusion_matrix(gold, predictions, labels)
            result["confusion_matrix"] = {"rows": labels, "columns": columns, "matrix": matrix}
    elif task.type == "grounding":
        scores = m.grounding_metrics(gold, predictions)
        result.update({k: v for k, v in scores.items() if k in task.metrics})
    else:
        result.update(m.mcq_metrics(gold, predictions))
    return result


def abstention_metrics(negatives: list[dict[str, Any]]) -> dict[str, Any]:
    """Negative items: a detection of the absent class is a false claim, `absent` the right
    abstention; items whose class the backend cannot check are counted apart (`uncheckable`),
    as are failed and unparsed ones. The false-claim rate is over the items checked (claims +
    abstentions); None when there were none."""
    outcomes = [outcome_of(r) for r in negatives]
    checked = [r for r, o in zip(negatives, outcomes, strict=True) if o == "predicted"]
    claims = sum(r["prediction"] != ABSENT for r in checked)
    result: dict[str, Any] = {"n_negative": len(negatives)}
    if negatives:
        result.update(
            false_claims=claims,
            correct_abstentions=len(checked) - claims,
            uncheckable=outcomes.count("uncheckable"),
            false_claim_rate=m.false_claim_rate(claims, len(checked)),
        )
    return result


def fingerprint(task: Task, backend: str, ctx: Context) -> str:
    """Hash of everything that changes a prediction: task spec, backend and model settings."""
    settings = ctx.as_dict()
    for volatile in ("home", "eval_data_root", "max_concurrent_jobs", "max_upload_mb"):
        settings.pop(volatile, None)
    payload = {
        "task": task.spec.model_dump(mode="json", exclude={"description", "metrics"}),
        "backend": backend,
        "settings": settings,
        "labels": task.scored_labels,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


# --- progress ---------------------------------------------------------------------------------


class _Ticker:
    """Progress lines on stderr: done/total, rate and time left, at most every 2 seconds."""

    def __init__(self, name: str, total: int, progress: Progress) -> None:
        self.name, self.total, self.progress = name, total, progress
        self.done, self.started, self.last = 0, time.perf_counter(), 0.0

    def tick(self, failed: int) -> None:
        self.done += 1
        now = time.perf_counter()
        if now - self.last < 2.0 and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.started, 1e-9)
        left_s = (self.total - self.done) / rate if rate > 0 else 0.0
        self.progress(
            f"[eval {self.name}] {self.done}/{self.total} ({failed} failed) "
            f"{rate:.2f} items/s, {format_clock(left_s)} left"
        )


def _headline(scores: dict[str, Any]) -> dict[str, Any]:
    skip = {"per_class_recall", "confusion_matrix", "task", "type", "model_id", "git_commit"}
    return {
        k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items() if k not in skip
    }


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
