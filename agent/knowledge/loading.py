"""Knowledge-base loading: YAML files validated against the schema, with precise problems."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent.knowledge.base import KnowledgeBase
from agent.knowledge.schema import KINDS, REQUIRED_IDS, BehaviorClass, KnowledgeBaseError

# libyaml's safe loader where PyYAML was built with it: every command that reads the knowledge
# base (search, ask, report) parses ~60 files, which the pure-Python loader takes ~10x longer on.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _where(path: Path, class_id: str | None) -> str:
    return f"{path}: class '{class_id or path.stem}'"


def _field_path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(whole class)"


def _parse_file(path: Path) -> tuple[BehaviorClass | None, list[str]]:
    """One class from one YAML file, or the list of what is wrong with it."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        return None, [f"{_where(path, None)}:{line} is not valid YAML ({error}). Fix the syntax."]
    if not isinstance(raw, dict):
        return None, [f"{_where(path, None)}: the file must hold one mapping (id: ..., kind: ...)."]
    class_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    try:
        item = BehaviorClass.model_validate(raw)
    except ValidationError as error:
        return None, [
            f"{_where(path, class_id)}: field '{_field_path(e['loc'])}': {e['msg']}"
            + (f" (got {e['input']!r})" if e["type"] != "missing" else " - add it.")
            for e in error.errors()
        ]
    problems = [
        f"{_where(path, item.id)}: field '{field}': {problem}."
        for field, problem in item.consistency_problems()
    ]
    if item.id != path.stem:
        problems.append(
            f"{_where(path, item.id)}: field 'id': must equal the file name '{path.stem}'."
        )
    if path.parent.name in KINDS and item.kind != path.parent.name:
        problems.append(
            f"{_where(path, item.id)}: field 'kind': '{item.kind}' but the file is in "
            f"'{path.parent.name}/'; move the file or fix the kind."
        )
    return item, problems


def _cross_check(classes: dict[str, tuple[BehaviorClass, Path]]) -> list[str]:
    """Problems that only show across files: confusions pointing at unknown classes."""
    problems = []
    for item, path in classes.values():
        for index, confusion in enumerate(item.confusions):
            if confusion.id not in classes:
                problems.append(
                    f"{_where(path, item.id)}: field 'confusions[{index}].id': no class "
                    f"'{confusion.id}' in the knowledge base; use an existing id or add that class."
                )
    return problems


def validate_folder(folder: Path) -> tuple[dict[str, BehaviorClass], list[str]]:
    """Every class under `folder/<kind>/*.yaml` and every problem found (empty when valid)."""
    if not folder.is_dir():
        return {}, [f"{folder}: no such knowledge-base folder."]
    files = sorted(p for p in folder.rglob("*.yaml") if p.is_file())
    if not files:
        return {}, [f"{folder}: no <kind>/<id>.yaml files found."]
    classes: dict[str, tuple[BehaviorClass, Path]] = {}
    problems: list[str] = []
    for path in files:
        item, found = _parse_file(path)
        problems += found
        if item is None:
            continue
        if item.id in classes:
            problems.append(
                f"{_where(path, item.id)}: field 'id': duplicate of {classes[item.id][1]}."
            )
            continue
        classes[item.id] = (item, path)
    problems += _cross_check(classes)
    return {cid: pair[0] for cid, pair in classes.items()}, problems


def missing_required(classes: dict[str, BehaviorClass]) -> list[str]:
    """Problems for required ids that are absent or filed under the wrong kind."""
    problems = []
    for kind, ids in REQUIRED_IDS.items():
        for class_id in ids:
            if class_id not in classes:
                problems.append(
                    f"required {kind} class '{class_id}' is missing; add {kind}/{class_id}.yaml."
                )
            elif classes[class_id].kind != kind:
                problems.append(
                    f"class '{class_id}' must be a {kind}, not a {classes[class_id].kind}."
                )
    return problems


def default_folder() -> Path:
    """The knowledge base that ships with the package."""
    from agent.resources import data_dir

    return data_dir("knowledge")


def load_knowledge_base(folder: Path | None = None) -> KnowledgeBase:
    """The validated knowledge base in `folder` (default: the shipped one, cached per process)."""
    if folder is None:
        return _load_default()
    return _load(Path(folder))


def _load(folder: Path) -> KnowledgeBase:
    classes, problems = validate_folder(folder)
    if problems:
        raise KnowledgeBaseError(problems)
    return KnowledgeBase(list(classes.values()), folder)


@cache
def _load_default() -> KnowledgeBase:
    return _load(default_folder())
