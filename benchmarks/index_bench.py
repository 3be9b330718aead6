"""Clip-index benchmark: search latency and build time, and indexing speed on a real video.

For 10k, 100k and 1M random unit 384-d vectors (MiniLM's size) it times single-query search
(p50/p99, k=10) of the exact FAISS index the library uses, of its HNSW index (the one it
switches to above `approximate_index_above`, same parameters) and of a NumPy brute-force
baseline in the same run, plus each index's build time and HNSW recall@10 against exact. With
`--library` it also times `ClipIndex.search_vector` end to end (FAISS + SQLite rows) at the
sizes up to 100k. Last, it indexes the shared pedestrians clip with the perception backend
and reports the wall time as a multiple of the video's duration.

Memory stays within a few GB at 1M (one float32 copy for NumPy, one inside the index built
at a time). Run: `.venv/bin/python benchmarks/index_bench.py [--sizes 10000,100000,1000000]`.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from agent.context import Context
from agent.index import ClipIndex, VideoPayload, text_space
from agent.index.vectors import HNSW_M
from agent.state import Clip, VideoInfo

DIM = 384
K = 10
PEDESTRIANS = "scene_pedestrians_walking_opencv_vtest.avi"
DATA = {"kind": "random"}


def random_unit_vectors(count: int, seed: int) -> np.ndarray:
    """Unit rows, generated in chunks so the peak stays at one float32 copy."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, DIM), np.float32)
    for start in range(0, count, 100_000):
        chunk = rng.standard_normal((min(100_000, count - start), DIM), dtype=np.float32)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        out[start : start + len(chunk)] = chunk
    return out


def clustered_unit_vectors(count: int, seed: int, clusters: int = 2_000) -> np.ndarray:
    """Unit rows around random centres (cosine ~0.6 to their centre), closer to how sentence
    embeddings of many similar clips are spread than isotropic noise is."""
    rng = np.random.default_rng(seed)
    centres = random_unit_vectors(clusters, seed=seed + 7)
    out = np.empty((count, DIM), np.float32)
    for start in range(0, count, 100_000):
        n = min(100_000, count - start)
        noise = rng.standard_normal((n, DIM), dtype=np.float32) * (1.3 / np.sqrt(DIM))
        chunk = centres[rng.integers(0, clusters, n)] + noise
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        out[start : start + n] = chunk
    return out


def latency_ms(search, queries: np.ndarray) -> tuple[float, float, list[np.ndarray]]:
    """p50 and p99 of single-query calls, and each call's ids."""
    search(queries[:1])  # warm-up (page-in, thread pools)
    times, results = [], []
    for query in queries:
        started = time.perf_counter()
        ids = search(query[None, :])
        times.append((time.perf_counter() - started) * 1000)
        results.append(ids)
    times.sort()
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    return statistics.median(times), p99, results


def numpy_search(vectors: np.ndarray):
    def search(query: np.ndarray) -> np.ndarray:
        scores = vectors @ query[0]
        top = np.argpartition(-scores, K)[:K]
        return top[np.argsort(-scores[top])]

    return search


def faiss_search(index: faiss.Index):
    def search(query: np.ndarray) -> np.ndarray:
        return index.search(query, K)[1][0]

    return search


def build(vectors: np.ndarray, kind: str, budget_s: float) -> tuple[faiss.Index, float, int]:
    """The index as the library builds it (`ClipIndex._build`: same type, params, threads).

    Vectors go in 50k at a time; an HNSW build that passes `budget_s` stops early and the
    caller reports its rate instead of searching a partial index.
    """
    with tempfile.TemporaryDirectory() as home:
        threshold = -1 if kind == "hnsw" else len(vectors) + 1
        library = ClipIndex(Context(home=Path(home), approximate_index_above=threshold))
        index = library._build(DIM, np.zeros(0, np.int64), None)
        library.close()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    added = 0
    for start in range(0, len(vectors), 50_000):
        chunk = vectors[start : start + 50_000]
        index.add_with_ids(chunk, np.arange(start, start + len(chunk), dtype=np.int64))
        added += len(chunk)
        if time.perf_counter() - started > budget_s and added < len(vectors):
            break
    build_s = time.perf_counter() - started
    faiss.omp_set_num_threads(1)  # single-query searches, as in ClipIndex
    return index, build_s, added


def recall(found: list[np.ndarray], exact: list[np.ndarray]) -> float:
    hits = sum(len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact, strict=True))
    return hits / (K * len(exact))


