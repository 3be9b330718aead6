"""What the offline perception backend can check, class by class, without loading any model.

A class is checkable when its knowledge-base `perception` names a rule, the learned model that
rule reads is installed (or the rule has a landmark fallback), and its calibration has not
switched it off for poor measured precision. Answers use this to say "cannot recognise X"
instead of guessing, and reports list the classes that were not checkable. Only files are
read here (the knowledge base, models.yaml, provenance.json, calibration.yaml), so an answer
on an indexed video loads no perception model or library (`agent.perception` imports lazily).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

from agent.context import Context
from agent.provenance import has_model_file, installed_model_records

# The learned model (models.yaml `task`) each detector reads; without it the class is not
# checkable, unless the detector has a landmark fallback.
REQUIRES: dict[str, str] = {"expression_model": "expression", "object_interaction": "objects"}
# The landmark rule a detector falls back to when its learned model is not installed (or
# Context.learned_models is off): the class's own parameters drive it.
FALLBACK: dict[str, str] = {"expression_model": "au_prototype"}

Status = Literal["learned", "rule", "fallback", "off", "none"]


@dataclass(frozen=True)
class Capability:
    """Whether and how one class is checked offline, and why not when it is not."""

    class_id: str
    status: Status
    rule: str | None
    reason: str

    @property
    def checkable(self) -> bool:
        return self.status in ("learned", "rule", "fallback")


def installed_tasks(ctx: Context) -> set[str]:
    """Learned-model tasks ("expression", "objects") with an installed model."""
    if not ctx.learned_models:
        return set()
    tasks = set()
    for folder, record in installed_model_records(Path(ctx.models_dir)):
        if record and record.get("task") and has_model_file(folder, record):
            tasks.add(record["task"])
    return tasks


@cache
def calibration() -> dict:
    """Per-class calibration (`perception/calibration.yaml`): reliability maps and switches."""
    path = Path(__file__).with_name("calibration.yaml")
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def capability(item, ctx: Context, tasks: set[str] | None = None) -> Capability:
    """How the perception backend handles one knowledge-base class with these settings."""
    tasks = installed_tasks(ctx) if tasks is None else tasks
    if item.perception is None:
        return Capability(item.id, "none", None, "no offline rule can observe it")
    rule = item.perception.detector
    needed = REQUIRES.get(rule)
    status: Status = "learned" if needed else "rule"
    if needed and needed not in tasks:
        if rule not in FALLBACK:
            return Capability(
                item.id,
                "none",
                rule,
                f"it needs the learned {needed} model, which is not installed "
                "(run `behavior-agent models install`)",
            )
        rule, status = FALLBACK[rule], "fallback"
    switched = calibration().get("classes", {}).get(item.id, {})
    # Raw mode (calibrate_confidence off) runs every rule: it is how the calibration is fitted.
    if switched.get("enabled") is False and ctx.calibrate_confidence:
        return Capability(item.id, "off", rule, switched.get("reason", "switched off"))
    return Capability(item.id, status, rule, "")


def capabilities(kb, ctx: Context) -> dict[str, Capability]:
    """`capability` of every class of the knowledge base."""
    tasks = installed_tasks(ctx)
    return {class_id: capability(kb.get(class_id), ctx, tasks) for class_id in kb.ids()}
