"""What the knowledge base says about a report's labels: names, ids, appendix entries, and the
classes the active backend cannot check."""

import logging
from typing import Any

from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.events import label_key
from agent.report.model import KINDS, KnowledgeEntry, ReportEvent, UncheckedClass

log = logging.getLogger(__name__)


def not_checkable(kb: Any, ctx: Context, vlm: Any = None) -> list[UncheckedClass]:
    """Every class the offline rules cannot check (`agent.perception.capabilities`), by kind.

    With a VLM loaded, such a class can still appear in the report, but only where the model's
    clip descriptions name it; the reason says so.
    """
    from agent.perception.capabilities import capability, installed_tasks

    if kb is None or not hasattr(kb, "ids"):
        return []
    tasks = installed_tasks(ctx)
    unchecked = []
    for class_id in kb.ids():
        item = kb.get(class_id)
        if not hasattr(item, "perception"):
            continue  # a knowledge base without perception specs says nothing either way
        found = capability(item, ctx, tasks)
        if found.checkable:
            continue
        reason = found.reason
        if vlm is not None:
            reason += "; only the vision-language model's clip descriptions can report it"
        unchecked.append(
            UncheckedClass(
                id=class_id, kind=str(item.kind), name=item.name, status=found.status, reason=reason
            )
        )
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(unchecked, key=lambda u: (order.get(u.kind, len(order)), u.id))


def default_kb() -> Any:
    try:
        from agent.knowledge import load_knowledge_base
    except ImportError:
        log.warning("agent.knowledge is not available; the report has no class definitions")
        return None
    return load_knowledge_base()


def _lookup(kb: Any, label: str) -> Any:
    """The knowledge-base class of a label (as given, or as a snake_case id), else None."""
    if kb is None:
        return None
    for candidate in dict.fromkeys([label, label_key(label)]):
        if candidate not in kb:
            continue
        try:
            return kb.get(candidate)
        except (KeyError, BehaviorAgentError):
            continue
    return None


def label_kb_id(kb: Any, label: str) -> str:
    found = _lookup(kb, label)
    return found.id if found is not None else f"label-{label_key(label) or 'unlabelled'}"


def class_name(kb: Any, label: str) -> str:
    found = _lookup(kb, label)
    return getattr(found, "name", None) or label.replace("_", " ")


def knowledge_entries(kb: Any, events: list[ReportEvent]) -> dict[str, KnowledgeEntry]:
    """Appendix entries for every label in the report (an entry even where the KB has none)."""
    entries: dict[str, KnowledgeEntry] = {}
    for event in events:
        if event.kb_id in entries:
            continue
        found = _lookup(kb, event.label)
        entries[event.kb_id] = _entry(found) if found is not None else _missing_entry(kb, event)
    return dict(sorted(entries.items(), key=lambda item: (item[1].kind, item[0])))


def _entry(found: Any) -> KnowledgeEntry:
    return KnowledgeEntry(
        id=found.id,
        kind=str(found.kind),
        name=found.name,
        definition=_text(getattr(found, "definition", "")),
        cues=_texts(getattr(found, "cues", [])),
        action_units=found.au_text() if getattr(found, "action_units", None) else "",
        temporal=_temporal(getattr(found, "temporal", None)),
        confusions=[
            {"id": _field(c, "id"), "how_to_tell": _text(_field(c, "how_to_tell"))}
            for c in getattr(found, "confusions", []) or []
        ],
        sources=_texts(getattr(found, "sources", [])),
    )


def _missing_entry(kb: Any, event: ReportEvent) -> KnowledgeEntry:
    closest: list[str] = []
    if kb is not None and hasattr(kb, "match"):
        try:
            closest = [m.id for m in kb.match(event.label.replace("_", " "), k=3)]
        except Exception as error:  # matching is a courtesy here, never a failure
            log.warning("knowledge-base match for %r failed: %s", event.label, error)
    return KnowledgeEntry(
        id=event.kb_id,
        kind=event.kind,
        name=event.name,
        definition="This label has no curated entry in the knowledge base.",
        in_knowledge_base=False,
        closest=closest,
    )


def _temporal(temporal: Any) -> str:
    """'Quick raise …, held … (typically 0.5–3.0 s)' from the class's temporal profile."""
    if temporal is None or isinstance(temporal, str):
        return temporal or ""
    pattern = _text(getattr(temporal, "pattern", "")) or _text(temporal)
    min_s, max_s = getattr(temporal, "min_s", None), getattr(temporal, "max_s", None)
    if min_s is None:
        return pattern
    typical = f"{min_s:g}–{max_s:g} s" if max_s is not None else f"at least {min_s:g} s"
    return f"{pattern} (typically {typical})"


def _field(item: Any, name: str) -> Any:
    return item.get(name, "") if isinstance(item, dict) else getattr(item, name, "")


def _text(value: Any) -> str:
    """Knowledge-base fields as plain text (a dict or a model reads `key: value; ...`)."""
    if value is None:
        return ""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, "", []))
    if isinstance(value, list | tuple):
        return "; ".join(_text(v) for v in value)
    return str(value).strip()


def _texts(values: Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str | dict) or hasattr(values, "model_dump"):
        values = [values]
    return [t for t in (_text(v) for v in values) if t]
