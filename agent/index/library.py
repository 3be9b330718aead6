"""ClipIndex: the clip library's face; adding, replacing and removing a video in one transaction.

A video's clips, detections and vectors land in ONE SQLite transaction, together with the
move of every vector space it touches to its next generation (`agent.index.vectors`). Reads
come from `agent.index.store`, search from `agent.index.search`.
"""

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.context import Context
from agent.embed import l2_normalise
from agent.events import label_key
from agent.index.records import VideoPayload, VideoRecord
from agent.index.search import ClipSearch
from agent.state import Detection, ObjectSighting, VideoInfo

log = logging.getLogger(__name__)


class ClipIndex(ClipSearch):
    """The clip library under `ctx.home`: add, search, list and remove indexed videos."""

    def __init__(self, ctx: Context | None = None, embedder=None) -> None:
        super().__init__(ctx or Context.from_env(), embedder)
        self._write_lock = threading.Lock()

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
        """Replace a video's clips, detections, objects and vectors in one transaction; mark it
        complete."""
        info = payload.info
        for space, (_, vectors) in payload.vectors.items():
            if len(vectors) != len(payload.clips):
                raise ValueError(f"{space}: {len(vectors)} vectors for {len(payload.clips)} clips")
        with self._write_lock, self._transaction(immediate=True) as conn:
            current = self._current_spaces(conn, info.sha256, set(payload.vectors))
            old_ids = self._delete_rows(conn, info.sha256)
            new_ids = self._insert_clips(conn, payload)
            self._insert_detections(conn, info.sha256, payload.detections)
            self._insert_objects(conn, info.sha256, payload.objects)
            self._insert_things(conn, payload)
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
            # The stretch checkpoints served their purpose: the video is complete.
            conn.execute("DELETE FROM stretches WHERE sha256=?", (info.sha256,))
        self._drop_old_files()
        return self.video(info.sha256)

    def remove(self, path_or_sha: str | os.PathLike) -> bool:
        """Delete a video with its clips, detections, objects, vectors and known paths; False if
        absent."""
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
            conn.execute("DELETE FROM stretches WHERE sha256=?", (sha,))
            self._update_spaces(conn, current, {}, old_ids, [])
        self._drop_old_files()
        log.info("removed video %s from the library", sha[:12])
        return True

    def _delete_rows(self, conn: sqlite3.Connection, sha: str) -> list[int]:
        old_ids = [r["id"] for r in conn.execute("SELECT id FROM clips WHERE sha256=?", (sha,))]
        conn.executemany("DELETE FROM vectors WHERE clip_rowid=?", [(i,) for i in old_ids])
        conn.execute("DELETE FROM clips WHERE sha256=?", (sha,))
        conn.execute("DELETE FROM detections WHERE sha256=?", (sha,))
        conn.execute("DELETE FROM objects WHERE sha256=?", (sha,))
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

    def _insert_things(self, conn: sqlite3.Connection, payload: VideoPayload) -> None:
        """The one-thing texts and their vectors (shared by every video that saw the thing)."""
        for space, vectors in payload.thing_vectors.items():
            if len(vectors) != len(payload.things):
                raise ValueError(
                    f"{space}: {len(vectors)} vectors for {len(payload.things)} things"
                )
            conn.executemany(
                "INSERT OR REPLACE INTO thing_vectors (space, kind, label_key, label, text, "
                "vector) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (space, kind, label_key(label), label, text, l2_normalise(v)[0].tobytes())
                    for (kind, label, text), v in zip(payload.things, vectors, strict=True)
                ],
            )

    def _insert_objects(
        self, conn: sqlite3.Connection, sha: str, sightings: Iterable[ObjectSighting]
    ) -> None:
        conn.executemany(
            "INSERT INTO objects (sha256, label, start_s, end_s, score, bbox, best_s, count, "
            "frames) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    sha,
                    s.label,
                    s.start_s,
                    s.end_s,
                    s.score,
                    json.dumps(s.bbox),
                    s.best_s,
                    s.count,
                    s.frames,
                )
                for s in sightings
            ],
        )
