"""The one provenance record: backends named by the objects that ran, and model entries."""

import json
from importlib import metadata
from pathlib import Path

import pytest

from agent import provenance as prov
from agent.context import Context
from agent.provenance import (
    ModelEntry,
    checkpoint_entry,
    files_sha256,
    mediapipe_entry,
    model_provenance,
    register_model,
    registered_models,
    unregister_model,
    vlm_backend,
    vlm_label,
    vlm_model_id,
)


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch):
    """Each test starts with no registered model: learned models that other tests loaded in
    this process would otherwise join every record."""
    monkeypatch.setattr(prov, "_REGISTERED", {})


@pytest.fixture
def expression_model():
    """A learned perception model registered as it would be when it loads."""
    entry = register_model(
        "expression-net-small",
        role="expression",
        source_package="numpy",  # any installed wheel: version and license come from it
        sha256="ab" * 32,
        sha256_of="expression.onnx",
    )
    yield entry
    unregister_model(entry.name)


def test_registered_models_join_every_record_made_after(expression_model):
    assert expression_model.version == metadata.version("numpy")
    assert expression_model.license not in ("", "unknown")
    record = model_provenance()
    assert record.backend == "perception" and record.model_id.startswith("mediapipe-holistic==")
    assert [m.role for m in record.models] == ["landmarks", "expression"]
    assert record.model("expression") == expression_model
    again = register_model("expression-net-small", role="expression", source_package="numpy")
    assert registered_models().count(again) == 1 and again.sha256 == ""  # replaced
    record.add_model(ModelEntry(name="yolo-tiny", role="objects", source_package="x"))
    assert record.model("objects").name == "yolo-tiny"
    unregister_model("expression-net-small")
    assert model_provenance().model("expression") is None


def test_the_landmark_models_are_hashed_from_the_installed_wheel():
    import mediapipe

    entry = mediapipe_entry()
    modules = Path(mediapipe.__file__).parent / "modules"
    files = [modules / f for f in prov.MEDIAPIPE_MODEL_FILES]
    assert all(f.is_file() for f in files)  # the models Perceiver loads ship in the wheel
    assert entry.sha256 == files_sha256(files) and len(entry.sha256) == 64
    assert entry.version == metadata.version("mediapipe") and "Apache" in entry.license
    assert "pose_landmark_full.tflite" in entry.sha256_of


class NamedVLM:
    name = "otter:org/otter-7b"


class PlainVLM:
    pass


def test_a_vlm_is_named_by_what_it_says_it_is_never_videollama3_by_default():
    assert (vlm_backend(NamedVLM()), vlm_model_id(NamedVLM())) == ("otter", "org/otter-7b")
    assert vlm_label(NamedVLM()) == "otter (org/otter-7b)"
    assert (vlm_backend(PlainVLM()), vlm_label(PlainVLM())) == ("PlainVLM", "PlainVLM")
    record = model_provenance(NamedVLM())
    assert (record.backend, record.model_id, record.quantization) == (
        "otter",
        "org/otter-7b",
        "unknown",
    )
    assert [m.role for m in record.models] == ["landmarks", "vlm"]
    assert "videollama3" not in record.model_dump_json().lower()


def test_a_checkpoint_folder_is_hashed_and_its_license_read(tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights" * 100)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\ntags: [video]\n---\n# Card\n")
    entry = checkpoint_entry("my/model", folder)
    assert entry.sha256 == files_sha256([folder / "model.safetensors"])
    assert (entry.sha256_of, entry.license, entry.version) == (
        "model.safetensors",
        "apache-2.0",
        "local folder",
    )
    monkeypatch.setattr(prov, "MAX_HASHED_BYTES", 10)  # "too large to hash at load time"
    big = checkpoint_entry("my/model", folder)
    assert big.sha256 == files_sha256([folder / "config.json"])
    assert big.sha256_of.startswith("config.json (weights too large")
    hub = checkpoint_entry("org/not-cached", None)
    assert hub.source_package == "huggingface hub org/not-cached" and hub.sha256 == ""


