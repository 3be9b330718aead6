"""KnowledgeBase: the loaded classes, with lookup, free-text matching and prompt text."""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path

import numpy as np

from agent.errors import ConfigError
from agent.knowledge.matching import (
    TextEmbedder,
    cached_vectors,
    class_phrases,
    first_sentence,
    lexical_scores,
    rank,
)
from agent.knowledge.schema import BehaviorClass, ClassMatch, UnknownClassError
from agent.state import Kind

# prompt_snippet() switches to one line per class above this many classes.
BRIEF_ABOVE = 12


class KnowledgeBase:
    """The loaded classes, with lookup, free-text matching and prompt rendering."""

    def __init__(
        self,
        classes: list[BehaviorClass],
        folder: Path | None = None,
        embedder: TextEmbedder | None = None,
        cache_folder: Path | None = None,
    ) -> None:
        self.folder = folder
        self._classes = {c.id: c for c in classes}
        # Embeds on the first match() that needs it (`load_knowledge_base` gives the settings'
        # lazy MiniLM; tests may inject a small double).
        self.embedder = embedder
        # Where the class vectors are cached (`<home>/cache`); None = not cached.
        self.cache_folder = cache_folder
        self._label_index: np.ndarray | None = None
        self._label_owner: list[str] = []
        self._owner_rows: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._classes)

    def content_hash(self) -> str:
        """Hash of every class's content: changes with any edit that changes what a file says
        (not with comments or layout), the same whether loaded from files or built in memory."""
        classes = [self._classes[i].model_dump(mode="json") for i in sorted(self._classes)]
        return hashlib.sha256(json.dumps(classes, sort_keys=True).encode()).hexdigest()[:16]

    def __contains__(self, class_id: object) -> bool:
        return class_id in self._classes

    def ids(self, kind: Kind | None = None) -> list[str]:
        """Class ids, sorted, optionally of one kind."""
        return sorted(c.id for c in self._classes.values() if kind is None or c.kind == kind)

    def by_kind(self, kind: Kind) -> list[BehaviorClass]:
        """Every class of one kind, sorted by id."""
        return [self._classes[i] for i in self.ids(kind)]

    def get(self, class_id: str) -> BehaviorClass:
        """The class `class_id`; raises UnknownClassError naming close ids."""
        if class_id in self._classes:
            return self._classes[class_id]
        # Spelling neighbours and synonym hits; no embedding model just for an error message.
        lexical = lexical_scores(self._classes.values(), class_id.replace("_", " "))
        close = sorted(lexical, key=lambda i: -lexical[i])[:3]
        close += difflib.get_close_matches(class_id, list(self._classes), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(dict.fromkeys(close))}?" if close else ""
        raise UnknownClassError(
            f"No class '{class_id}' in the knowledge base.{hint} "
            "`behavior-agent kb list` shows every id."
        )

    def dataset_label_map(self, dataset: str) -> dict[str, str]:
        """{label name in `dataset`: class id} from the classes' dataset_labels."""
        mapping = {}
        for item in self._classes.values():
            for label in item.dataset_labels.get(dataset, []):
                mapping[label] = item.id
        return mapping

    # -- matching ---------------------------------------------------------------------

    def _embedding_index(self) -> tuple[np.ndarray, list[str]]:
        """One weighted vector per (class, phrase), computed once per knowledge base."""
        if self._label_index is None:
            texts, owners, weights = class_phrases(self._classes.values())
            vectors = cached_vectors(
                texts, self._embedder(), self.content_hash(), self.cache_folder
            )
            self._label_index = vectors * np.asarray(weights, dtype=np.float32)[:, None]
            self._label_owner = owners
            # Per class, the rows of its phrases: found once, not on every match.
            rows = {cid: [i for i, o in enumerate(owners) if o == cid] for cid in self._classes}
            self._owner_rows = {cid: np.asarray(idx) for cid, idx in rows.items() if idx}
        return self._label_index, self._label_owner

    def _embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._embedder().embed(texts), dtype=np.float32)

    def _embedder(self) -> TextEmbedder:
        if self.embedder is None:
            raise ConfigError(
                "This knowledge base has no sentence embedder to match with; load it with "
                "load_knowledge_base(ctx), or pass embedder= to KnowledgeBase."
            )
        return self.embedder

    def _embedding_scores(
        self, texts: list[str], embedded: np.ndarray | None = None
    ) -> list[dict[str, float]]:
        """Per text: {class id: best cosine similarity over the class's name and synonyms}."""
        vectors, _ = self._embedding_index()
        queries = self._embed(texts) if embedded is None else np.asarray(embedded, np.float32)
        similarities = queries @ vectors.T
        return [
            {cid: float(row[idx].max()) for cid, idx in self._owner_rows.items()}
            for row in similarities
        ]

    def match(
        self,
        text: str,
        k: int = 5,
        kinds: list[Kind] | tuple[Kind, ...] | None = None,
        vector: np.ndarray | None = None,
    ) -> list[ClassMatch]:
        """The `k` classes `text` most likely refers to, best first (score in [0, 1]).

        A synonym (or the class name, id or a dataset label) found in the text scores about
        0.7-1.0, more when it covers more of the text; otherwise the score is the best cosine
        similarity between the text and the class's name or synonyms (MiniLM), so paraphrases
        such as "keeps rubbing her scalp" still find head_scratch. `vector` is the text's
        embedding by this knowledge base's embedder, when the caller already has it.
        """
        if vector is None or not text.strip():
            return self.match_many([text], k=k, kinds=kinds)[0]
        semantic = self._embedding_scores([text], np.reshape(vector, (1, -1)))[0]
        return rank(self._classes.values(), text, semantic, k, kinds)

    def match_many(
        self, texts: list[str], k: int = 5, kinds: list[Kind] | tuple[Kind, ...] | None = None
    ) -> list[list[ClassMatch]]:
        """`match` for many texts at once (one embedding batch); empty texts match nothing."""
        wanted = [t for t in texts if t.strip()]
        semantic = dict(zip(wanted, self._embedding_scores(wanted), strict=True)) if wanted else {}
        classes = self._classes.values()
        return [rank(classes, t, semantic[t], k, kinds) if t.strip() else [] for t in texts]

    # -- prompts ----------------------------------------------------------------------

    def prompt_snippet(
        self, ids: list[str] | None = None, max_cues: int = 3, brief: bool | None = None
    ) -> str:
        """Class descriptions for a VLM prompt, one block per class (default: every class).

        Full blocks give the definition, the action units and cues, and how to tell the class
        from each confusable one. Brief blocks (one line: id, first definition sentence, core
        AUs or first cue) keep prompts short; `brief=None` picks them above BRIEF_ABOVE classes.
        """
        chosen = [self.get(i) for i in (ids if ids is not None else self.ids())]
        if brief is None:
            brief = len(chosen) > BRIEF_ABOVE
        if brief:
            return "\n".join(_render_brief(item) for item in chosen)
        return "\n".join(_render(item, max_cues, self) for item in chosen)


def _render(item: BehaviorClass, max_cues: int, kb: KnowledgeBase) -> str:
    lines = [f"- {item.id} ({item.kind}): {' '.join(item.definition.split())}"]
    cues = ([item.au_text()] if item.action_units else []) + item.cues[:max_cues]
    lines.append("  Cues: " + "; ".join(c.strip().rstrip(".") for c in cues if c) + ".")
    for confusion in item.confusions:
        if confusion.id in kb:
            lines.append(f"  vs {confusion.id}: {' '.join(confusion.how_to_tell.split())}")
    return "\n".join(lines)


def _render_brief(item: BehaviorClass) -> str:
    cue = item.au_text() or first_sentence(item.cues[0]).rstrip(".")
    return f"- {item.id} ({item.kind}): {first_sentence(item.definition)} Cues: {cue}."
