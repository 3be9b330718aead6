"""Retrieval quality and speed of `behavior-agent search` on labelled footage.

Queries are generated from the labels of ../shared/media (benchmarks/devset.yaml) and
../shared/devset (its three manifests): for every labelled class, four paraphrases (the class
name, a synonym, a synonym in a sentence, the definition's first sentence); for every video,
queries about classes nobody labelled there and the detectors did not see (three from the
knowledge base, three about nothing in it). Printed:

- R@1 / R@5 of class queries whose class was detected in the video, searched within the video
  (`--video`) and in the whole library: a hit counts when its video is labelled with the class
  and its span overlaps a labelled span of it;
- the share of top hits whose span has IoU >= 0.5 with the labelled span (videos only);
- the share of absent-class queries answered "no matching moment";
- search latency p50 / p99 on a synthetic library of `--clips` clips (in-process, query
  embedding included).

Indexing is slow on a small CPU, so the library lives in `--library` (outside the repository) and
is reused between runs; run this under `nice`. Whatever `agent` is importable is measured, so
the code before hybrid search is measured with PYTHONPATH pointing at a checkout of it; `--json`
keeps the numbers and `--before FILE` prints them beside the current ones.

Run: `nice -n 5 .venv/bin/python benchmarks/retrieval_eval.py --library ~/retrieval-lib`
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
SHARED = Path(
    os.environ.get("BEHAVIOR_AGENT_SHARED_MEDIA", HERE.parent.parent / "shared" / "media")
)
DEVSET = SHARED.parent / "devset"
GESTURE_IDS = {
    "face_touching": "face_touch",
    "nodding": "nod",
    "open_palm": "open_palm",
    "fist": "fist",
    "pointing": "pointing",
    "waving": "wave",
    "raising_hand": "hand_raise",
    "head_shake": "head_shake",
}
# Things no knowledge-base class, detector or object model names: scenery, and everyday
# activities near some class in meaning but not of it.
NOTHING_SEEN = [
    "fireworks in the night sky",
    "snow falling on pine trees",
    "a waterfall in a forest",
    "a rainbow over the sea",
    "a volcano erupting at night",
    "someone playing chess",
    "a person knitting a scarf",
    "a man fixing a car engine",
    "a woman watering the plants",
]
ABSENT_PER_VIDEO = 3
NOTHING_PER_VIDEO = 3


@dataclass
class Item:
    """One labelled file: its present classes with spans (None = throughout)."""

    path: Path
    present: dict[str, list[tuple[float | None, float | None]]]
    ambiguous: set[str]


# --- labels -------------------------------------------------------------------------------


def load_items() -> list[Item]:
    items: dict[Path, Item] = {}

    def add(path: Path, label: str, start=None, end=None) -> None:
        item = items.setdefault(path, Item(path, {}, set()))
        item.present.setdefault(label, []).append((_num(start), _num(end)))

    spec = yaml.safe_load((HERE / "devset.yaml").read_text(encoding="utf-8"))
    for name, entry in spec["media"].items():
        path = SHARED / name
        items.setdefault(path, Item(path, {}, set(entry.get("ambiguous", []))))
        for event in entry.get("present", []):
            add(path, event["label"], event.get("start_s"), event.get("end_s"))
    for row in _rows("actions"):
        path = DEVSET / "actions" / row["file"]
        items.setdefault(path, Item(path, {}, set()))
        if row["action_id"] != "other":
            add(path, row["action_id"], row["action_start_s"], row["action_end_s"])
        if row["faces"] == "clear" and row["emotion"] in {"happy", "neutral", "sad", "angry"}:
            add(path, row["emotion"])
    for row in _rows("emotions"):
        add(DEVSET / "emotions" / row["file"], row["label"], row["start_s"], row["end_s"])
    for row in _rows("gestures"):
        path = DEVSET / "gestures" / row["file"]
        items.setdefault(path, Item(path, {}, set()))
        if row["label"] in GESTURE_IDS:
            add(path, GESTURE_IDS[row["label"]], row["start_s"], row["end_s"])
    return [item for item in items.values() if item.path.is_file()]


def _rows(kind: str) -> list[dict[str, str]]:
    with open(DEVSET / kind / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _num(value) -> float | None:
    return None if value in (None, "") else float(value)


def paraphrases(item) -> list[str]:
    """Four ways to ask for one class."""
    from agent.knowledge.matching import first_sentence

    synonyms = [s for s in item.synonyms if s.lower() != item.name.lower()] or [item.name]
    one, other = synonyms[min(1, len(synonyms) - 1)], synonyms[len(synonyms) // 2]
    sentence = {
        "emotion": f"when does the person look {other}",
        "gesture": f"the moment someone does a {other}",
        "action": f"when is someone {other}",
    }[item.kind]
    return [item.name, one, sentence, first_sentence(item.definition).rstrip(".")]


# --- searching, before and after ---------------------------------------------------------


class Searcher:
    """Hybrid search when this `agent` has it; plain vector search over clips otherwise."""

    def __init__(self, library, kb) -> None:
        try:
            from agent.index.hybrid import HybridSearch
        except ImportError:
            self.hybrid = None
        else:
            self.hybrid = HybridSearch(library, kb)
        self.library = library

    def __call__(self, text: str, k: int, video=None) -> list[tuple[str, float, float]]:
        """[(sha256, span start, span end)] best first; empty = no matching moment."""
        if self.hybrid is not None:
            hits = self.hybrid.retrieve(text, k, video=video).hits
            return [(h.sha256, h.span_start_s, h.span_end_s) for h in hits]
        return [(h.sha256, h.start_s, h.end_s) for h in self.library.search(text, k, video=video)]


def index_all(items: list[Item], ctx, skip: bool) -> dict[Path, object]:
    from agent.index import ClipIndex
    from agent.indexing import LazyPerceiver, index_video

    records = {}
    with ClipIndex(ctx) as library, LazyPerceiver(ctx) as perceiver:
        for number, item in enumerate(items, start=1):
            record = library.video(item.path)
            if not (skip and record is not None and record.status == "complete"):
                print(f"indexing {number}/{len(items)} {item.path.name}", file=sys.stderr)
                record = index_video(item.path, ctx, perceiver=perceiver, index=library)
            records[item.path] = record
    return records


def quality(items, records, ctx, kb, whole_library: bool = True, failures: bool = False) -> dict:
    from agent.events import label_key
    from agent.index import ClipIndex

    library = ClipIndex(ctx)
    search = Searcher(library, kb)
    labelled: dict[str, dict[str, list]] = {}  # class -> sha -> spans
    for item in items:
        record = records[item.path]
        for label, spans in item.present.items():
            labelled.setdefault(label, {})[record.sha256] = [
                _span(s, e, record.duration_s) for s, e in spans
            ]
    rows = {name: [] for name in ("video_r1", "video_r5", "lib_r1", "lib_r5", "iou", "iou_timed")}
    rows["absent"] = []
    for item in items:
        record = records[item.path]
        detected = {label_key(d.label) for d in library.detections(record.sha256)}
        for label in sorted(item.present):
            if label not in kb or label not in detected:
                continue
            truth = labelled[label]
            for query in paraphrases(kb.get(label)):
                in_video = search(query, 5, video=record.sha256)
                rows["video_r1"].append(_relevant(in_video[:1], truth))
                rows["video_r5"].append(_relevant(in_video, truth))
                if whole_library:
                    everywhere = search(query, 5)
                    rows["lib_r1"].append(_relevant(everywhere[:1], truth))
                    rows["lib_r5"].append(_relevant(everywhere, truth))
                if record.duration_s > 0:
                    good = bool(in_video) and _best_iou(in_video[0], truth[record.sha256]) >= 0.5
                    rows["iou"].append(good)
                    if failures and not good:
                        _print_failure(item, record, label, query, in_video, truth, library)
                    if all(start is not None for start, _ in item.present[label]):
                        rows["iou_timed"].append(good)
        for query in absent_queries(item, detected, kb):
            rows["absent"].append(not search(query, 5, video=record.sha256))
    library.close()
    return {name: _share(values) for name, values in rows.items()} | {
        f"n_{name}": len(values) for name, values in rows.items()
    }


def _print_failure(item, record, label, query, hits, truth, library) -> None:
    """One top hit whose span misses the labelled one (IoU < 0.5), with what was detected."""
    from agent.events import label_key

    seen = [
        f"{d.start_s:.2f}-{d.end_s:.2f}"
        for d in library.detections(record.sha256)
        if label_key(d.label) == label
    ]
    hit = f"{hits[0][1]:.2f}-{hits[0][2]:.2f}" if hits else "none"
    spans = " ".join(f"{s:.2f}-{e:.2f}" for s, e in truth[record.sha256])
    print(
        f"IoU<0.5 {item.path.parent.name}/{item.path.name} ({record.duration_s:.2f} s) "
        f"{label!r} q={query!r}: hit {hit}, labelled {spans}, detected {' '.join(seen)}",
        file=sys.stderr,
    )


def absent_queries(item: Item, detected: set[str], kb) -> list[str]:
    """A few classes neither labelled nor seen in the video, and a few things never seen."""
    skip = set(item.present) | item.ambiguous | detected
    absent = [c for c in kb.ids() if c not in skip]
    absent.sort(key=lambda c: hashlib.sha256(f"{item.path.name}:{c}".encode()).hexdigest())
    # A synonym for the first ones, a description (matched by embedding alone) for the last.
    chosen = [paraphrases(kb.get(c))[1] for c in absent[: ABSENT_PER_VIDEO - 1]]
    chosen += [paraphrases(kb.get(c))[3] for c in absent[ABSENT_PER_VIDEO - 1 : ABSENT_PER_VIDEO]]
    start = int(hashlib.sha256(item.path.name.encode()).hexdigest(), 16) % len(NOTHING_SEEN)
    return chosen + [
        NOTHING_SEEN[(start + i) % len(NOTHING_SEEN)] for i in range(NOTHING_PER_VIDEO)
    ]


def _span(start_s, end_s, duration_s) -> tuple[float, float]:
    return (start_s or 0.0, end_s if end_s is not None else duration_s)


def _relevant(hits, truth: dict[str, list]) -> bool:
    return any(sha in truth and any(a <= e and b >= s for s, e in truth[sha]) for sha, a, b in hits)


def _best_iou(hit, spans) -> float:
    _, a, b = hit
    best = 0.0
    for s, e in spans:
        union = max(b, e) - min(a, s)
        if union > 0:
            best = max(best, max(0.0, min(b, e) - max(a, s)) / union)
    return best


def _share(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def sweep(items, records, ctx, kb) -> None:
    """In-video R@1/R@5 and absent-query precision as each floor of hybrid search moves (the
    other at its shipped value): how the floors were chosen."""
    from agent.index import hybrid

    shipped = hybrid.CLASS_MATCH_FLOOR, hybrid.TEXT_MATCH_FLOOR
    print("| floor | value | R@1 in video | R@5 in video | no match on absent |")
    print("|---|---:|---:|---:|---:|")
    for name, values in (
        ("CLASS_MATCH_FLOOR", (0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7)),
        ("TEXT_MATCH_FLOOR", (0.3, 0.4, 0.45, 0.5, 0.55, 0.6)),
    ):
        for value in values:
            setattr(hybrid, name, value)
            got = quality(items, records, ctx, kb, whole_library=False)
            print(f"| {name} | {value} | {got['video_r1']} | {got['video_r5']} | {got['absent']} |")
        hybrid.CLASS_MATCH_FLOOR, hybrid.TEXT_MATCH_FLOOR = shipped


# --- latency --------------------------------------------------------------------------------


def latency(clips: int, kb, embedder, repeat: int) -> dict:
    """p50/p99 of one search on a synthetic library of `clips` clips (100 per video)."""
    from agent.context import Context
    from agent.index import ClipIndex, VideoPayload, text_space
    from agent.state import Clip, Detection, VideoInfo

    rng = np.random.default_rng(0)
    ids = kb.ids()
    per_video = 100
    with tempfile.TemporaryDirectory(prefix="retrieval-latency-") as scratch:
        ctx = Context(home=Path(scratch) / "home")
        library = ClipIndex(ctx, embedder=embedder)
        fields = getattr(VideoPayload, "__dataclass_fields__", {})
        things = [(kb.get(c).kind, c, kb.get(c).name) for c in ids]
        thing_vectors = embedder.embed([t for _, _, t in things])
        for number in range(max(1, clips // per_video)):
            path = Path(scratch) / f"v{number}.mp4"
            path.write_bytes(rng.bytes(1024))
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            info = VideoInfo(
                path=str(path),
                duration_s=per_video * 10.0,
                fps=25.0,
                frame_count=25_000,
                width=64,
                height=48,
                sha256=sha,
            )
            library.begin_video(info, {"format": 0})
            clip_list = [
                Clip(clip_id=i, start_s=i * 10.0, end_s=i * 10.0 + 10) for i in range(per_video)
            ]
            detections = []
            for clip in clip_list:
                for label in rng.choice(ids, size=int(rng.integers(0, 4)), replace=False):
                    start = clip.start_s + float(rng.uniform(0, 8))
                    detections.append(
                        Detection(
                            kind=kb.get(label).kind,
                            label=str(label),
                            start_s=start,
                            end_s=start + float(rng.uniform(0.5, 4)),
                            confidence=float(rng.uniform(0.3, 0.9)),
                        )
                    )
            vectors = rng.normal(size=(per_video, embedder.dim)).astype(np.float32)
            extra = {}
            if "things" in fields:
                used = {d.label for d in detections}
                mine = [t for t in things if t[1] in used]
                extra = {
                    "things": mine,
                    "thing_vectors": {
                        text_space(embedder.name): thing_vectors[[things.index(t) for t in mine]]
                    },
                }
            library.put_video(
                VideoPayload(
                    info,
                    {"format": 0},
                    clip_list,
                    [""] * per_video,
                    ["x"] * per_video,
                    detections,
                    {text_space(embedder.name): (embedder.version, vectors)},
                    **extra,
                )
            )
        search = Searcher(library, kb)
        queries = [paraphrases(kb.get(c))[i % 4] for i, c in enumerate(ids)] + NOTHING_SEEN
        search(queries[0], 5)  # warm: FAISS file read, first embedding
        times = []
        for _ in range(repeat):
            for query in queries:
                started = time.perf_counter()
                search(query, 5)
                times.append((time.perf_counter() - started) * 1000)
        library.close()
    times.sort()
    return {
        "clips": (clips // per_video) * per_video,
        "p50_ms": round(statistics.median(times), 1),
        "p99_ms": round(times[min(len(times) - 1, int(0.99 * len(times)))], 1),
        "n_searches": len(times),
    }


# --- output ---------------------------------------------------------------------------------

ROWS = [
    ("video_r1", "R@1, class queries, within the video", "n_video_r1"),
    ("video_r5", "R@5, class queries, within the video", "n_video_r5"),
    ("lib_r1", "R@1, class queries, whole library", "n_lib_r1"),
    ("lib_r5", "R@5, class queries, whole library", "n_lib_r5"),
    ("iou", "top hit span IoU >= 0.5 (videos, within the video)", "n_iou"),
    ("iou_timed", "  the same, labels with a timed span (not 'throughout')", "n_iou_timed"),
    ("absent", '"no matching moment" on absent-class queries', "n_absent"),
    ("p50_ms", "search p50 ms", "clips"),
    ("p99_ms", "search p99 ms", "clips"),
]


def print_table(after: dict, before: dict | None) -> None:
    head = "| metric | n | " + ("before | " if before else "") + "now |"
    print(head)
    print("|---|---:|" + ("---:|" if before else "") + "---:|")
    for key, title, count in ROWS:
        n = after.get(count, "")
        n = f"{n} clips" if count == "clips" else n
        cells = ([_cell(before.get(key))] if before else []) + [_cell(after.get(key))]
        print(f"| {title} | {n} | " + " | ".join(cells) + " |")


def _cell(value) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--library", type=Path, required=True, help="Library folder (reused).")
    parser.add_argument("--skip-index", action="store_true", help="Use what the library holds.")
    parser.add_argument("--clips", type=int, default=10_000, help="Latency library size.")
    parser.add_argument("--repeat", type=int, default=3, help="Rounds of latency queries.")
    parser.add_argument("--json", type=Path, help="Write the numbers here.")
    parser.add_argument("--before", type=Path, help="A --json file of an earlier run to compare.")
    parser.add_argument("--sweep", action="store_true", help="Also sweep the match floors.")
    parser.add_argument("--only-latency", action="store_true", help="Skip the quality part.")
    parser.add_argument(
        "--failures", action="store_true", help="List top hits with span IoU < 0.5 (stderr)."
    )
    parser.add_argument("--no-latency", action="store_true", help="Skip the latency part.")
    options = parser.parse_args()

    from agent.context import Context
    from agent.embed import load_text_embedder
    from agent.knowledge import load_knowledge_base

    ctx = Context.from_env().replace(home=options.library.expanduser().resolve())
    kb = load_knowledge_base(ctx)
    kb.embedder = load_text_embedder(ctx)
    numbers = {}
    if not options.only_latency:
        items = load_items()
        records = index_all(items, ctx, options.skip_index)
        if options.sweep:
            sweep(items, records, ctx, kb)
        numbers = quality(items, records, ctx, kb, failures=options.failures)
    if not options.no_latency:
        numbers |= latency(options.clips, kb, load_text_embedder(ctx), options.repeat)
    if options.json:
        options.json.write_text(json.dumps(numbers, indent=2), encoding="utf-8")
    before = json.loads(options.before.read_text(encoding="utf-8")) if options.before else None
    print_table(numbers, before)


if __name__ == "__main__":
    main()
