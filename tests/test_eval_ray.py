"""Parallel evaluation gives what the local run gives: the process pool, and the Ray executor.

Ray itself is an optional extra (`behavior-agent[cluster]`) that this test suite does not
install; the Ray executor's own logic (actors built once, items sent in chunks, records
collected in completion order, provenance from an actor) runs here on an in-process stand-in
for the few Ray calls it makes, with arguments pickled as Ray would.
"""

import pickle
import sys
import types
from pathlib import Path

import pytest

from agent.context import Context
from agent.errors import ConfigError
from agent.evaluation.predictors import Prediction
from agent.evaluation.ray_pool import CHUNK_ITEMS, predict_with_ray
from agent.evaluation.runner import run_task
from agent.evaluation.tasks import load_task
from agent.provenance import ModelProvenance

QUIET = lambda text: None  # noqa: E731
# good* right, wrong* wrong, unparsed* unreadable, empty* nothing detected, broken* fails.
ROWS = [
    ("good1.mp4", "happy"),
    ("wrong1.mp4", "sad"),
    ("unparsed1.mp4", "happy"),
    ("empty1.mp4", "sad"),
    ("broken1.mp4", "happy"),
    ("good2.mp4", "sad"),
    ("good3.mp4", "happy"),
    ("wrong2.mp4", "happy"),
    ("good4.mp4", "sad"),
    ("unparsed2.mp4", "sad"),
    ("good5.mp4", "happy"),
]


class ScriptedPredictor:
    """Answers from the media name (see ROWS); names its model in its provenance."""

    backend = "double"
    model_id = "scripted"

    def __init__(self) -> None:
        self.provenance = ModelProvenance(backend="double", model_id="scripted-model-7")

    def predict(self, task, item):
        name, gold = item.media, task.gold(item)
        if name.startswith("good"):
            return Prediction(gold, f"it is {gold}", 0.9)
        if name.startswith("wrong"):
            other = "sad" if gold == "happy" else "happy"
            return Prediction(other, f"it is {other}", 0.6)
        if name.startswith("empty"):
            return Prediction(None, "[]", None, outcome="no_detection")
        if name.startswith("broken"):
            raise OSError(f"{name} is truncated")
        return Prediction(None, "hmm", None)


def scripted_factory(backend, ctx):
    return ScriptedPredictor()


@pytest.fixture
def task(tmp_path: Path):
    (tmp_path / "media").mkdir()
    (tmp_path / "l.csv").write_text("media,label\n" + "".join(f"{m},{g}\n" for m, g in ROWS))
    (tmp_path / "t.yaml").write_text(
        "name: r\ntype: classification\nkind: emotion\nannotations: l.csv\nmedia_root: media\n"
    )
    return load_task(tmp_path / "t.yaml")


def comparable(result) -> list[tuple]:
    """What must not depend on how items were run: per item, in task order."""
    return [
        (r["key"], r["prediction"], r["outcome"], r["score"], r["raw"], r["error"])
        for r in result.records
    ]


def headline(result) -> dict:
    return {k: v for k, v in result.metrics.items() if k != "git_commit"}


def test_worker_pool_gives_the_local_results(task, tmp_path):
    local = run_task(
        task, tmp_path / "a", ctx=Context(), predictor_factory=scripted_factory, progress=QUIET
    )
    pooled = run_task(
        task,
        tmp_path / "b",
        ctx=Context(),
        predictor_factory=scripted_factory,
        workers=2,
        progress=QUIET,
    )
    assert comparable(pooled) == comparable(local)
    assert headline(pooled) == headline(local)
    assert (local.metrics["unparsed"], local.metrics["no_detection"]) == (2, 1)
    assert local.metrics["failed"] == 1 and local.metrics["war"] == pytest.approx(5 / 11)
    # Both name the model the workers really ran, not a setting.
    assert local.metrics["model_id"] == pooled.metrics["model_id"] == "scripted-model-7"


class FakeRay(types.ModuleType):
    """In-process stand-in for the Ray calls `predict_with_ray` makes; counts what it did."""

    def __init__(self) -> None:
        super().__init__("ray")
        self.initialized, self.actors, self.calls, self.killed = False, [], [], 0
        self.util = types.ModuleType("ray.util")
        self.util.ActorPool = self._pool

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **options) -> None:
        self.initialized = True

    def cluster_resources(self) -> dict:
        return {"CPU": 2.0}

    def remote(self, **options):
        ray = self

        def wrap(cls):
            class Handle:
                def __init__(self, *args):
                    self.instance = cls(*pickle.loads(pickle.dumps(args)))
                    ray.actors.append(self)

                def __getattr__(self, name):
                    method = getattr(self.instance, name)

                    def call(*args):
                        ray.calls.append(name)
                        return method(*pickle.loads(pickle.dumps(args)))

                    return types.SimpleNamespace(remote=call)

            return types.SimpleNamespace(remote=Handle)

        return wrap

    def get(self, ref):
        return pickle.loads(pickle.dumps(ref))

    def kill(self, handle) -> None:
        self.killed += 1

    def _pool(self, actors):
        ray = self

        class Pool:
            def map_unordered(self, fn, values):
                # Round robin, last chunk first: completion order is not task order.
                done = [ray.get(fn(actors[i % len(actors)], v)) for i, v in enumerate(values)]
                return reversed(done)

        return Pool()


def test_ray_actors_give_the_local_results_and_resume(task, tmp_path, monkeypatch):
    local = run_task(
        task, tmp_path / "a", ctx=Context(), predictor_factory=scripted_factory, progress=QUIET
    )
    ray = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setitem(sys.modules, "ray.util", ray.util)
    out = tmp_path / "ray"
    first = run_task(
        task,
        out,
        ctx=Context(),
        predictor_factory=scripted_factory,
        workers=2,
        use_ray=True,
        limit=5,
        progress=QUIET,
    )
    assert first.ran == 4 and first.failed == 1  # the broken item is reported, not cached
    assert len(ray.actors) == 2 and ray.killed == 2
    assert ray.calls.count("predict") == 2  # 5 items in chunks of CHUNK_ITEMS
    assert CHUNK_ITEMS == 4
    resumed = run_task(
        task,
        out,
        ctx=Context(),
        predictor_factory=scripted_factory,
        workers=2,
        use_ray=True,
        progress=QUIET,
    )
    assert (resumed.ran, resumed.cached, resumed.failed) == (6, 4, 1)
    assert comparable(resumed) == comparable(local)
    assert headline(resumed) == headline(local)
    assert resumed.metrics["model_id"] == "scripted-model-7"  # asked of an actor
    # Nothing left to run: no actor (no model) is started at all.
    actors = len(ray.actors)
    assert list(predict_with_ray([], task, "double", Context(), 2, scripted_factory)) == []
    assert len(ray.actors) == actors


def test_ray_without_the_extra_says_how_to_install_it(task, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'behavior-agent\[cluster\]'"):
        run_task(
            task,
            tmp_path / "x",
            ctx=Context(),
            predictor_factory=scripted_factory,
            use_ray=True,
            progress=QUIET,
        )
