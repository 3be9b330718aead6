"""Hybrid search: a query read through the knowledge base, moments ranked by the detections
of the classes it names and by similarity to one-thing texts, fused by reciprocal rank.

The one retriever of `behavior-agent search`, the agent's retrieve node and the web app.
Rankings, each over moments (agent.index.moments) or clips in the searched scope:

- classes: moments of the classes the query names (`KnowledgeBase.match` at or above
  CLASS_MATCH_FLOOR), by match score x calibrated confidence x coverage;
- texts: moments whose one-thing text ("Happiness (happy, smiling) facial expression",
  "cup in view"; agent.indexing.texts.thing_texts) is similar to the query;
- captions: captioned clips (VLM backend) whose caption, embedded alone, is similar;
- visual: clips whose key-frame vector (CLIP/SigLIP) is near the query's text vector, when a
  visual model is configured and the library holds its vectors.

Reciprocal rank fusion (score = sum of 1 / (RRF_K + rank)) needs no per-query weights. What may
answer is decided before fusion: when the query names classes, only their moments (and
captions that say so); otherwise a text or caption at or above TEXT_MATCH_FLOOR. The visual
ranking only reorders those: its similarity scale depends on the checkpoint a user points to and
is not measured here. Nothing left means "no matching moment", with the closest labels seen.
Both floors were measured by benchmarks/retrieval_eval.py (docs/index.md).
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agent.errors import BehaviorAgentError
from agent.events import label_key
from agent.index.moments import Moment, Scope, VideoClips, fetch_moments, video_clips
from agent.index.records import ClipHit, Retrieval
from agent.index.vectors import text_space, visual_space
from agent.knowledge.matching import lexical_scores

# A query that holds no class name or synonym names its best knowledge-base match when that
# scores at least this (embedding similarity): measured, see the module docstring.
CLASS_MATCH_FLOOR = 0.5
# Cosine similarity (MiniLM) of a query to a one-thing text or a caption for it to answer a
# query that names no class.
TEXT_MATCH_FLOOR = 0.55
RRF_K = 60
# How many moments or clips each ranking contributes to the fusion.
CANDIDATES = 50
CLASS_MATCHES = 5


@dataclass
class _Fused:
    """One clip in the fusion: its score, which rankings found it, the moment that placed it."""

    score: float = 0.0
    why: list[str] = field(default_factory=list)
    moment: Moment | None = None
    qualified: bool = False


def named_classes(text: str, matched: list[tuple[str, float]], kb) -> dict[str, float]:
    """The classes a query names: those whose name or synonym it contains, and its best match
    when that scores at least CLASS_MATCH_FLOOR. A near neighbour of a named class ("thumbs
    down" for "thumbs up", 0.91 by embedding) is another class, another answer to another
    question; but a word of another class inside a description ("a closed fist with the thumb
    extended") does not hide the class the description fits best."""
    lexical = lexical_scores([kb.get(c) for c, _ in matched], text)
    chosen = {label_key(c): s for c, s in matched if c in lexical}
    if matched and matched[0][1] >= CLASS_MATCH_FLOOR:
        chosen.setdefault(label_key(matched[0][0]), matched[0][1])
    return chosen


class HybridSearch:
    """Moments for a query in the library `index`, read through the knowledge base `kb`."""

    def __init__(self, index, kb, visual_embedder=None) -> None:
        self.index = index
        self.kb = kb
        self.visual_embedder = visual_embedder
        if getattr(kb, "embedder", False) is None:
            kb.embedder = index.embedder  # one text model for the query, the classes, the texts

    def retrieve(
        self,
        text: str,
        k: int | None = None,
        video: str | os.PathLike | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
        labels: Sequence[str] | None = None,
    ) -> Retrieval:
        """The best `k` moments for `text` within the optional video and time window.

        `labels` names the classes (or object labels) to look for instead of those the query
        names; the query still orders their moments.
        """
        k = k or self.index.ctx.top_k
        scope = Scope(self._known_sha(video), start_s, end_s)
        self._clips: dict[int, int | None] = {}  # moment -> its clip, for this query
        self._videos = self.index.derived("hybrid_videos", dict)  # sha256 -> VideoClips
        query = self.index.embedder.embed([text])[0]
        shared = self.kb.embedder is self.index.embedder
        found = self.kb.match(text, k=CLASS_MATCHES, vector=query if shared else None)
        matched = [(m.id, m.score) for m in found]
        classes = named_classes(text, matched, self.kb)
        if labels:
            classes = {label_key(label): 1.0 for label in labels}
        sims, names = self._thing_similarities(query)
        keys = self._wanted(text, classes, sims, strict=bool(labels))
        moments = fetch_moments(self.index._conn(), keys, names, scope, self._video)
        fused = self._fuse(moments, classes, sims)
        self._add_clips(fused, "captions", self._captions(query, scope), qualify=True)
        self._add_clips(fused, "visual", self._visual(text, scope), qualify=False)
        ranked = sorted(
            ((f.score, rowid) for rowid, f in fused.items() if f.qualified), reverse=True
        )[:k]
        found = self.index._hits_by_rowid(ranked)
        hits = [self._with_span(hit, fused[rowid]) for rowid, hit in found]
        closest = [] if hits else self._closest(sims, names, scope)
        return Retrieval(query=text, hits=hits, matched=matched[:3], closest=closest)

    def _wanted(self, text: str, classes, sims, strict: bool) -> set[tuple[str, str]]:
        """The (kind, label key) pairs whose moments may answer: the named classes; and when
        the query names none outright, one-thing texts at or above TEXT_MATCH_FLOOR too ("a
        cup" is the cup in view, not only drinking)."""
        keys = {key for key in sims if key[1] in classes}
        keys |= {(self.kb.get(c).kind, c) for c in classes if c in self.kb}
        if not (classes and (strict or lexical_scores(self._named(classes), text))):
            keys |= {key for key, sim in sims.items() if sim >= TEXT_MATCH_FLOOR}
        return keys

    def _fuse(self, moments: list[Moment], classes, sims) -> dict[int, "_Fused"]:
        """The classes and texts rankings of the moments, fused per clip."""
        clip_s = self.index.ctx.clip_length_s
        fused: dict[int, _Fused] = {}
        named = [m for m in moments if m.key in classes]
        by_class = sorted(named, key=lambda m: -classes[m.key] * m.strength(clip_s))
        by_text = sorted(
            moments, key=lambda m: -sims.get((m.kind, m.key), 0.0) * m.strength(clip_s)
        )
        self._add_moments(fused, "classes", by_class)
        self._add_moments(fused, "texts", by_text)
        return fused

    # --- rankings ---------------------------------------------------------------------------

    def _named(self, classes: dict[str, float]) -> list:
        return [self.kb.get(c) for c in classes if c in self.kb]

    def _thing_similarities(self, query: np.ndarray):
        """{(kind, label key): cosine to the query} over every one-thing text, and their labels."""
        keys, labels, vectors = self.index.derived(
            f"hybrid_things:{self.index.embedder.name}", self._load_things
        )
        if not keys:
            return {}, {}
        scores = vectors @ query
        return dict(zip(keys, scores.tolist(), strict=True)), labels

    def _load_things(self):
        """The one-thing vectors of the query's space as one matrix, with their keys and labels
        (read once per library change, not once per query)."""
        rows = (
            self.index._conn()
            .execute(
                "SELECT kind, label_key, label, vector FROM thing_vectors WHERE space=?",
                (text_space(self.index.embedder.name),),
            )
            .fetchall()
        )
        if not rows:
            return [], {}, None
        vectors = np.frombuffer(b"".join(r["vector"] for r in rows), np.float32)
        keys = [(r["kind"], r["label_key"]) for r in rows]
        return keys, {r["label_key"]: r["label"] for r in rows}, vectors.reshape(len(rows), -1)

    def _video(self, sha256: str) -> VideoClips:
        """A video's clips and timing, kept until the library changes."""
        if sha256 not in self._videos:
            self._videos[sha256] = video_clips(self.index._conn(), sha256)
        return self._videos[sha256]

    def _add_moments(self, fused, name: str, ranked: list[Moment]) -> None:
        seen: set[int] = set()
        for moment in ranked:
            if len(seen) >= CANDIDATES:
                break
            rowid = self._clip_of(moment)
            if rowid is None or rowid in seen:
                continue  # a clip counts once per ranking, at its best moment
            entry = fused.setdefault(rowid, _Fused())
            entry.score += 1.0 / (RRF_K + len(seen) + 1)
            entry.why.append(name)
            entry.moment = entry.moment or moment
            entry.qualified = True
            seen.add(rowid)

    def _clip_of(self, moment: Moment) -> int | None:
        key = id(moment)
        if key not in self._clips:
            self._clips[key] = self._video(moment.sha256).clip_of(moment)
        return self._clips[key]

    def _add_clips(self, fused, name: str, rowids: list[int], qualify: bool) -> None:
        for rank, rowid in enumerate(rowids, start=1):
            if not qualify and rowid not in fused:
                continue
            entry = fused.setdefault(rowid, _Fused())
            entry.score += 1.0 / (RRF_K + rank)
            entry.why.append(name)
            entry.qualified = entry.qualified or qualify

    def _captions(self, query: np.ndarray, scope: Scope) -> list[int]:
        """Captioned clips in scope whose caption is similar enough to the query, best first."""
        where, args = scope.sql("c")
        candidates = [
            r[0]
            for r in self.index._conn().execute(
                f"SELECT c.id FROM clips c WHERE c.caption != '' AND {where}", args
            )
        ]
        pairs = self._nearest(text_space(self.index.embedder.name), query, candidates)
        return [rowid for score, rowid in pairs if score >= TEXT_MATCH_FLOOR]

    def _visual(self, text: str, scope: Scope) -> list[int]:
        """Clips in scope nearest the query in the visual model's space (empty without one)."""
        if self.visual_embedder is None:
            return []
        space = visual_space(self.visual_embedder.name)
        if self.index._load_space(space) is None or not self.visual_embedder.reads_text:
            return []
        where, args = scope.sql("c")
        candidates = None
        if scope != Scope():
            sql = f"SELECT c.id FROM clips c WHERE {where}"
            candidates = [r[0] for r in self.index._conn().execute(sql, args)]
        query = self.visual_embedder.embed_text([text])[0]
        return [rowid for _, rowid in self._nearest(space, query, candidates)]

    def _nearest(self, space: str, query: np.ndarray, candidates: list[int] | None):
        """(score, clip rowid) nearest a query vector in one space, among `candidates`."""
        if candidates is not None and not candidates:
            return []
        loaded = self.index._load_space(space)
        if loaded is None or loaded.index.ntotal == 0 or loaded.dim != query.shape[-1]:
            return []
        vector = np.ascontiguousarray(query.reshape(1, -1), np.float32)
        with self.index._rw.read():
            scores, ids = self.index._faiss_search(
                loaded.index, space, vector, CANDIDATES, candidates
            )
        return [(float(s), int(i)) for s, i in zip(scores, ids, strict=True) if i >= 0]

    # --- results ----------------------------------------------------------------------------

    def _with_span(self, hit: ClipHit, entry: _Fused) -> ClipHit:
        update = {"why": entry.why}
        if entry.moment is not None:
            moment = entry.moment
            update |= {
                "span_start_s": moment.start_s,
                "span_end_s": moment.end_s,
                "label": moment.label,
            }
        return hit.model_copy(update=update)

    def _closest(self, sims, labels, scope: Scope) -> list[tuple[str, float]]:
        """The labels seen in scope nearest the query (named when nothing matched)."""
        seen_in = self.index.derived("hybrid_seen", dict)  # scope -> labels seen there
        if scope not in seen_in:
            where, args = scope.sql("d")
            sql = f"SELECT DISTINCT d.kind, d.label_key FROM detections d WHERE {where}"
            seen_in[scope] = {(r[0], r[1]) for r in self.index._conn().execute(sql, args)}
        near = sorted(((sims[key], key) for key in seen_in[scope] if key in sims), reverse=True)
        return [(labels[key], round(sim, 3)) for sim, (_, key) in near[:3]]

    def _known_sha(self, video) -> str | None:
        if video is None:
            return None
        sha = self.index.resolve(video)
        conn = self.index._conn()
        if not sha or not conn.execute("SELECT 1 FROM videos WHERE sha256=?", (sha,)).fetchone():
            raise BehaviorAgentError(
                f"'{video}' is not in the library; index it first "
                "(`behavior-agent index VIDEO`) or check `behavior-agent library`."
            )
        return sha
