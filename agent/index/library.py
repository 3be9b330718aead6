"""ClipIndex: clip vectors in FAISS, everything else about videos and clips in SQLite.

Layout under `ctx.home`: `library.sqlite` (videos, the paths seen for each content hash, clips,
detections, the clip vectors as blobs, one row per vector space) and `vectors/<space>.<gen>.faiss`.
SQLite is the source of truth; a FAISS file is a cache of one vector space at one generation.

Crash safety: a video's clips, detections and vectors land in ONE SQLite transaction. The FAISS
file of the next generation is written under a temporary name, moved into place with
`os.replace`, and only then is the generation bumped in that same transaction; a crash at any
point leaves the previous generation's file and rows intact. A missing or inconsistent file is
rebuilt from the SQLite blobs on open.

Concurrency: per-thread SQLite connections (WAL mode), a readers-writer lock around the FAISS
objects (FAISS searches run in parallel, mutations are exclusive), and `BEGIN IMMEDIATE` for
writes so that several processes (CLI and web app) can share one library; a process notices
another's write through the generation number and reloads.
"""

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from agent.context import Context
from agent.embed import l2_normalise
from agent.errors import BehaviorAgentError
from agent.events import label_key, spans_overlap
from agent.state import Clip, Detection, Record, VideoInfo
from agent.video import sha256_file

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# HNSW parameters, measured in benchmarks/index_bench.py: on hard synthetic 384-d data at 100k,
# M=32/efConstruction=80 with efSearch=256 gives recall@10 ~0.6-0.7 at ~3 ms a query (M=16/40
# only ~0.3 at efSearch=128); real sentence embeddings are easier. Builds cost ~0.5 ms a vector.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
# Below this many candidates a filtered search on an approximate index is scored exactly.
_EXACT_FILTER_LIMIT = 20_000
_SHA_RE = re.compile(r"^[0-9a-f]{8,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    sha256 TEXT PRIMARY KEY, path TEXT NOT NULL, duration_s REAL, fps REAL, frame_count INTEGER,
    width INTEGER, height INTEGER, size_bytes INTEGER, settings TEXT NOT NULL,
    status TEXT NOT NULL, clip_count INTEGER DEFAULT 0, detection_count INTEGER DEFAULT 0,
    started_at REAL, indexed_at REAL, index_wall_s REAL);
CREATE TABLE IF NOT EXISTS paths (
    path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size_bytes INTEGER, mtime_ns INTEGER,
    seen_at REAL);
CREATE INDEX IF NOT EXISTS paths_sha ON paths(sha256);
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, clip_id INTEGER NOT NULL,
    start_s REAL NOT NULL, end_s REAL NOT NULL, shot_index INTEGER DEFAULT 0,
    caption TEXT DEFAULT '', text TEXT DEFAULT '', UNIQUE (sha256, clip_id));
CREATE INDEX IF NOT EXISTS clips_time ON clips(sha256, start_s);
CREATE TABLE IF NOT EXISTS detections (
    id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL,
    label_key TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL, confidence REAL,
    bbox TEXT, cues TEXT, person_id INTEGER, source TEXT);
CREATE INDEX IF NOT EXISTS detections_time ON detections(sha256, start_s);
CREATE INDEX IF NOT EXISTS detections_label ON detections(label_key);
CREATE TABLE IF NOT EXISTS vectors (
    space TEXT NOT NULL, clip_rowid INTEGER NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (space, clip_rowid));
CREATE TABLE IF NOT EXISTS spaces (
    name TEXT PRIMARY KEY, dim INTEGER NOT NULL, generation INTEGER NOT NULL,
    model_version TEXT);
CREATE TABLE IF NOT EXISTS caption_cache (
    sha256 TEXT NOT NULL, settings_key TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL,
    caption TEXT NOT NULL, data TEXT, PRIMARY KEY (sha256, settings_key, start_s, end_s));
