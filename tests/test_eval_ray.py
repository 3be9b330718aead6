"""The Ray executor of the evaluation runner (runs where Ray is installed: the `cluster` extra)."""

import sys

import pytest

from agent.evaluation.runner import run_task
from agent.evaluation.tasks import load_task

ray = pytest.importorskip("ray", reason="Ray not installed: pip install 'behavior-agent[cluster]'")


class EchoPredictor:
    """Right for media named good*, unparsed otherwise; counts calls per actor."""

    backend = "double"
    model_id = "echo"

    def predict(self, task, item):
        from agent.evaluation.predictors import Prediction

        if item.media.startswith("good"):
            return Prediction(task.gold(item), "ok", 1.0)
        return Prediction(None, "???", None)


def echo_factory(backend, ctx):
    return EchoPredictor()


@pytest.fixture(scope="module")
def local_ray():
    # Actors unpickle this module's classes by value: they cannot import the test module.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_actors_give_the_same_results_and_resume(tmp_path, local_ray):
    (tmp_path / "media").mkdir()
    rows = [f"good{i}.mp4,happy" for i in range(6)] + ["bad.mp4,sad", "good9.mp4,sad"]
    (tmp_path / "l.csv").write_text("media,label\n" + "\n".join(rows) + "\n")
    (tmp_path / "t.yaml").write_text(
        "name: r\ntype: classification\nkind: emotion\nannotations: l.csv\nmedia_root: media\n"
    )
    task = load_task(tmp_path / "t.yaml")
    quiet = lambda text: None  # noqa: E731
    out = tmp_path / "out"
    result = run_task(
        task, out, predictor_factory=echo_factory, workers=2, use_ray=True, limit=5, progress=quiet
    )
    assert result.ran == 5 and result.metrics["war"] == 1.0
    result = run_task(
        task, out, predictor_factory=echo_factory, workers=2, use_ray=True, progress=quiet
    )
    assert (result.ran, result.cached) == (3, 5)
    assert result.metrics["n"] == 8 and result.metrics["unparsed"] == 1
    assert result.metrics["war"] == pytest.approx(7 / 8)
