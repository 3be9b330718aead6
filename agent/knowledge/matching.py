"""Matching free text to knowledge-base classes: synonym hits first, then MiniLM similarity.

The functions here read classes and score texts; `KnowledgeBase.match` (agent.knowledge.base)
holds the embedder and the class vectors, which are cached on disk per knowledge base.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from agent.knowledge.schema import BehaviorClass, ClassMatch
from agent.state import Kind

log = logging.getLogger(__name__)

# Discount on similarity to a class's definition / first cue relative to its synonyms.
DESCRIPTION_WEIGHT = 0.9

# Words that carry no class meaning; dropped so "scratching his head" matches "scratching head".
_STOPWORD_TEXT = (
    "a an the his her their its my your our he she they it him them i you we is are was were be "
    "been being am this that these those someone somebody person man woman people guy girl boy "
    "lady kid child patient subject who whom which what when where why how of to at in on with "
    "and or while just very really seems seem appears appear does do did doing has have had "
    "kind sort bit quite some little ever any"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Idioms whose words would otherwise hit a synonym ("at what point" is not pointing).
_IDIOMS = re.compile(
    r"\b(?:at (?:what|which|this|that|some|any) point|point in time|to the point|"
    r"(?:looks?|looking|seems?|feels?|sounds?) like|would like|i like)\b"
)


def _stem(token: str) -> str:
    """A crude, consistent stem: 'scratching'/'scratches'/'scratched' -> 'scratch'."""
    for suffix in ("ing", "ied", "ies", "ed", "es", "s", "e"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            token = token[: -len(suffix)] + ("y" if suffix in ("ied", "ies") else "")
            break
    if len(token) >= 4 and token[-1] == token[-2] and token[-1] not in "lsz":
        token = token[:-1]  # nodd -> nod, clapp -> clap
    return token


@functools.lru_cache(maxsize=8192)
def _tokens(text: str) -> tuple[str, ...]:
    """Stemmed content words; cached, since every query is checked against every class's name
    and synonyms (most of a search's time in matching before this cache)."""
    words = re.findall(r"[a-z0-9]+", _IDIOMS.sub(" ", text.lower().replace("'", "")))
    return tuple(_stem(w) for w in words if w not in _STOPWORDS)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    if n == 0 or needle[0] not in haystack:  # the common case, answered without slicing
        return False
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


class TextEmbedder(Protocol):
    """What matching needs from a sentence embedder (agent.embed.SentenceEmbedder fits)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def first_sentence(text: str) -> str:
    """The text's first sentence, whitespace collapsed."""
    flat = " ".join(text.split())
    return re.split(r"(?<=\.)\s", flat, maxsplit=1)[0]


def lexical_scores(classes: Iterable[BehaviorClass], text: str) -> dict[str, float]:
    """Synonym and dataset-label hits: 1.0 for the whole text, 0.75-1.0 for a phrase in it."""
    tokens = _tokens(text)
    flat = text.strip().lower()
    scores: dict[str, float] = {}
    for item in classes:
        best = 0.0
        labels = [x.lower() for names in item.dataset_labels.values() for x in names]
        if flat in labels or flat == item.id.replace("_", " "):
            best = 1.0
        for phrase in [item.name, *item.synonyms]:
            needle = _tokens(phrase)
            if _contains(tokens, needle):
                best = max(best, 0.75 + 0.25 * len(needle) / max(len(tokens), 1))
        if best:
            scores[item.id] = best
    return scores


def class_phrases(classes: Iterable[BehaviorClass]) -> tuple[list[str], list[str], list[float]]:
    """(phrases, owning class ids, weights): what a class is matched against by embedding.

    Phrases are the name and synonyms, plus - slightly discounted, since they are longer and
    less specific - the first sentence of the definition and the first cue, which catch
    descriptive paraphrases ("forms a ring with thumb and index finger").
    """
    texts, owners, weights = [], [], []
    for item in classes:
        for phrase in dict.fromkeys([item.name, *item.synonyms]):
            texts.append(phrase)
            owners.append(item.id)
            weights.append(1.0)
        for sentence in (first_sentence(item.definition), first_sentence(item.cues[0])):
            texts.append(sentence)
            owners.append(item.id)
            weights.append(DESCRIPTION_WEIGHT)
    return texts, owners, weights


def rank(
    classes: Iterable[BehaviorClass],
    text: str,
    semantic: dict[str, float],
    k: int,
    kinds: Sequence[Kind] | None,
) -> list[ClassMatch]:
    """The `k` best classes for `text`, given its best similarity to each class (`semantic`)."""
    classes = list(classes)
    lexical = lexical_scores(classes, text)
    results = []
    for item in classes:
        if kinds and item.kind not in kinds:
            continue
        similarity = max(semantic.get(item.id, 0.0), 0.0)
        hit = lexical.get(item.id)
        # A synonym hit dominates; the embedding still orders hits of equal coverage.
        score = max(0.9 * hit + 0.1 * similarity, similarity) if hit else similarity
        results.append(ClassMatch(item.id, item.kind, round(min(score, 1.0), 4)))
    results.sort(key=lambda m: (-m.score, m.id))
    return results[:k]


def cached_vectors(
    texts: list[str], embedder: TextEmbedder, content: str, folder: Path | None
) -> np.ndarray:
    """Vectors of the class phrases, cached on disk in `folder` (`<home>/cache/`; None = not).

    Embedding ~750 phrases takes seconds on a busy CPU, and every process (each CLI call)
    would pay it again. The file is keyed by the embedder's name and version and by `content`,
    the knowledge base's content hash; the phrase list is hashed in too, so a change in how
    phrases are drawn from the classes invalidates it as well. A damaged file is rebuilt.
    """

    def embed(batch: list[str]) -> np.ndarray:
        return np.asarray(embedder.embed(batch), dtype=np.float32)

    model = getattr(embedder, "version", None)  # only versioned models are cached
    if not isinstance(model, str) or folder is None:
        return embed(texts)
    identity = [str(getattr(embedder, "name", "")), model, content, *texts]
    key = hashlib.sha256("\n".join(identity).encode("utf-8")).hexdigest()[:24]
    path = folder / f"kb_vectors_{key}.npy"
    if key in _PROCESS_VECTORS:
        if not path.is_file():
            _save(path, _PROCESS_VECTORS[key])  # this home's next process reads it
        return _PROCESS_VECTORS[key]
    if path.is_file():
        try:
            vectors = np.load(path)
            if vectors.ndim == 2 and vectors.shape[0] == len(texts):
                _PROCESS_VECTORS[key] = vectors.astype(np.float32, copy=False)
                return _PROCESS_VECTORS[key]
            log.warning("%s has the wrong shape %s; rebuilding it", path, vectors.shape)
        except (OSError, ValueError, EOFError) as error:
            log.warning("cannot read %s (%s); rebuilding it", path, error)
    vectors = embed(texts)
    _PROCESS_VECTORS[key] = vectors
    _save(path, vectors)
    return vectors


# The vectors embedded or read in this process, by cache key: a second library home opened in
# the same process (a test run, a server with several homes) gets them without embedding again.
_PROCESS_VECTORS: dict[str, np.ndarray] = {}


def _save(path: Path, vectors: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(temporary, vectors)
        temporary.replace(path)
    except OSError:
        pass  # a read-only home only costs speed
