"""The SQLite side of the clip library: schema, per-thread connections, rows of videos, clips,
detections and captions.

Layout under `ctx.home`: `library.sqlite` holds the videos, the paths seen for each content
hash, clips, detections, the clip vectors as blobs and one row per vector space. SQLite is the
source of truth (the FAISS files of `agent.index.vectors` are caches of it).

Concurrency: per-thread connections in WAL mode and `BEGIN IMMEDIATE` for writes, so that
several processes (CLI and web app) can share one library.
"""

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.events import spans_overlap
from agent.index.records import ClipRecord, VideoRecord
from agent.state import Detection, ObjectSighting
from agent.video import sha256_file

SCHEMA_VERSION = 1
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
-- Hybrid search looks at captioned clips only; most libraries (perception backend) have none.
CREATE INDEX IF NOT EXISTS clips_captioned ON clips(sha256, start_s) WHERE caption != '';
CREATE TABLE IF NOT EXISTS detections (
    id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL,
    label_key TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL, confidence REAL,
    bbox TEXT, cues TEXT, person_id INTEGER, source TEXT);
CREATE INDEX IF NOT EXISTS detections_time ON detections(sha256, start_s);
CREATE INDEX IF NOT EXISTS detections_label ON detections(label_key);
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, label TEXT NOT NULL, start_s REAL NOT NULL,
    end_s REAL NOT NULL, score REAL, bbox TEXT NOT NULL, best_s REAL, count INTEGER,
    frames INTEGER);
CREATE INDEX IF NOT EXISTS objects_time ON objects(sha256, start_s);
CREATE TABLE IF NOT EXISTS vectors (
    space TEXT NOT NULL, clip_rowid INTEGER NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (space, clip_rowid));
CREATE TABLE IF NOT EXISTS spaces (
    name TEXT PRIMARY KEY, dim INTEGER NOT NULL, generation INTEGER NOT NULL,
    model_version TEXT);
-- One vector per text that names ONE thing seen (a detected class, an object), per space:
-- what hybrid search (agent.index.hybrid) compares a query with. Shared by every video that
-- saw the thing, and kept when videos go (one row per label: a few hundred at most).
CREATE TABLE IF NOT EXISTS thing_vectors (
    space TEXT NOT NULL, kind TEXT NOT NULL, label_key TEXT NOT NULL, label TEXT NOT NULL,
    text TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (space, kind, label_key));
CREATE TABLE IF NOT EXISTS caption_cache (
    sha256 TEXT NOT NULL, settings_key TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL,
    caption TEXT NOT NULL, data TEXT, PRIMARY KEY (sha256, settings_key, start_s, end_s));
CREATE TABLE IF NOT EXISTS stretches (
    sha256 TEXT NOT NULL, plan_key TEXT NOT NULL, idx INTEGER NOT NULL, start_s REAL NOT NULL,
    end_s REAL NOT NULL, result TEXT NOT NULL, PRIMARY KEY (sha256, plan_key, idx));
