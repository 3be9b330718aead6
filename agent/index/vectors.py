"""The FAISS side of the clip library: one index file per vector space and generation, search.

Files live under `ctx.home/vectors/<space>.<gen>.faiss`; each is a cache of one vector space
at one generation, rebuilt from the SQLite blobs when it is missing or inconsistent.

Crash safety: the FAISS file of the next generation is written under a temporary name, moved
into place with `os.replace`, and only then is the generation bumped in the same SQLite
transaction that changed the rows; a crash at any point leaves the previous generation's file
and rows intact. A readers-writer lock guards the FAISS objects (searches run in parallel,
mutations are exclusive); a process notices another's write through the generation number.
"""

import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.index.store import LibraryStore, cannot_open

log = logging.getLogger(__name__)

# HNSW parameters, measured in benchmarks/index_bench.py: on hard synthetic 384-d data at 100k,
# M=32/efConstruction=80 with efSearch=256 gives recall@10 ~0.6-0.7 at ~3 ms a query (M=16/40
# only ~0.3 at efSearch=128); real sentence embeddings are easier. Builds cost ~0.5 ms a vector.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
# Below this many candidates a filtered search on an approximate index is scored exactly.
_EXACT_FILTER_LIMIT = 20_000


class _RWLock:
    """Many readers or one writer (FAISS search is thread-safe, mutation is not)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def read(self):
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class _Space:
    """One vector space loaded in memory: its FAISS index at a generation."""

    name: str
    dim: int
    generation: int
    index: faiss.Index

    @property
    def approximate(self) -> bool:
        return _is_hnsw(self.index)


def text_space(model_name: str) -> str:
    """Name of the vector space of clip texts embedded with `model_name`."""
    return f"text:{model_name}"


def visual_space(model_name: str) -> str:
    """Name of the vector space of clip key frames embedded with `model_name`."""
    return f"visual:{model_name}"


class VectorSpaces(LibraryStore):
    """The library's FAISS indexes, one per vector space, kept in step with the SQLite rows."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.vector_dir = self.home / "vectors"
        self._rw = _RWLock()
        self._spaces: dict[str, _Space] = {}
        # One query per call, many calls in parallel from threads: OpenMP teams inside each
        # call only add barrier overhead (50x slower on a busy 2-core machine). Builds raise it.
        faiss.omp_set_num_threads(1)
        try:
            self.vector_dir.mkdir(exist_ok=True)
        except OSError as error:
            raise cannot_open(self.db_path, error) from None

    def _space_file(self, name: str, generation: int) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:80]
        return self.vector_dir / f"{slug}.{generation}.faiss"

    def _load_space(self, name: str) -> _Space | None:
        """The in-memory index of a space, (re)loaded when another writer moved it on."""
        row = self._conn().execute("SELECT * FROM spaces WHERE name=?", (name,)).fetchone()
        if row is None:
            return None
        current = self._spaces.get(name)
        if current is not None and current.generation == row["generation"]:
            return current
        # A read transaction is one WAL snapshot: the generation and the vector rows agree.
        with self._rw.write(), self._transaction() as conn:
            row = conn.execute("SELECT * FROM spaces WHERE name=?", (name,)).fetchone()
            current = self._spaces.get(name)
            if current is None or current.generation != row["generation"]:
                index = self._read_or_rebuild(conn, name, row["dim"], row["generation"])
                self._spaces[name] = _Space(name, row["dim"], row["generation"], index)
            return self._spaces[name]

    def _read_or_rebuild(self, conn, name: str, dim: int, generation: int) -> faiss.Index:
        expected = conn.execute("SELECT COUNT(*) FROM vectors WHERE space=?", (name,)).fetchone()[0]
        path = self._space_file(name, generation)
        if path.is_file():
            try:
                index = faiss.read_index(str(path))
                if index.ntotal == expected and index.d == dim:
                    return index
                log.warning(
                    "%s holds %d vectors, the library %d; rebuilding", path, index.ntotal, expected
                )
            except RuntimeError as error:
                log.warning("cannot read %s (%s); rebuilding it from the library", path, error)
        else:
            log.info("no FAISS file for %s generation %d; building it", name, generation)
        ids, vectors = self._space_rows(conn, name, dim)
        index = self._build(dim, ids, vectors)
        _write_atomically(index, path)
        return index

    def _space_rows(self, conn, name: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
        rows = conn.execute(
            "SELECT clip_rowid, vector FROM vectors WHERE space=? ORDER BY clip_rowid", (name,)
        ).fetchall()
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(-1, dim)
        return ids, vectors

    def _build(self, dim: int, ids: np.ndarray, vectors: np.ndarray) -> faiss.Index:
        """IndexIDMap over exact inner product, or over HNSW above the configured size."""
        if len(ids) > self.ctx.approximate_index_above:
            log.warning(
                "%d clip vectors exceed approximate_index_above=%d: using an HNSW approximate "
                "index (M=%d, efSearch=%d)",
                len(ids),
                self.ctx.approximate_index_above,
                HNSW_M,
                HNSW_EF_SEARCH,
            )
            inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            inner = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap(inner)
        if len(ids):
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            try:
                index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)
            finally:
                faiss.omp_set_num_threads(1)
        return index

    def _spaces_holding(self, conn, clip_rowids: list[int]) -> set[str]:
        if not clip_rowids:
            return set()
        found: set[str] = set()
        for start in range(0, len(clip_rowids), 900):
            chunk = clip_rowids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            found |= {
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT space FROM vectors WHERE clip_rowid IN ({marks})", chunk
                )
            }
        return found

    def _current_spaces(self, conn, sha: str, adding: set[str]) -> dict[str, _Space | None]:
        """Inside the write transaction, BEFORE rows change: the spaces a write will touch.

        Loading them first matters: a FAISS file is checked against the vector rows, which
        must still be those of its generation.
        """
        old_ids = [r["id"] for r in conn.execute("SELECT id FROM clips WHERE sha256=?", (sha,))]
        current: dict[str, _Space | None] = {}
        for name in sorted(adding | self._spaces_holding(conn, old_ids)):
            row = conn.execute("SELECT * FROM spaces WHERE name=?", (name,)).fetchone()
            if row is None:
                current[name] = None
                continue
            loaded = self._spaces.get(name)
            if loaded is None or loaded.generation != row["generation"]:
                index = self._read_or_rebuild(conn, name, row["dim"], row["generation"])
                loaded = _Space(name, row["dim"], row["generation"], index)
            current[name] = loaded
        return current

    def _update_spaces(self, conn, current, changed, old_ids, new_ids) -> None:
        """Inside the write transaction: move each touched space to its next generation."""
        with self._rw.write():
            for name, space in current.items():
                version, vectors = changed.get(name, (None, None))
                dim = space.dim if space else int(vectors.shape[1])
                if vectors is not None and vectors.shape[1] != dim:
                    raise BehaviorAgentError(
                        f"Vector space '{name}' holds {dim}-d vectors but the model gives "
                        f"{vectors.shape[1]}-d ones; remove the library folder "
                        f"{self.home} or use the model it was built with."
                    )
                generation = (space.generation if space else 0) + 1
                index = self._next_index(space, dim, old_ids, new_ids, vectors)
                _write_atomically(index, self._space_file(name, generation))
                conn.execute(
                    "INSERT OR REPLACE INTO spaces (name, dim, generation, model_version) "
                    "VALUES (?, ?, ?, COALESCE(?, (SELECT model_version FROM spaces "
                    "WHERE name=?)))",
                    (name, dim, generation, version, name),
                )
                # Until COMMIT succeeds this object is ahead of the database; a failed commit
                # makes the generation mismatch and the next search reloads from disk.
                self._spaces[name] = _Space(name, dim, generation, index)

    def _next_index(self, space, dim, old_ids, new_ids, vectors) -> faiss.Index:
        index = space.index if space else self._build(dim, np.zeros(0, np.int64), None)
        total_after = index.ntotal + (len(new_ids) if vectors is not None else 0)
        needs_hnsw = total_after > self.ctx.approximate_index_above
        if (_is_hnsw(index) and old_ids) or needs_hnsw != _is_hnsw(index):
            # HNSW cannot delete, and switching kind means a rebuild anyway.
            ids, all_vectors = _contents(index)
            keep = ~np.isin(ids, np.asarray(old_ids, np.int64))
            ids, all_vectors = ids[keep], all_vectors[keep]
            if vectors is not None:
                ids = np.concatenate([ids, np.asarray(new_ids, np.int64)])
                all_vectors = np.concatenate([all_vectors, vectors.astype(np.float32)])
            return self._build(dim, ids, all_vectors)
        if old_ids:
            index.remove_ids(np.asarray(old_ids, np.int64))
        if vectors is not None and len(new_ids):
            index.add_with_ids(
                np.ascontiguousarray(vectors, np.float32), np.asarray(new_ids, np.int64)
            )
        return index

    def _drop_old_files(self) -> None:
        """Delete FAISS files of generations no longer current (after a successful commit)."""
        current = {
            self._space_file(r["name"], r["generation"]).name
            for r in self._conn().execute("SELECT name, generation FROM spaces")
        }
        for path in self.vector_dir.glob("*.faiss"):
            if path.name not in current:
                path.unlink(missing_ok=True)
        for path in self.vector_dir.glob("*.tmp*"):
            if time.time() - path.stat().st_mtime > 3600:  # a crashed writer's leftover
                path.unlink(missing_ok=True)

    def _faiss_search(self, index, space, query, k, candidates):
        if candidates is None:
            # Per-call parameters: concurrent searches never write to the shared index.
            params = (
                faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, 2 * k))
                if _is_hnsw(index)
                else None
            )
            scores, ids = index.search(query, k, params=params)
            return scores[0], ids[0]
        if _is_hnsw(index) and len(candidates) <= _EXACT_FILTER_LIMIT:
            return self._exact_scores(space, query[0], candidates, k)
        selector = faiss.IDSelectorBatch(np.asarray(candidates, dtype=np.int64))
        if _is_hnsw(index):
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(4 * HNSW_EF_SEARCH, k))
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, ids = index.search(query, min(k, len(candidates)), params=params)
        return scores[0], ids[0]

    def _exact_scores(self, space, query, candidates, k):
        """Brute force over a small filtered set (exact even on an approximate index)."""
        conn = self._conn()
        vectors, ids = [], []
        for chunk_start in range(0, len(candidates), 900):
            chunk = candidates[chunk_start : chunk_start + 900]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT clip_rowid, vector FROM vectors WHERE space=? AND clip_rowid IN ({marks})",
                (space, *chunk),
            ):
                ids.append(row["clip_rowid"])
                vectors.append(np.frombuffer(row["vector"], np.float32))
        if not ids:
            return np.zeros(0), np.zeros(0, np.int64)
        scores = np.stack(vectors) @ query
        order = np.argsort(-scores)[:k]
        return scores[order], np.asarray(ids)[order]


def _is_hnsw(index: faiss.Index) -> bool:
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    return isinstance(inner, faiss.IndexHNSW)


def _contents(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) held by an IndexIDMap over a flat or HNSW-flat index."""
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexHNSW):
        inner = faiss.downcast_index(inner.storage)
    vectors = inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else np.zeros((0, inner.d))
    return ids, np.asarray(vectors, np.float32)


def _write_atomically(index: faiss.Index, path: Path) -> None:
    """Write to a temporary name in the same folder, fsync, then rename over the target."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}_{threading.get_ident()}")
    faiss.write_index(index, str(tmp))
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
