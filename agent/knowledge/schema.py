"""Knowledge base: behavior-class schema, loading and validation, text matching, prompt text."""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.errors import BehaviorAgentError
from agent.state import Kind

log = logging.getLogger(__name__)

KINDS: tuple[Kind, ...] = ("emotion", "gesture", "action")
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

# The classes the shipped knowledge base must cover (issue 3; DFEW/FERV39k, MAFW, RAVDESS,
# HaGRID-style hand signs, conversational gestures, daily-living actions).
REQUIRED_IDS: dict[Kind, tuple[str, ...]] = {
    "emotion": (
        "neutral", "happy", "sad", "angry", "fear", "disgust", "surprise", "contempt",
        "anxiety", "helplessness", "disappointment", "calm",
    ),
    "gesture": (
        "thumbs_up", "thumbs_down", "victory", "ok_sign", "open_palm", "stop_sign", "fist",
        "pointing", "index_up", "call_sign", "shush", "wave", "hand_raise", "nod", "head_shake",
        "shrug", "arms_crossed", "face_touch", "head_scratch", "hand_over_mouth", "clapping",
        "fidgeting", "gaze_aversion",
    ),
    "action": (
        "walk", "run", "sit_down", "stand_up", "lie_down", "fall", "drink", "eat", "use_phone",
        "read", "write", "type", "talk", "cook", "clean", "take_medication", "exercise",
        "play_instrument", "apply_makeup", "hug", "shake_hands",
    ),
}  # fmt: skip

# FACS action unit names (Ekman, Friesen & Hager 2002), used to catch mislabelled AUs.
FACS_AU_NAMES: dict[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    11: "nasolabial deepener",
    12: "lip corner puller",
    13: "sharp lip puller",
    14: "dimpler",
    15: "lip corner depressor",
    16: "lower lip depressor",
    17: "chin raiser",
    18: "lip pucker",
    20: "lip stretcher",
    22: "lip funneler",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
    27: "mouth stretch",
    28: "lip suck",
    41: "lid droop",
    43: "eyes closed",
    45: "blink",
    51: "head turn left",
    52: "head turn right",
    53: "head up",
    54: "head down",
    55: "head tilt left",
    56: "head tilt right",
    57: "head forward",
    58: "head back",
    61: "eyes turn left",
    62: "eyes turn right",
    63: "eyes up",
    64: "eyes down",
}

# prompt_snippet() switches to one line per class above this many classes.
BRIEF_ABOVE = 12
# Discount on similarity to a class's definition / first cue relative to its synonyms.
DESCRIPTION_WEIGHT = 0.9

ParamValue = bool | int | float | str | list[Any] | dict[str, Any]


class KnowledgeBaseError(BehaviorAgentError):
    """One or more knowledge-base files are malformed; `problems` lists each precisely."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = f"{len(problems)} problem(s) in the knowledge base:" if len(problems) > 1 else ""
        super().__init__("\n".join([head, *problems]).strip())


class UnknownClassError(BehaviorAgentError):
    """An id that no class in the knowledge base has."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionUnit(_Strict):
    """One FACS action unit of an emotion prototype."""

    au: int = Field(ge=1, le=99, description="FACS action unit number (AU12 -> 12).")
    name: str = Field(description="FACS name, e.g. 'lip corner puller'.")
    role: Literal["core", "common"] = Field(
        "core", description="core: part of the prototype; common: often present, not required."
    )

    @model_validator(mode="after")
    def _name_matches_number(self) -> ActionUnit:
        expected = FACS_AU_NAMES.get(self.au)
        if expected and self.name.strip().lower() != expected:
            raise ValueError(f"AU{self.au} is '{expected}' in FACS, not '{self.name}'")
        return self


class Temporal(_Strict):
    """How long the behavior typically lasts and how it unfolds."""

    min_s: float = Field(ge=0, description="Shortest typical duration in seconds.")
    max_s: float | None = Field(
        None, ge=0, description="Longest typical duration in seconds; null = open-ended state."
    )
    pattern: str = Field(min_length=10, description="Onset / apex / offset pattern in words.")

    @model_validator(mode="after")
    def _ordered(self) -> Temporal:
        if self.max_s is not None and self.max_s < self.min_s:
            raise ValueError(f"max_s ({self.max_s}) is below min_s ({self.min_s})")
        return self


class Confusion(_Strict):
    """A class this one is easily mistaken for, and how to tell the two apart."""

    id: str
    how_to_tell: str = Field(min_length=10)


