"""Ray execution of evaluation items: one actor per worker, each holding its own model.

The driver (the `eval` command) keeps the cache, scoring and outputs; actors only predict, with
the same `build_predictor` and `predict_item` as the local pool, so results are identical.
`agent.cluster.connect_ray` joins the cluster named by RAY_ADDRESS, or starts a local Ray.
"""

from collections.abc import Iterator
from typing import Any

from agent.cluster import connect_ray
from agent.context import Context
from agent.evaluation.annotations import Item
from agent.evaluation.execution import predict_item

# Items sent to an actor per call: amortises scheduling, and bounds the work a lost node redoes.
CHUNK_ITEMS = 4


class EvalWorker:
    """A Ray actor's state: the predictor (model) built once, then items predicted in chunks."""

    def __init__(self, factory, backend: str, ctx: Context, task) -> None:
        self.predictor = factory(backend, ctx)
        self.task = task

    def predict(self, items: list[Item]) -> list[dict[str, Any]]:
        return [predict_item(self.predictor, self.task, item) for item in items]

    def provenance(self):
        """The models this actor's predictor runs (`agent.provenance.ModelProvenance`)."""
        from agent.evaluation.predictors import predictor_provenance

        return predictor_provenance(self.predictor)


def predict_with_ray(
    items: list[Item],
    task,
    backend: str,
    ctx: Context,
    workers: int,
    factory,
    gpus_per_worker: float | None = None,
    models: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Records of `items` in completion order, from `workers` Ray actors; the actors'
    provenance goes into `models["record"]`."""
    if not items:
        return
    ray = connect_ray()
    from ray.util import ActorPool

    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if backend == "videollama3" and _has_gpus(ray) else 0.0
    actor = ray.remote(num_gpus=gpus_per_worker, max_restarts=-1, max_task_retries=2)(EvalWorker)
    actors = [actor.remote(factory, backend, ctx, task) for _ in range(max(1, workers))]
    chunks = [items[i : i + CHUNK_ITEMS] for i in range(0, len(items), CHUNK_ITEMS)]
    pool = ActorPool(actors)
    try:
        if models is not None:
            models["record"] = ray.get(actors[0].provenance.remote())
        for records in pool.map_unordered(lambda a, chunk: a.predict.remote(chunk), chunks):
            yield from records
    finally:
        for handle in actors:
            ray.kill(handle)


def _has_gpus(ray) -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0
