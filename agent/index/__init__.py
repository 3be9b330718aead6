"""ClipIndex: clip vectors in FAISS, everything else about videos and clips in SQLite.

`ClipIndex` is built in layers, one concern per module, each on top of the one before:
`store` (SQLite schema, connections and rows) → `vectors` (FAISS files per vector space and
generation) → `search` (text, vector and example-clip search with filters) → `library`
(adding, replacing and removing videos). `records` holds what the library stores and returns.
"""

from agent.index.library import ClipIndex
from agent.index.records import ClipHit, ClipRecord, VideoPayload, VideoRecord
from agent.index.vectors import text_space, visual_space

__all__ = [
    "ClipHit",
    "ClipIndex",
    "ClipRecord",
    "VideoPayload",
    "VideoRecord",
    "text_space",
    "visual_space",
]