class Perception(_Strict):
    """What the offline landmark backend checks; `detector` names a rule in agent/perception/."""

    detector: str = Field(min_length=1)
    landmarks: list[str] = Field(min_length=1)
    movement: str = Field(min_length=1)
    params: dict[str, ParamValue] = Field(default_factory=dict)


class BehaviorClass(_Strict):
    """One emotion, gesture or action, as the agent, the prompts and the reports know it."""

    id: str
    kind: Kind
    name: str = Field(min_length=1)
    synonyms: list[str] = Field(min_length=1)
    definition: str = Field(min_length=20)
    cues: list[str] = Field(min_length=1)
    action_units: list[ActionUnit] = Field(default_factory=list)
    temporal: Temporal
    confusions: list[Confusion] = Field(default_factory=list)
    perception: Perception | None
    sources: list[str] = Field(min_length=1)
    # Label names of this class in public datasets ({"HaGRID": ["like"]}); exact-match only.
    dataset_labels: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(f"'{value}' is not snake_case (lower-case letters, digits, '_')")
        return value

    def consistency_problems(self) -> list[tuple[str, str]]:
        """(field, problem) pairs that the field types alone cannot express."""
        problems = []
        if self.action_units and self.kind != "emotion":
            problems.append(("action_units", "only emotions have FACS action units; remove it"))
        seen: set[str] = set()
        for index, confusion in enumerate(self.confusions):
            if confusion.id == self.id:
                problems.append(
                    (f"confusions[{index}].id", "a class cannot be confused with itself")
                )
            elif confusion.id in seen:
                problems.append(
                    (
                        f"confusions[{index}].id",
                        f"'{confusion.id}' is listed twice; merge the entries",
                    )
                )
            seen.add(confusion.id)
        return problems

    def au_text(self) -> str:
        """'AU6 cheek raiser + AU12 lip corner puller' (core units only)."""
        return " + ".join(f"AU{a.au} {a.name}" for a in self.action_units if a.role == "core")


@dataclass(frozen=True)
class ClassMatch:
    """A class that a piece of text refers to, with a score in [0, 1]."""

    id: str
    kind: Kind
    score: float


# --- loading and validation -------------------------------------------------------------


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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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


# --- text matching ----------------------------------------------------------------------

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


