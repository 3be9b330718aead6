"""Benchmark task files (YAML): the schema, loading with located errors, and resolved items.

A task file names the benchmark, its type, where the annotations and media are (relative to
the YAML, or to `--data-root`), how dataset labels map to knowledge-base ids, the prompt, the
metrics and the backend settings. See docs/evaluation.md for the format.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.evaluation.adapters import ADAPTERS, GENERIC_FORMATS, read_items
from agent.evaluation.annotations import AnnotationError, Item
from agent.resources import load_prompt

TaskType = Literal["classification", "grounding", "mcq"]
BackendName = Literal["perception", "videollama3"]
TaskKind = Literal["emotion", "gesture", "action", "mixed"]
METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("war", "uar", "macro_f1", "confusion_matrix"),
    "grounding": ("r1_iou0.3", "r1_iou0.5", "r1_iou0.7", "miou"),
    "mcq": ("accuracy",),
}
SHIPPED_TASKS = Path(__file__).resolve().parent / "tasks"


class BackendSpec(BaseModel):
    """How items become predictions: the backend and the run settings it needs."""

    model_config = ConfigDict(extra="forbid")

    # perception (offline landmarks) or videollama3 (the VLM); empty = the Context's backend.
    name: BackendName | None = None
    # Frames given to the VLM per item (uniformly over the item's span).
    num_frames: int = Field(default=16, ge=1, le=256)
    # Context fields for this task (sample_fps, model_id, quantization, ...).
    settings: dict[str, Any] = {}

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        known = {f.name for f in dataclasses.fields(Context)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown settings {unknown}; known: {sorted(known)}")
        return settings


class TaskSpec(BaseModel):
    """The contents of one task file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: TaskType
    description: str = ""
    # emotion | gesture | action: which detections answer a classification item; `mixed`: each
    # item is answered among the task's labels of its own class's kind (as if the file were one
    # task per kind), for a task that covers all three.
    kind: TaskKind | None = None
    annotations: str
    # `generic` = the generic format of the type; else a native adapter (dfew, charades_sta, ...).
    format: str = "generic"
    # Adapter options (media_suffix, video_map, modalities, ...).
    options: dict[str, Any] = {}
    media_root: str = "."
    # Dataset name in the knowledge base's `dataset_labels` (a default label_map), e.g. DFEW.
    dataset: str | None = None
    # Dataset label -> knowledge-base id; wins over `dataset`. Unmapped labels stay as they are.
    label_map: dict[str, str] = {}
    # The classes scored (default: every mapped gold label).
    labels: list[str] | None = None
    # Prompt file in prompts/ (default per type, see predictors.DEFAULT_PROMPTS).
    prompt: str | None = None
    metrics: list[str] | None = None
    backend: BackendSpec = BackendSpec()

    @field_validator("format")
    @classmethod
    def _known_format(cls, fmt: str, info: ValidationInfo) -> str:
        task_type = info.data.get("type")
        if fmt == "generic":
            return fmt
        if fmt not in ADAPTERS:
            raise ValueError(f"unknown format {fmt!r}; known: {['generic', *ADAPTERS]}")
        if task_type and ADAPTERS[fmt].task_type != task_type:
            raise ValueError(
                f"format {fmt!r} is for {ADAPTERS[fmt].task_type} tasks, not {task_type}"
            )
        return fmt

    @field_validator("metrics")
    @classmethod
    def _applicable_metrics(cls, metrics: list[str] | None, info: ValidationInfo):
        task_type = info.data.get("type")
        unknown = sorted(set(metrics or []) - set(METRICS.get(task_type, ())))
        if task_type and unknown:
            choices = list(METRICS[task_type])
            raise ValueError(
                f"metrics {unknown} do not apply to {task_type}; choose from {choices}"
            )
        return metrics

    @field_validator("prompt")
    @classmethod
    def _prompt_exists(cls, name: str | None) -> str | None:
        if name:
            try:
                load_prompt(name)
            except BehaviorAgentError as error:
                raise ValueError(str(error)) from None
        return name

    @model_validator(mode="after")
    def _kind_for_classification(self) -> "TaskSpec":
        if self.type == "classification" and self.kind is None:
            raise ValueError("a classification task needs `kind` (emotion, gesture or action)")
        return self