def bench_size(count: int, queries_n: int, rows: list, library: bool, budget_s: float) -> None:
    make = clustered_unit_vectors if DATA["kind"] == "clustered" else random_unit_vectors
    vectors = make(count, seed=count)
    queries = make(queries_n, seed=1)
    p50, p99, exact = latency_ms(numpy_search(vectors), queries)
    rows.append((count, "numpy brute force", None, p50, p99, 1.0))
    for kind in ("flat", "hnsw"):
        index, build_s, added = build(vectors, kind, budget_s)
        name = "faiss flat (exact)" if kind == "flat" else f"faiss hnsw M={HNSW_M}"
        if added < count:
            projected_s = build_s * count / added
            rows.append(
                (
                    count,
                    f"{name} (build cut at {added:,}; ~{projected_s:.0f} s)",
                    build_s,
                    float("nan"),
                    float("nan"),
                    float("nan"),
                )
            )
        else:
            p50, p99, found = latency_ms(faiss_search(index), queries)
            rows.append((count, name, build_s, p50, p99, recall(found, exact)))
        print_row(rows[-1], file=sys.stderr)
        del index
    if library and count <= 100_000:
        rows.append(library_row(vectors, queries, exact))
    del vectors


def library_row(vectors: np.ndarray, queries: np.ndarray, exact) -> tuple:
    """`ClipIndex.search_vector` end to end (FAISS + SQLite rows) on a library of `vectors`."""
    with tempfile.TemporaryDirectory() as home:
        ctx = Context(home=Path(home))
        index = ClipIndex(ctx)
        space = text_space("bench")
        per_video = 10_000
        started = time.perf_counter()
        for number, start in enumerate(range(0, len(vectors), per_video)):
            chunk = vectors[start : start + per_video]
            fake = Path(home) / f"video{number}.bin"
            fake.write_bytes(number.to_bytes(8, "little"))
            info = VideoInfo(
                path=str(fake),
                duration_s=10.0 * len(chunk),
                fps=25.0,
                frame_count=1,
                width=1,
                height=1,
                sha256=f"{number:064x}",
            )
            clips = [
                Clip(clip_id=i, start_s=10.0 * i, end_s=10.0 * (i + 1)) for i in range(len(chunk))
            ]
            texts = [""] * len(chunk)
            index.begin_video(info, {})
            index.put_video(VideoPayload(info, {}, clips, texts, texts, [], {space: ("1", chunk)}))
        build_s = time.perf_counter() - started

        def search(query: np.ndarray) -> np.ndarray:
            hits = index.search_vector(query[0], K, space=space)
            return np.asarray([h.clip_id + per_video * int(h.sha256, 16) for h in hits])

        p50, p99, found = latency_ms(search, queries)
        index.close()
    return (len(vectors), "ClipIndex.search_vector", build_s, p50, p99, recall(found, exact))


def indexing_row(shared_media: Path) -> str:
    """Wall time to index the pedestrians clip with the perception backend (fresh library)."""
    from agent.indexing import index_video

    video = shared_media / PEDESTRIANS
    if not video.is_file():
        return f"indexing: {video} not found (set BEHAVIOR_AGENT_SHARED_MEDIA)"
    with tempfile.TemporaryDirectory() as home:
        ctx = Context.from_env(home=Path(home), backend="perception")
        started = time.perf_counter()
        record = index_video(video, ctx)
        wall_s = time.perf_counter() - started
    return (
        f"indexing {PEDESTRIANS} ({record.duration_s:.1f} s, {record.clip_count} clips, "
        f"{record.detection_count} detections, sample_fps={ctx.sample_fps}, perception "
        f"backend): {wall_s:.1f} s wall = {wall_s / record.duration_s:.2f}× real time"
    )


def print_row(row: tuple, file=sys.stdout) -> None:
    count, name, build_s, p50, p99, rec = row
    build = f"{build_s:8.2f}" if build_s is not None else f"{'-':>8}"
    print(f"{count:>9,}  {name:<26} {build}  {p50:8.3f}  {p99:8.3f}  {rec:9.3f}", file=file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200, help="queries per size (<=100k)")
    parser.add_argument("--queries-1m", type=int, default=50, help="queries at sizes > 100k")
    parser.add_argument("--library", action="store_true", help="also time ClipIndex end to end")
    parser.add_argument("--skip-indexing", action="store_true")
    parser.add_argument(
        "--hnsw-budget-s", type=float, default=900.0, help="stop an HNSW build after this long"
    )
    default_media = Path(__file__).resolve().parents[2] / "shared" / "media"
    parser.add_argument(
        "--media",
        type=Path,
        default=Path(os.environ.get("BEHAVIOR_AGENT_SHARED_MEDIA", default_media)),
    )
    parser.add_argument("--data", choices=["random", "clustered"], default="random")
    args = parser.parse_args()
    DATA["kind"] = args.data
    rows: list = []
    for count in (int(s) for s in args.sizes.split(",")):
        queries = args.queries if count <= 100_000 else args.queries_1m
        bench_size(count, queries, rows, args.library, args.hnsw_budget_s)
    print(
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; k={K}, {DIM}-d {args.data} unit vectors, "
        "single-query latency"
    )
    header = ("vectors", "method", "build_s", "p50_ms", "p99_ms", "recall@10")
    print("{:>9}  {:<26} {:>8}  {:>8}  {:>8}  {:>9}".format(*header))
    for row in rows:
        print_row(row)
    if not args.skip_indexing:
        print(indexing_row(args.media))


if __name__ == "__main__":
    main()