def test_predictors_and_reports_carry_the_registered_models(expression_model, tmp_path):
    from agent.evaluation.predictors import PerceptionPredictor
    from agent.report import assemble_report
    from agent.report.render import write_report
    from agent.state import Clip
    from agent.video import probe
    from tests.report_support import StubKB, sample_detections
    from tests.synthetic import write_video

    ctx = Context(home=tmp_path / "home", models_dir=tmp_path / "no-models")
    predictor = PerceptionPredictor(ctx, perceiver=object(), kb=StubKB())
    assert predictor.provenance.model("expression") == expression_model
    video = write_video(tmp_path / "v.mp4", [3.0])
    info = probe(video, ctx)
    clips = [Clip(clip_id=0, start_s=0.0, end_s=info.duration_s)]
    data = assemble_report(info, clips, sample_detections(), ctx, kb=StubKB(), key_frames=False)
    assert [m.role for m in data.provenance.models] == ["landmarks", "expression"]
    page = write_report(data, "html", tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Model (expression)" in page and "expression-net-small" in page
    assert "abababababababab" in page  # the first 16 hex digits of its sha256


def write_installed_record(
    models_dir: Path, model_id: str, weights: bool = True, **changes
) -> None:
    """What `models install` leaves: provenance.json, and the weights file unless not `weights`."""
    record = {
        "id": model_id,
        "task": "objects",
        "name": f"{model_id} detector",
        "license": "MIT",
        "registry": "npm",
        "package": "@example/models",
        "version": "3.0.4",
        "model_file": "model.onnx",
        "sha256": "cd" * 32,
        **changes,
    }
    (models_dir / model_id).mkdir(parents=True)
    (models_dir / model_id / "provenance.json").write_text(json.dumps(record), "utf-8")
    if weights:
        (models_dir / model_id / record["model_file"]).write_bytes(b"weights")


def test_installed_learned_models_are_named_before_they_load(tmp_path, caplog):
    """A report or answer read from an index names the learned models that made its
    detections, though nothing was perceived (so nothing registered) in this process."""
    models_dir = tmp_path / "models"
    write_installed_record(models_dir, "objects_a")
    write_installed_record(models_dir, "broken", sha256=None)
    (models_dir / "broken" / "provenance.json").write_text("{not json", "utf-8")
    ctx = Context(home=tmp_path / "home", models_dir=models_dir)
    with caplog.at_level("WARNING", logger="agent.provenance"):
        record = model_provenance(None, ctx)
    assert [(m.role, m.name) for m in record.models] == [
        ("landmarks", mediapipe_entry().name),
        ("objects", "objects_a detector"),
    ]
    objects = record.model("objects")
    assert (objects.source_package, objects.version, objects.sha256) == (
        "npm:@example/models",
        "3.0.4",
        "cd" * 32,
    )
    assert "broken" in caplog.text and "models install --force" in caplog.text
    # Settings that switch learned models off name none, and no settings name none.
    off = Context(home=tmp_path / "home", models_dir=models_dir, learned_models=False)
    assert model_provenance(None, off).model("objects") is None
    assert model_provenance().model("objects") is None


def test_a_model_whose_weights_are_missing_is_not_named(tmp_path, caplog):
    # Provenance names only what ran, or is installed and loadable: a record without its
    # weights file (deleted, or an interrupted install) is no model that made a result.
    models_dir = tmp_path / "models"
    write_installed_record(models_dir, "objects_a")
    write_installed_record(models_dir, "expression_b", weights=False, task="expression")
    ctx = Context(home=tmp_path / "home", models_dir=models_dir)
    with caplog.at_level("WARNING", logger="agent.provenance"):
        record = model_provenance(None, ctx)
    assert [m.name for m in record.models if m.role != "landmarks"] == ["objects_a detector"]
    assert record.model("expression") is None
    assert "expression_b" in caplog.text and "model.onnx is missing" in caplog.text


def test_a_loaded_model_replaces_its_installed_entry(tmp_path):
    models_dir = tmp_path / "models"
    write_installed_record(models_dir, "objects_a")
    register_model("objects_a detector", role="objects", source_package="numpy", sha256="ef" * 32)
    record = model_provenance(None, Context(models_dir=models_dir))
    assert [m.sha256 for m in record.models if m.role == "objects"] == ["ef" * 32]


def test_report_on_an_indexed_video_names_the_installed_models(tmp_path):
    from agent.report.provenance import provenance as report_provenance
    from agent.video import probe
    from tests.synthetic import write_video

    models_dir = tmp_path / "models"
    write_installed_record(models_dir, "objects_a")
    ctx = Context(home=tmp_path / "home", models_dir=models_dir)
    info = probe(write_video(tmp_path / "v.mp4", [2.0]), ctx)
    assert "objects_a detector" in [m.name for m in report_provenance(info, ctx).models]