"""


def cannot_open(db_path: Path, error: Exception) -> BehaviorAgentError:
    """The error for a library folder that cannot be created, read or written."""
    return BehaviorAgentError(
        f"Cannot open the clip library at {db_path} ({error}). Check that the "
        "folder is writable, or point BEHAVIOR_AGENT_HOME at another folder."
    )


class LibraryStore:
    """The library's SQLite rows under `ctx.home`: connections, transactions, reads by video."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.home = Path(ctx.home)
        self.db_path = self.home / "library.sqlite"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._derived = threading.local()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            # executescript commits on its own; every statement in it is idempotent.
            self._conn().executescript(_SCHEMA)
            self._conn().execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except (OSError, sqlite3.Error) as error:
            raise cannot_open(self.db_path, error) from None

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

    def _version(self) -> tuple[int, int]:
        """Moves whenever the rows may have changed: a commit by another connection (another
        process or thread) moves `data_version`, one by this connection its `total_changes`."""
        conn = self._conn()
        return conn.total_changes, conn.execute("PRAGMA data_version").fetchone()[0]

    def derived(self, name: str, build: Callable[[], Any]) -> Any:
        """`build()`, kept (per thread, like the connections) until the library changes: what
        every search would otherwise read again (the one-thing vectors, a video's clips)."""
        version = self._version()
        entry = getattr(self._derived, name, None)
        if entry is None or entry[0] != version:
            entry = (version, build())
            setattr(self._derived, name, entry)
        return entry[1]

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
        self._derived = threading.local()  # a new connection starts its counts afresh

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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

    def known_path(self, path: str | os.PathLike) -> VideoRecord | None:
        """The record of the video last seen at `path` with the file's current size and
        modification time (no hashing), or None."""
        path = Path(path).expanduser()
        if not path.is_file():
            return None
        stat = path.stat()
        row = (
            self._conn()
            .execute(
                "SELECT v.* FROM paths p JOIN videos v ON v.sha256 = p.sha256 "
                "WHERE p.path=? AND p.size_bytes=? AND p.mtime_ns=?",
                (str(path.resolve()), stat.st_size, stat.st_mtime_ns),
            )
            .fetchone()
        )
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
        if fields["status"] != "complete":
            fields["checkpointed_s"] = self.stretch_progress(row["sha256"])[1]
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
        return self.detections_of(self.resolve(path_or_sha), start_s, end_s)

    def detections_of(
        self, sha: str | None, start_s: float | None = None, end_s: float | None = None
    ) -> list[Detection]:
        """`detections` of a known sha256; a span is narrowed in SQL (a search reads the few
        detections of each hit's clip, not all of its video's)."""
        if start_s is None and end_s is None:
            rows = self._conn().execute(
                "SELECT * FROM detections WHERE sha256=? ORDER BY start_s, id", (sha,)
            )
            return [_detection(row) for row in rows]
        lo = start_s if start_s is not None else 0.0
        hi = end_s if end_s is not None else float("inf")
        rows = self._conn().execute(
            "SELECT * FROM detections WHERE sha256=? AND start_s <= ? AND end_s >= ? "
            "ORDER BY start_s, id",
            (sha, hi, lo),
        )
        found = [_detection(row) for row in rows]
        return [d for d in found if spans_overlap(d.start_s, d.end_s, lo, hi)]

    def objects(
        self,
        path_or_sha: str | os.PathLike,
        start_s: float | None = None,
        end_s: float | None = None,
    ) -> list[ObjectSighting]:
        """The objects seen in a video (agent.perception.sightings) in time order, optionally
        only those overlapping a span."""
        sha = self.resolve(path_or_sha)
        lo = start_s if start_s is not None else 0.0
        hi = end_s if end_s is not None else float("inf")
        rows = self._conn().execute(
            "SELECT * FROM objects WHERE sha256=? ORDER BY start_s, id", (sha,)
        )
        found = [_sighting(row) for row in rows]
        return [s for s in found if spans_overlap(s.start_s, s.end_s, lo, hi)]

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

    def finished_stretches(self, sha: str, plan_key: str) -> dict[int, str]:
        """The checkpointed results (JSON, by stretch number) of a video being indexed with
        the stretch plan `plan_key`; a checkpoint of another plan is not returned."""
        rows = self._conn().execute(
            "SELECT idx, result FROM stretches WHERE sha256=? AND plan_key=? ORDER BY idx",
            (sha, plan_key),
        )
        return {row["idx"]: row["result"] for row in rows}

    def store_stretch(
        self, sha: str, plan_key: str, idx: int, start_s: float, end_s: float, result: str
    ) -> None:
        """Checkpoint one finished stretch (its result as JSON); checkpoints of other plans
        for this video go, as they can no longer be resumed."""
        with self._transaction(immediate=True) as conn:
            conn.execute("DELETE FROM stretches WHERE sha256=? AND plan_key!=?", (sha, plan_key))
            conn.execute(
                "INSERT OR REPLACE INTO stretches VALUES (?, ?, ?, ?, ?, ?)",
                (sha, plan_key, idx, start_s, end_s, result),
            )

    def stretch_progress(self, sha: str) -> tuple[int, float]:
        """(stretches checkpointed, seconds of video they cover) of a video being indexed."""
        row = (
            self._conn()
            .execute(
                "SELECT COUNT(*) AS n, COALESCE(SUM(end_s - start_s), 0) AS s FROM stretches "
                "WHERE sha256=?",
                (sha,),
            )
            .fetchone()
        )
        return int(row["n"]), float(row["s"])

    def stats(self) -> dict[str, Any]:
        """Counts per table and per vector space (with its index kind)."""
        conn = self._conn()
        counts = {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("videos", "clips", "detections", "objects")
        }
        spaces = {}
        for row in conn.execute("SELECT * FROM spaces"):
            total = conn.execute(
                "SELECT COUNT(*) FROM vectors WHERE space=?", (row["name"],)
            ).fetchone()[0]
            kind = "hnsw" if total > self.ctx.approximate_index_above else "flat"
            spaces[row["name"]] = {"dim": row["dim"], "vectors": total, "index": kind}
        return {**counts, "spaces": spaces, "home": str(self.home)}


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


def _sighting(row: sqlite3.Row) -> ObjectSighting:
    return ObjectSighting(
        label=row["label"],
        start_s=row["start_s"],
        end_s=row["end_s"],
        score=row["score"],
        bbox=json.loads(row["bbox"]),
        best_s=row["best_s"],
        count=row["count"],
        frames=row["frames"],
    )
