"""Knowledge base: behavior-class schema, loading and validation, text matching, prompt text.

`schema` holds the records and their checks, `loading` reads and validates the YAML folder
(`knowledge/` at the top level of a checkout, `agent/_data/knowledge` in a wheel: see
`agent.resources`), `matching` scores free text against classes, and `base` is the loaded
`KnowledgeBase` with lookup, matching and prompt snippets.
"""

from agent.knowledge.base import BRIEF_ABOVE, KnowledgeBase
from agent.knowledge.loading import (
    default_folder,
    load_knowledge_base,
    missing_required,
    validate_folder,
)
from agent.knowledge.matching import DESCRIPTION_WEIGHT, TextEmbedder
from agent.knowledge.schema import (
    FACS_AU_NAMES,
    ID_PATTERN,
    KINDS,
    REQUIRED_IDS,
    ActionUnit,
    BehaviorClass,
    ClassMatch,
    Confusion,
    KnowledgeBaseError,
    Perception,
    Temporal,
    UnknownClassError,
)

__all__ = [
    "BRIEF_ABOVE",
    "DESCRIPTION_WEIGHT",
    "FACS_AU_NAMES",
    "ID_PATTERN",
    "KINDS",
    "REQUIRED_IDS",
    "ActionUnit",
    "BehaviorClass",
    "ClassMatch",
    "Confusion",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "Perception",
    "Temporal",
    "TextEmbedder",
    "UnknownClassError",
    "default_folder",
    "load_knowledge_base",
    "missing_required",
    "validate_folder",
]
