"""Search over the clip library: moments by hybrid search (`retrieve`), clips by text, by
vector or by example clip, within filters on video, time span and detected labels."""

import os
from collections.abc import Sequence
from typing import Literal

import numpy as np

from agent.context import Context
from agent.embed import l2_normalise
from agent.errors import BehaviorAgentError
from agent.events import label_key
from agent.index.records import ClipHit, Retrieval
from agent.index.vectors import VectorSpaces, text_space, visual_space

# A detection belongs to a clip when their spans overlap; zero-length spans (a still image,
# an instant) count when they fall inside the other span. The SQL form of
# `agent.events.spans_overlap`.
_OVERLAP_SQL = """(
    (d.start_s < c.end_s AND d.end_s > c.start_s)
    OR (d.start_s = d.end_s AND d.start_s >= c.start_s AND d.start_s <= c.end_s)
    OR (c.start_s = c.end_s AND d.start_s <= c.start_s AND d.end_s >= c.start_s))"""


class ClipSearch(VectorSpaces):
    """Nearest clips to a query, best first, with optional filters."""

    def __init__(self, ctx: Context, embedder=None) -> None:
        super().__init__(ctx)
        self._embedder = embedder

    @property
    def embedder(self):
        """The text embedder for queries (the default MiniLM unless one was injected)."""
        if self._embedder is None:
            from agent.embed import load_text_embedder

            self._embedder = load_text_embedder(self.ctx)
        return self._embedder

    def search(
        self,
        text: str,
        k: int | None = None,
        video: str | os.PathLike | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
        labels: Sequence[str] | None = None,
    ) -> list[ClipHit]:
        """Clips closest in meaning to `text`, best first, within the optional filters.

        `video` limits to one video (path or sha256), `start_s`/`end_s` to clips overlapping
        that span, `labels` to clips overlapping a detection with one of those labels.
        """
        vector = self.embedder.embed([text])[0]
        return self.search_vector(
            vector,
            k,
            space=text_space(self.embedder.name),
            video=video,
            start_s=start_s,
            end_s=end_s,
            labels=labels,
        )

    def retrieve(
        self,
        text: str,
        k: int | None = None,
        *,
        kb,
        video: str | os.PathLike | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
        labels: Sequence[str] | None = None,
        visual_embedder=None,
    ) -> Retrieval:
        """The moments matching `text`, read through the knowledge base `kb` (hybrid search,
        `agent.index.hybrid`); no hits means "no matching moment". The visual model of
        `ctx.visual_embed_model` joins in unless another `visual_embedder` is given."""
        from agent.embed import load_visual_embedder
        from agent.index.hybrid import HybridSearch

        if visual_embedder is None:
            visual_embedder = load_visual_embedder(self.ctx)
        search = HybridSearch(self, kb, visual_embedder)
        return search.retrieve(text, k, video=video, start_s=start_s, end_s=end_s, labels=labels)

    def similar(
        self,
        video: str | os.PathLike,
        clip_id: int,
        k: int | None = None,
        space: Literal["visual", "text"] = "visual",
    ) -> list[ClipHit]:
        """Clips that look (visual) or read (text) like one clip, excluding that clip."""
        sha = self.resolve(video)
        row = (
            self._conn()
            .execute("SELECT id FROM clips WHERE sha256=? AND clip_id=?", (sha, clip_id))
            .fetchone()
        )
        if row is None:
            raise BehaviorAgentError(f"No clip {clip_id} of '{video}' in the library; index it.")
        space_name = self._space_for_kind(space)
        blob = (
            self._conn()
            .execute(
                "SELECT vector FROM vectors WHERE space=? AND clip_rowid=?", (space_name, row["id"])
            )
            .fetchone()
        )
        if blob is None:
            raise BehaviorAgentError(
                f"Clip {clip_id} of '{video}' has no {space} vector; re-index it with "
                "BEHAVIOR_AGENT_VISUAL_EMBED_MODEL set to a CLIP/SigLIP model."
            )
        k = k or self.ctx.top_k
        vector = np.frombuffer(blob["vector"], np.float32)
        hits = self.search_vector(vector, k + 1, space=space_name)
        return [h for h in hits if not (h.sha256 == sha and h.clip_id == clip_id)][:k]

    def _space_for_kind(self, kind: str) -> str:
        if kind == "text":
            return text_space(self.embedder.name)
        rows = self._conn().execute("SELECT name FROM spaces WHERE name LIKE 'visual:%'")
        names = [r["name"] for r in rows]
        wanted = visual_space(self.ctx.visual_embed_model)
        if wanted in names:
            return wanted
        if not names:
            raise BehaviorAgentError(
                "The library has no visual vectors. Set BEHAVIOR_AGENT_VISUAL_EMBED_MODEL to a "
                "local CLIP/SigLIP model and re-index the videos."
            )
        return names[0]

    def search_vector(
        self,
        vector: np.ndarray,
        k: int | None = None,
        *,
        space: str,
        video: str | os.PathLike | None = None,
        start_s: float | None = None,
        end_s: float | None = None,
        labels: Sequence[str] | None = None,
    ) -> list[ClipHit]:
        """Nearest clips to a unit vector in one vector space, with the same filters."""
        k = k or self.ctx.top_k
        query = l2_normalise(vector)
        candidates = self._candidates(video, start_s, end_s, labels)
        if candidates is not None and len(candidates) == 0:
            return []
        loaded = self._load_space(space)
        if loaded is None:
            return []
        with self._rw.read():
            index = self._spaces[space].index if space in self._spaces else None
            if index is None or index.ntotal == 0:
                return []
            if query.shape[1] != index.d:
                raise BehaviorAgentError(
                    f"The query vector has {query.shape[1]} dimensions but the '{space}' index "
                    f"has {index.d}; re-index the library with the current embedding model."
                )
            scores, ids = self._faiss_search(index, space, query, k, candidates)
        pairs = [(float(s), int(i)) for s, i in zip(scores, ids, strict=True) if i >= 0]
        return self._hits(pairs)

    def _candidates(self, video, start_s, end_s, labels) -> list[int] | None:
        """Clip rowids passing the filters, or None when there is no filter."""
        if video is None and start_s is None and end_s is None and not labels:
            return None
        where, args = [], []
        if video is not None:
            sha = self.resolve(video)
            known = (
                sha
                and self._conn().execute("SELECT 1 FROM videos WHERE sha256=?", (sha,)).fetchone()
            )
            if not known:
                raise BehaviorAgentError(
                    f"'{video}' is not in the library; index it first "
                    "(`behavior-agent index VIDEO`) or check `behavior-agent library`."
                )
            where.append("c.sha256=?")
            args.append(sha)
        if start_s is not None or end_s is not None:
            lo = start_s if start_s is not None else 0.0
            hi = end_s if end_s is not None else 1e18
            where.append(
                "((c.start_s < ? AND c.end_s > ?) OR (c.start_s = c.end_s AND c.start_s >= ? "
                "AND c.start_s <= ?) OR (? = ? AND c.start_s <= ? AND c.end_s >= ?))"
            )
            args.extend([hi, lo, lo, hi, lo, hi, lo, lo])
        if labels:
            keys = sorted({label_key(label) for label in labels})
            marks = ",".join("?" * len(keys))
            where.append(
                f"EXISTS (SELECT 1 FROM detections d WHERE d.sha256=c.sha256 "
                f"AND d.label_key IN ({marks}) AND {_OVERLAP_SQL})"
            )
            args.extend(keys)
        sql = "SELECT c.id FROM clips c WHERE " + " AND ".join(where)
        return [r["id"] for r in self._conn().execute(sql, args)]

    def _hits(self, pairs: list[tuple[float, int]]) -> list[ClipHit]:
        return [hit for _, hit in self._hits_by_rowid(pairs)]

    def _hits_by_rowid(self, pairs: list[tuple[float, int]]) -> list[tuple[int, ClipHit]]:
        """(clip rowid, hit) for (score, clip rowid) pairs, in their order."""
        if not pairs:
            return []
        conn = self._conn()
        marks = ",".join("?" * len(pairs))
        rows = {
            r["id"]: r
            for r in conn.execute(
                f"SELECT c.*, v.path FROM clips c JOIN videos v USING (sha256) "
                f"WHERE c.id IN ({marks})",
                [i for _, i in pairs],
            )
        }
        hits = []
        for score, rowid in pairs:
            row = rows.get(rowid)
            if row is None:  # removed by another process after our FAISS snapshot
                continue
            inside = self.detections_of(row["sha256"], row["start_s"], row["end_s"])
            hits.append(
                (
                    rowid,
                    ClipHit(
                        score=score,
                        video=row["path"],
                        sha256=row["sha256"],
                        clip_id=row["clip_id"],
                        start_s=row["start_s"],
                        end_s=row["end_s"],
                        caption=row["caption"] or "",
                        text=row["text"] or "",
                        detections=inside,
                    ),
                )
            )
        return hits