"""

# A detection belongs to a clip when their spans overlap; zero-length spans (a still image,
# an instant) count when they fall inside the other span. The SQL form of
# `agent.events.spans_overlap`.
_OVERLAP_SQL = """(
    (d.start_s < c.end_s AND d.end_s > c.start_s)
    OR (d.start_s = d.end_s AND d.start_s >= c.start_s AND d.start_s <= c.end_s)
    OR (c.start_s = c.end_s AND d.start_s <= c.start_s AND d.end_s >= c.start_s))"""


class VideoRecord(Record):
    """One video of the library (keyed by content hash) and how it was indexed."""

    sha256: str
    path: str
    paths: list[str] = []
    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int
    size_bytes: int
    status: Literal["indexing", "complete"]
    settings: dict[str, Any]
    clip_count: int = 0
    detection_count: int = 0
    indexed_at: float | None = None
    index_wall_s: float | None = None
    # Set by `index_video` when the call did no work (already indexed with the same settings).
    reused: bool = False

    def info(self, path: str | Path | None = None) -> VideoInfo:
        """The probe record of this video, at `path` (default: the path it was indexed from)."""
        fields = self.model_dump(include=set(VideoInfo.model_fields) - {"path"})
        return VideoInfo(path=str(path if path is not None else self.path), **fields)


class ClipRecord(Clip):
    """A stored clip: its span plus the text that was embedded for it."""

    sha256: str
    caption: str = ""
    text: str = ""


class ClipHit(Record):
    """One search result, best first; `score` is cosine similarity (higher is closer)."""

    score: float
    video: str
    sha256: str
    clip_id: int
    start_s: float
    end_s: float
    caption: str
    text: str
    detections: list[Detection] = []


@dataclass
class VideoPayload:
    """Everything `ClipIndex.put_video` stores for one video, in one transaction."""

    info: VideoInfo
    settings: dict[str, Any]
    clips: list[Clip]
    captions: list[str]
    texts: list[str]
    detections: list[Detection]
    # space name -> (model version, (len(clips), dim) unit vectors)
    vectors: dict[str, tuple[str, np.ndarray]]
    wall_s: float = 0.0


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


class ClipIndex:
    """The clip library under `ctx.home`: add, search, list and remove indexed videos."""

    def __init__(self, ctx: Context | None = None, embedder=None) -> None:
        self.ctx = ctx or Context.from_env()
        self.home = Path(self.ctx.home)
        self.db_path = self.home / "library.sqlite"
        self.vector_dir = self.home / "vectors"
        self._embedder = embedder
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._rw = _RWLock()
        self._spaces: dict[str, _Space] = {}
        # One query per call, many calls in parallel from threads: OpenMP teams inside each
        # call only add barrier overhead (50x slower on a busy 2-core machine). Builds raise it.
        faiss.omp_set_num_threads(1)
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            self.vector_dir.mkdir(exist_ok=True)
            # executescript commits on its own; every statement in it is idempotent.
            self._conn().executescript(_SCHEMA)
            self._conn().execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except (OSError, sqlite3.Error) as error:
            raise BehaviorAgentError(
                f"Cannot open the clip library at {self.db_path} ({error}). Check that the "
                "folder is writable, or point BEHAVIOR_AGENT_HOME at another folder."
            ) from None

    # --- connections -------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.db_path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
            with self._conn_lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self, immediate: bool = False):
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this object opened (any thread)."""
        with self._conn_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> "ClipIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- videos ------------------------------------------------------------------------

    def resolve(self, path_or_sha: str | os.PathLike) -> str | None:
        """The content hash for a path (known or hashed now) or a (prefix of a) sha256."""
        text = str(path_or_sha)
        path = Path(text).expanduser()
        if path.is_file():
            key = str(path.resolve())
            stat = path.stat()
            row = (
                self._conn()
                .execute(
                    "SELECT sha256 FROM paths WHERE path=? AND size_bytes=? AND mtime_ns=?",
                    (key, stat.st_size, stat.st_mtime_ns),
                )
                .fetchone()
            )
            return row["sha256"] if row else sha256_file(path)
        if _SHA_RE.match(text.lower()):
            rows = (
                self._conn()
                .execute("SELECT sha256 FROM videos WHERE sha256 LIKE ?", (text.lower() + "%",))
                .fetchall()
            )
            if len(rows) > 1:
                raise BehaviorAgentError(
                    f"'{text}' matches {len(rows)} videos; give more characters of the sha256."
                )
            return rows[0]["sha256"] if rows else None
        row = (
            self._conn()
            .execute("SELECT sha256 FROM paths WHERE path=?", (str(path.resolve()),))
            .fetchone()
        )
        return row["sha256"] if row else None

    def video(self, path_or_sha: str | os.PathLike) -> VideoRecord | None:
        """The library's record of a video (by path or sha256), or None if never indexed."""
        sha = self.resolve(path_or_sha)
        if sha is None:
            return None
        row = self._conn().execute("SELECT * FROM videos WHERE sha256=?", (sha,)).fetchone()
        return self._video_record(row) if row else None

    def videos(self) -> list[VideoRecord]:
        """Every video in the library, most recently indexed first."""
        rows = (
            self._conn()
            .execute("SELECT * FROM videos ORDER BY COALESCE(indexed_at, started_at) DESC")
            .fetchall()
        )
        return [self._video_record(row) for row in rows]

    def _video_record(self, row: sqlite3.Row) -> VideoRecord:
        paths = [
            r["path"]
            for r in self._conn().execute(
                "SELECT path FROM paths WHERE sha256=? ORDER BY seen_at DESC", (row["sha256"],)
            )
        ]
        fields = dict(row)
        fields.pop("started_at")
        settings = json.loads(fields.pop("settings"))
        return VideoRecord(**fields, settings=settings, paths=paths)

    def note_path(self, path: str | os.PathLike, sha256: str) -> str | None:
        """Remember that `path` holds `sha256`; returns the previous primary path if it moved."""
        path = Path(path).resolve()
        stat = path.stat()
        with self._transaction(immediate=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO paths VALUES (?, ?, ?, ?, ?)",
                (str(path), sha256, stat.st_size, stat.st_mtime_ns, time.time()),
            )
            row = conn.execute("SELECT path FROM videos WHERE sha256=?", (sha256,)).fetchone()
            if row is None or row["path"] == str(path):
                return None
            conn.execute("UPDATE videos SET path=? WHERE sha256=?", (str(path), sha256))
            return row["path"]

    def begin_video(self, info: VideoInfo, settings: dict[str, Any]) -> None:
        """Mark a video as being indexed (its old clips, if any, stay searchable until done)."""
        path = Path(info.path).resolve()
        with self._transaction(immediate=True) as conn:
            exists = conn.execute("SELECT 1 FROM videos WHERE sha256=?", (info.sha256,)).fetchone()
            if exists:
                conn.execute(
                    "UPDATE videos SET status='indexing', started_at=?, path=? WHERE sha256=?",
                    (time.time(), str(path), info.sha256),
                )
            else:
                conn.execute(
                    "INSERT INTO videos (sha256, path, duration_s, fps, frame_count, width, "
                    "height, size_bytes, settings, status, started_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'indexing', ?)",
                    (
                        info.sha256,
                        str(path),
                        info.duration_s,
                        info.fps,
                        info.frame_count,
                        info.width,
                        info.height,
                        path.stat().st_size,
                        json.dumps(settings, sort_keys=True),
                        time.time(),
                    ),
                )
        self.note_path(path, info.sha256)

    def put_video(self, payload: VideoPayload) -> VideoRecord:
        """Replace a video's clips, detections and vectors in one transaction; mark it complete."""
        info = payload.info
        for space, (_, vectors) in payload.vectors.items():
            if len(vectors) != len(payload.clips):
                raise ValueError(f"{space}: {len(vectors)} vectors for {len(payload.clips)} clips")
        with self._write_lock, self._transaction(immediate=True) as conn:
            current = self._current_spaces(conn, info.sha256, set(payload.vectors))
            old_ids = self._delete_rows(conn, info.sha256)
            new_ids = self._insert_clips(conn, payload)
            self._insert_detections(conn, info.sha256, payload.detections)
            conn.execute(
                "UPDATE videos SET duration_s=?, fps=?, frame_count=?, width=?, height=?, "
                "settings=?, status='complete', clip_count=?, detection_count=?, indexed_at=?, "
                "index_wall_s=? WHERE sha256=?",
                (
                    info.duration_s,
                    info.fps,
                    info.frame_count,
                    info.width,
                    info.height,
                    json.dumps(payload.settings, sort_keys=True),
                    len(payload.clips),
                    len(payload.detections),
                    time.time(),
                    payload.wall_s,
                    info.sha256,
                ),
            )
            self._update_spaces(conn, current, payload.vectors, old_ids, new_ids)
        self._drop_old_files()
        return self.video(info.sha256)

    def remove(self, path_or_sha: str | os.PathLike) -> bool:
        """Delete a video with its clips, detections, vectors and known paths; False if absent."""
        sha = self.resolve(path_or_sha)
        if sha is None:
            return False
        with self._write_lock, self._transaction(immediate=True) as conn:
            if not conn.execute("SELECT 1 FROM videos WHERE sha256=?", (sha,)).fetchone():
                return False
            current = self._current_spaces(conn, sha, set())
            old_ids = self._delete_rows(conn, sha)
            conn.execute("DELETE FROM videos WHERE sha256=?", (sha,))
            conn.execute("DELETE FROM paths WHERE sha256=?", (sha,))
            conn.execute("DELETE FROM caption_cache WHERE sha256=?", (sha,))
            self._update_spaces(conn, current, {}, old_ids, [])
        self._drop_old_files()
        log.info("removed video %s from the library", sha[:12])
        return True

    def _delete_rows(self, conn: sqlite3.Connection, sha: str) -> list[int]:
        old_ids = [r["id"] for r in conn.execute("SELECT id FROM clips WHERE sha256=?", (sha,))]
        conn.executemany("DELETE FROM vectors WHERE clip_rowid=?", [(i,) for i in old_ids])
        conn.execute("DELETE FROM clips WHERE sha256=?", (sha,))
        conn.execute("DELETE FROM detections WHERE sha256=?", (sha,))
        return old_ids

    def _insert_clips(self, conn: sqlite3.Connection, payload: VideoPayload) -> list[int]:
        ids = []
        for clip, caption, text in zip(payload.clips, payload.captions, payload.texts, strict=True):
            cursor = conn.execute(
                "INSERT INTO clips (sha256, clip_id, start_s, end_s, shot_index, caption, text) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    payload.info.sha256,
                    clip.clip_id,
                    clip.start_s,
                    clip.end_s,
                    clip.shot_index,
                    caption,
                    text,
                ),
            )
            ids.append(cursor.lastrowid)
        for space, (_, vectors) in payload.vectors.items():
            conn.executemany(
                "INSERT INTO vectors (space, clip_rowid, vector) VALUES (?, ?, ?)",
                [
                    (space, rowid, l2_normalise(v)[0].tobytes())
                    for rowid, v in zip(ids, vectors, strict=True)
                ],
            )
        return ids

    def _insert_detections(
        self, conn: sqlite3.Connection, sha: str, detections: Iterable[Detection]
    ) -> None:
        conn.executemany(
            "INSERT INTO detections (sha256, kind, label, label_key, start_s, end_s, confidence, "
            "bbox, cues, person_id, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    sha,
                    d.kind,
                    d.label,
                    label_key(d.label),
                    d.start_s,
                    d.end_s,
                    d.confidence,
                    json.dumps(d.bbox) if d.bbox is not None else None,
                    d.cues,
                    d.person_id,
                    d.source,
                )
                for d in detections
            ],
        )

    # --- clips and detections ------------------------------------------------------------

    def clips(self, path_or_sha: str | os.PathLike) -> list[ClipRecord]:
        """A video's stored clips in time order."""
        sha = self.resolve(path_or_sha)
        rows = self._conn().execute(
            "SELECT * FROM clips WHERE sha256=? ORDER BY start_s, clip_id", (sha,)
        )
        return [_clip_record(row) for row in rows]

    def detections(
        self,
        path_or_sha: str | os.PathLike,
        start_s: float | None = None,
        end_s: float | None = None,
    ) -> list[Detection]:
        """A video's detections in time order, optionally only those overlapping a span."""
        sha = self.resolve(path_or_sha)
        rows = self._conn().execute(
            "SELECT * FROM detections WHERE sha256=? ORDER BY start_s, id", (sha,)
        )
        found = [_detection(row) for row in rows]
        if start_s is None and end_s is None:
            return found
        lo = start_s if start_s is not None else 0.0
        hi = end_s if end_s is not None else float("inf")
        return [d for d in found if spans_overlap(d.start_s, d.end_s, lo, hi)]

    def cached_caption(self, sha: str, key: str, start_s: float, end_s: float):
        """(caption, data) described earlier for this span and settings, or None."""
        row = (
            self._conn()
            .execute(
                "SELECT caption, data FROM caption_cache WHERE sha256=? AND settings_key=? "
                "AND start_s=? AND end_s=?",
                (sha, key, start_s, end_s),
            )
            .fetchone()
        )
        if row is None:
            return None
        return row["caption"], json.loads(row["data"]) if row["data"] else None

    def store_caption(
        self, sha: str, key: str, start_s: float, end_s: float, caption: str, data: Any
    ) -> None:
        """Keep one clip's VLM description, so an interrupted run resumes without redoing it."""
        with self._transaction(immediate=True) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO caption_cache VALUES (?, ?, ?, ?, ?, ?)",
                (sha, key, start_s, end_s, caption, json.dumps(data) if data else None),
            )

    # --- search --------------------------------------------------------------------------

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
        detections: dict[str, list[Detection]] = {}
        hits = []
        for score, rowid in pairs:
            row = rows.get(rowid)
            if row is None:  # removed by another process after our FAISS snapshot
                continue
            if row["sha256"] not in detections:
                detections[row["sha256"]] = self.detections(row["sha256"])
            inside = [
                d
                for d in detections[row["sha256"]]
                if spans_overlap(d.start_s, d.end_s, row["start_s"], row["end_s"])
            ]
            hits.append(
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
                )
            )
        return hits

    def stats(self) -> dict[str, Any]:
        """Counts per table and per vector space (with its index kind)."""
        conn = self._conn()
        counts = {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("videos", "clips", "detections")
        }
        spaces = {}
        for row in conn.execute("SELECT * FROM spaces"):
            total = conn.execute(
                "SELECT COUNT(*) FROM vectors WHERE space=?", (row["name"],)
            ).fetchone()[0]
            kind = "hnsw" if total > self.ctx.approximate_index_above else "flat"
            spaces[row["name"]] = {"dim": row["dim"], "vectors": total, "index": kind}
        return {**counts, "spaces": spaces, "home": str(self.home)}

    # --- FAISS spaces --------------------------------------------------------------------

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


def _clip_record(row: sqlite3.Row) -> ClipRecord:
    return ClipRecord(
        clip_id=row["clip_id"],
        start_s=row["start_s"],
        end_s=row["end_s"],
        shot_index=row["shot_index"],
        sha256=row["sha256"],
        caption=row["caption"] or "",
        text=row["text"] or "",
    )


def _detection(row: sqlite3.Row) -> Detection:
    return Detection(
        kind=row["kind"],
        label=row["label"],
        start_s=row["start_s"],
        end_s=row["end_s"],
        confidence=row["confidence"],
        bbox=json.loads(row["bbox"]) if row["bbox"] else None,
        cues=row["cues"] or "",
        person_id=row["person_id"],
        source=row["source"] or "perception",
    )