@dataclass
class Task:
    """A loaded task: the spec, where it came from, and its resolved paths."""

    spec: TaskSpec
    path: Path
    annotations_path: Path
    media_root: Path
    label_map: dict[str, str] = field(default_factory=dict)
    # The classes scored, fixed once the items are read (see `labels`).
    scored_labels: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.spec.metrics or METRICS[self.spec.type])

    def items(self) -> list[Item]:
        """The items of the benchmark, read by the task's adapter; the classes of negative items
        (and every class of a `mixed` task) must be knowledge-base classes."""
        items = read_items(
            self.spec.format,
            self.spec.type,
            self.annotations_path,
            self.media_root,
            self.spec.options,
        )
        if self.type == "classification":
            for item in items:
                if item.negative or self.spec.kind == "mixed":
                    self._check_known(item)
        return items

    def _check_known(self, item: Item) -> None:
        label = self.gold(item)
        if label not in _knowledge_base():
            what = "a negative item" if item.negative else "an item of a mixed task"
            raise AnnotationError(
                f"{item.source}: {what} must name a knowledge-base class, and {label!r} is not "
                "one; map it with `label_map` (`behavior-agent kb list` shows the ids)"
            )

    def kind_of(self, item: Item) -> str:
        """The kind of detections that answer an item: the task's, or (mixed) its class's."""
        if self.spec.kind == "mixed" or item.negative:
            return str(_knowledge_base().get(self.gold(item)).kind)
        return str(self.spec.kind or "")

    def labels_for(self, item: Item) -> list[str]:
        """The labels an item is answered among: the scored labels of the item's kind."""
        if self.spec.kind != "mixed":
            return list(self.scored_labels)
        kind, kb = self.kind_of(item), _knowledge_base()
        return [label for label in self.scored_labels if label in kb and kb.get(label).kind == kind]

    def map_label(self, label: str) -> str:
        """The knowledge-base id of a dataset label (exact, then case-insensitive match)."""
        if label in self.label_map:
            return self.label_map[label]
        lowered = {k.lower(): v for k, v in self.label_map.items()}
        return lowered.get(label.lower(), label)

    def gold(self, item: Item) -> Any:
        """The gold answer: a KB label, a [start_s, end_s] span, or an option index."""
        if self.type == "classification":
            return self.map_label(item.label or "")
        if self.type == "grounding":
            return [item.start_s, item.end_s]
        return item.answer

    def labels(self, items: list[Item]) -> list[str]:
        """The classes scored: the task's `labels` or every mapped gold label of the positive
        items, sorted (a negative item's class is not an answer the task scores)."""
        if self.spec.labels:
            return list(self.spec.labels)
        return sorted({self.gold(item) for item in items if not item.negative})


def _knowledge_base():
    """The shipped knowledge base, for its ids, kinds and dataset label maps only: lookups
    that no setting changes (nothing here matches text), so default settings serve."""
    from agent.context import Context
    from agent.knowledge import load_knowledge_base

    return load_knowledge_base(Context())


def task_path(name_or_path: str | Path) -> Path:
    """A task file path; a bare name (`dfew`) means a task shipped with the package."""
    path = Path(name_or_path).expanduser()
    if path.exists() or path.suffix in {".yaml", ".yml"}:
        return path
    shipped = SHIPPED_TASKS / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in SHIPPED_TASKS.glob("*.yaml"))
    raise AnnotationError(f"{path}: no such task file; shipped tasks: {known}")


def load_task(path: str | Path, data_root: str | Path | None = None) -> Task:
    """Reads and checks a task file; relative paths in it are resolved against `data_root`
    when given (a benchmark's data folder), else against the folder of the YAML file."""
    path = task_path(path).absolute()
    spec, node = read_spec(path)
    base = Path(data_root).expanduser() if data_root else path.parent
    media_root = _resolve(base, spec.media_root)
    if not media_root.is_dir():
        raise AnnotationError.at(
            path,
            _line_of(node, ("media_root",)),
            f"media_root {media_root} is not a folder; point at the benchmark's data with "
            "`--data-root DIR` (or BEHAVIOR_AGENT_EVAL_DATA_ROOT) or fix `media_root`",
        )
    return Task(
        spec=spec,
        path=path,
        annotations_path=_annotations(base, path.parent, spec.annotations),
        media_root=media_root,
        label_map=_label_map(spec),
    )


def _annotations(base: Path, task_folder: Path, value: str) -> Path:
    """The annotations under the data root; a task that ships its own annotation file beside
    it (e.g. `shared_media`) finds it there when the data root has none."""
    under_base = _resolve(base, value)
    beside = _resolve(task_folder, value)
    if not under_base.exists() and beside.is_file():
        return beside
    return under_base


def read_spec(path: Path) -> tuple[TaskSpec, yaml.Node | None]:
    """The checked contents of a task file (paths not yet resolved) and its YAML node tree."""
    node, raw = _parse_yaml(path)
    try:
        return TaskSpec.model_validate(raw), node
    except ValidationError as error:
        first = error.errors()[0]
        loc = tuple(first["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        raise AnnotationError.at(path, _line_of(node, loc), f"{where}: {message}") from None


def _label_map(spec: TaskSpec) -> dict[str, str]:
    mapping: dict[str, str] = {}
    if spec.dataset:
        mapping.update(_knowledge_base().dataset_label_map(spec.dataset))
    mapping.update(spec.label_map)
    return mapping


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _parse_yaml(path: Path) -> tuple[yaml.Node | None, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise AnnotationError.at(path, None, f"cannot read the task file ({error})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        line = mark.line + 1 if mark else None
        raise AnnotationError.at(path, line, f"not valid YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise AnnotationError.at(path, 1, "a task file is a mapping (name: ..., type: ...)")
    return node, raw


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the key at `loc` in the composed YAML (the deepest that exists)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


__all__ = ["GENERIC_FORMATS", "METRICS", "Task", "TaskSpec", "load_task", "task_path"]
