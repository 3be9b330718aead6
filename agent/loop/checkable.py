"""Which of the behaviors a question asks about the active backend can check, and why not.

The offline perception backend checks a class only where `agent.perception.capabilities` says
it can (a rule, its learned model installed, not switched off by calibration); a phrase that
matches no knowledge-base class well is not checkable by any rule. A VLM looks at the clips
itself, so with one loaded every asked behavior is checkable. Only files are read (no
perception model or library loads).
"""

from typing import Any

from agent.context import Context
from agent.perception.capabilities import capability
from agent.planning import Plan
from agent.state import AskedClass


def asked_classes(the_plan: Plan, kb: Any, ctx: Context, vlm: Any | None) -> list[AskedClass]:
    """One record per target of the plan, and one for an asked phrase that names no class."""
    asked = [_target(class_id, the_plan, kb, ctx, vlm) for class_id in the_plan.targets]
    unmatched = the_plan.unmatched()
    if unmatched is not None and not the_plan.targets:
        closest = f"closest: {_name(kb, unmatched.closest)}, match {unmatched.score:.2f}"
        asked.append(
            AskedClass(
                id=None,
                name=unmatched.phrase,
                phrase=unmatched.phrase,
                match_score=unmatched.score,
                closest=unmatched.closest,
                checkable=vlm is not None,
                reason=""
                if vlm is not None
                else (
                    "no knowledge-base class matches it well"
                    + (f" ({closest})" if unmatched.closest else "")
                ),
            )
        )
    return asked


def _target(class_id: str, the_plan: Plan, kb: Any, ctx: Context, vlm: Any | None) -> AskedClass:
    match = the_plan.match_of(class_id)
    try:
        item = kb.get(class_id)
    except Exception:  # a label seen before (a follow-up's focus) that the KB does not have
        return AskedClass(id=class_id, name=class_id.replace("_", " "), closest=class_id)
    if vlm is not None:
        checkable, reason = True, ""
    else:
        found = capability(item, ctx)
        checkable, reason = found.checkable, found.reason
    return AskedClass(
        id=class_id,
        name=item.name,
        phrase=match.phrase if match else "",
        match_score=match.score if match else None,
        weak=bool(match and match.weak),
        closest=class_id,
        checkable=checkable,
        reason=reason,
    )


def _name(kb: Any, class_id: str | None) -> str:
    if class_id is None:
        return ""
    try:
        return kb.get(class_id).name.lower()
    except Exception:  # a class id the knowledge base lacks names itself
        return class_id.replace("_", " ")
