"""Parallel evaluation gives what the local run gives: the process pool, and Ray actors on the
real local Ray cluster of the test session (`ray_cluster`), resume included."""

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.context import Context
from agent.errors import ConfigError
from agent.evaluation.predictors import Prediction
from agent.evaluation.ray_pool import CHUNK_ITEMS, predict_with_ray
from agent.evaluation.runner import run_task
from agent.evaluation.tasks import load_task
from agent.provenance import ModelProvenance

QUIET = lambda text: None  # noqa: E731
# shared_media items run in the Ray-vs-local comparison (the first ones, positives and
# negatives; all 37 take minutes on CPU: the full comparison is in docs/cluster.md).
SHARED_ITEMS = 8
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
    local = run_task(task, tmp_path / "a", predictor_factory=scripted_factory, progress=QUIET)
    pooled = run_task(
        task, tmp_path / "b", predictor_factory=scripted_factory, workers=2, progress=QUIET
    )
    assert comparable(pooled) == comparable(local)
    assert headline(pooled) == headline(local)
    assert (local.metrics["unparsed"], local.metrics["no_detection"]) == (2, 1)
    assert local.metrics["failed"] == 1 and local.metrics["war"] == pytest.approx(5 / 11)
    # Both name the model the workers really ran, not a setting.
    assert local.metrics["model_id"] == pooled.metrics["model_id"] == "scripted-model-7"


def test_ray_actors_give_the_local_results_and_resume(task, tmp_path, ray_cluster):
    local = run_task(task, tmp_path / "a", predictor_factory=scripted_factory, progress=QUIET)
    out = tmp_path / "ray"
    first = run_task(
        task,
        out,
        predictor_factory=scripted_factory,
        workers=2,
        use_ray=True,
        limit=5,
        progress=QUIET,
    )
    assert first.ran == 4 and first.failed == 1  # the broken item is reported, not cached
    assert CHUNK_ITEMS == 4  # 5 items: two chunks, one per actor
    resumed = run_task(
        task, out, predictor_factory=scripted_factory, workers=2, use_ray=True, progress=QUIET
    )
    assert (resumed.ran, resumed.cached, resumed.failed) == (6, 4, 1)
    assert comparable(resumed) == comparable(local)
    assert headline(resumed) == headline(local)
    assert resumed.metrics["model_id"] == "scripted-model-7"  # asked of an actor
    # Nothing left to run: no actor is made and nothing comes back.
    assert list(predict_with_ray([], task, "double", Context(), 2, scripted_factory)) == []


def test_ray_without_the_extra_says_how_to_install_it(task, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'behavior-agent\[cluster\]'"):
        run_task(
            task, tmp_path / "x", predictor_factory=scripted_factory, use_ray=True, progress=QUIET
        )


def help_text(command: str) -> str:
    """`behavior-agent COMMAND --help` as one line of words (panel borders and wraps removed)."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def test_help_names_the_cluster_extra_with_its_brackets():
    for command in ("eval", "index"):
        assert "pip install 'behavior-agent[cluster]'" in help_text(command)


@pytest.mark.slow
def test_shared_media_on_ray_gives_the_metrics_of_a_local_run(
    tmp_path, shared_media, home, ray_cluster
):
    def run(*extra: str) -> dict:
        out = tmp_path / ("ray" if extra else "local")
        args = ["eval", "shared_media", "--data-root", str(shared_media.parent), "--json"]
        result = CliRunner().invoke(
            app, [*args, "--out", str(out), "--limit", str(SHARED_ITEMS), *extra]
        )
        assert result.exit_code == 0, result.output
        metrics = json.loads(result.stdout)
        return {k: v for k, v in metrics.items() if k != "git_commit"}

    local = run()
    on_ray = run("--ray", "--workers", "2")
    assert on_ray == local
    assert local["n"] == SHARED_ITEMS and local["failed"] == 0
    records = (tmp_path / "ray" / "predictions.jsonl").read_text().splitlines()
    assert len(records) == SHARED_ITEMS and all(json.loads(r)["error"] is None for r in records)


def test_the_install_brings_the_real_ray():
    import ray

    assert "site-packages" in Path(ray.__file__).parts and hasattr(ray, "remote")
    assert tuple(int(p) for p in ray.__version__.split(".")[:2]) >= (2, 30)
    root = Path(__file__).resolve().parents[1]
    assert '"${PIP[@]}" install -q -e ".[dev,cluster]"' in (root / "scripts/install.sh").read_text()
    assert 'cluster = ["ray>=2.30,<3"]' in (root / "pyproject.toml").read_text()