def _tokens(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", _IDIOMS.sub(" ", text.lower().replace("'", "")))
    return [_stem(w) for w in words if w not in _STOPWORDS]


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


class TextEmbedder(Protocol):
    """What matching needs from a sentence embedder (agent.embed.SentenceEmbedder fits)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def default_embedder() -> TextEmbedder:
    """The process-wide MiniLM embedder of agent.embed (the model the clip index uses)."""
    from agent.context import Context
    from agent.embed import load_text_embedder

    return load_text_embedder(Context.from_env())


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    return re.split(r"(?<=\.)\s", flat, maxsplit=1)[0]


def _cached_vectors(texts: list[str], embedder: TextEmbedder, content: str) -> np.ndarray:
    """Vectors of the class phrases, cached on disk under `<home>/cache/`.

    Embedding ~750 phrases takes seconds on a busy CPU, and every process (each CLI call)
    would pay it again. The file is keyed by the embedder's name and version and by `content`,
    the knowledge base's content hash; the phrase list is hashed in too, so a change in how
    phrases are drawn from the classes invalidates it as well. A damaged file is rebuilt.
    """

    def embed(batch: list[str]) -> np.ndarray:
        return np.asarray(embedder.embed(batch), dtype=np.float32)

    model = getattr(embedder, "version", None)  # only versioned models are cached
    folder = _cache_folder()
    if not isinstance(model, str) or folder is None:
        return embed(texts)
    identity = [str(getattr(embedder, "name", "")), model, content, *texts]
    key = hashlib.sha256("\n".join(identity).encode("utf-8")).hexdigest()[:24]
    path = folder / f"kb_vectors_{key}.npy"
    if path.is_file():
        try:
            vectors = np.load(path)
            if vectors.ndim == 2 and vectors.shape[0] == len(texts):
                return vectors.astype(np.float32, copy=False)
            log.warning("%s has the wrong shape %s; rebuilding it", path, vectors.shape)
        except (OSError, ValueError, EOFError) as error:
            log.warning("cannot read %s (%s); rebuilding it", path, error)
    vectors = embed(texts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(temporary, vectors)
        temporary.replace(path)
    except OSError:
        pass  # a read-only home only costs speed
    return vectors


def _cache_folder() -> Path | None:
    try:
        from agent.context import Context

        return Context.from_env().home / "cache"
    except BehaviorAgentError:
        return None


class KnowledgeBase:
    """The loaded classes, with lookup, free-text matching and prompt rendering."""

    def __init__(
        self,
        classes: list[BehaviorClass],
        folder: Path | None = None,
        embedder: TextEmbedder | None = None,
    ) -> None:
        self.folder = folder
        self._classes = {c.id: c for c in classes}
        # Loaded on the first match() that needs it; tests may inject a small double.
        self.embedder = embedder
        self._label_index: np.ndarray | None = None
        self._label_owner: list[str] = []

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
        lexical = self._lexical_scores(class_id.replace("_", " "))
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

    def _lexical_scores(self, text: str) -> dict[str, float]:
        """Synonym and dataset-label hits: 1.0 for the whole text, 0.75-1.0 for a phrase in it."""
        tokens = _tokens(text)
        flat = text.strip().lower()
        scores: dict[str, float] = {}
        for item in self._classes.values():
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

    def _embedding_index(self) -> tuple[np.ndarray, list[str]]:
        """One weighted vector per (class, phrase), computed once per knowledge base.

        Phrases are the name and synonyms, plus - slightly discounted, since they are longer
        and less specific - the first sentence of the definition and the first cue, which
        catch descriptive paraphrases ("forms a ring with thumb and index finger").
        """
        if self._label_index is None:
            texts, owners, weights = [], [], []
            for item in self._classes.values():
                for phrase in dict.fromkeys([item.name, *item.synonyms]):
                    texts.append(phrase)
                    owners.append(item.id)
                    weights.append(1.0)
                for sentence in (_first_sentence(item.definition), _first_sentence(item.cues[0])):
                    texts.append(sentence)
                    owners.append(item.id)
                    weights.append(DESCRIPTION_WEIGHT)
            if self.embedder is None:
                self.embedder = default_embedder()
            vectors = _cached_vectors(texts, self.embedder, self.content_hash())
            self._label_index = vectors * np.asarray(weights, dtype=np.float32)[:, None]
            self._label_owner = owners
        return self._label_index, self._label_owner

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self.embedder is None:
            self.embedder = default_embedder()
        return np.asarray(self.embedder.embed(texts), dtype=np.float32)

    def _embedding_scores(self, texts: list[str]) -> list[dict[str, float]]:
        """Per text: {class id: best cosine similarity over the class's name and synonyms}."""
        vectors, owners = self._embedding_index()
        similarities = self._embed(texts) @ vectors.T
        owner_index = {cid: [i for i, o in enumerate(owners) if o == cid] for cid in self._classes}
        return [
            {cid: float(row[idx].max()) for cid, idx in owner_index.items() if idx}
            for row in similarities
        ]

    def match(
        self, text: str, k: int = 5, kinds: list[Kind] | tuple[Kind, ...] | None = None
    ) -> list[ClassMatch]:
        """The `k` classes `text` most likely refers to, best first (score in [0, 1]).

        A synonym (or the class name, id or a dataset label) found in the text scores about
        0.7-1.0, more when it covers more of the text; otherwise the score is the best cosine
        similarity between the text and the class's name or synonyms (MiniLM), so paraphrases
        such as "keeps rubbing her scalp" still find head_scratch.
        """
        return self.match_many([text], k=k, kinds=kinds)[0]

    def match_many(
        self, texts: list[str], k: int = 5, kinds: list[Kind] | tuple[Kind, ...] | None = None
    ) -> list[list[ClassMatch]]:
        """`match` for many texts at once (one embedding batch); empty texts match nothing."""
        wanted = [t for t in texts if t.strip()]
        semantic = dict(zip(wanted, self._embedding_scores(wanted), strict=True)) if wanted else {}
        return [self._rank(t, semantic[t], k, kinds) if t.strip() else [] for t in texts]

    def _rank(
        self, text: str, semantic: dict[str, float], k: int, kinds: Sequence[Kind] | None
    ) -> list[ClassMatch]:
        lexical = self._lexical_scores(text)
        results = []
        for item in self._classes.values():
            if kinds and item.kind not in kinds:
                continue
            similarity = max(semantic.get(item.id, 0.0), 0.0)
            hit = lexical.get(item.id)
            # A synonym hit dominates; the embedding still orders hits of equal coverage.
            score = max(0.9 * hit + 0.1 * similarity, similarity) if hit else similarity
            results.append(ClassMatch(item.id, item.kind, round(min(score, 1.0), 4)))
        results.sort(key=lambda m: (-m.score, m.id))
        return results[:k]

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
    cue = item.au_text() or _first_sentence(item.cues[0]).rstrip(".")
    return f"- {item.id} ({item.kind}): {_first_sentence(item.definition)} Cues: {cue}."
