"""Accuracy of the offline perception on ../shared/media against its manifest.csv.

Prints, per labelled item, what was expected and what was detected, then the targets of
issue 5 and totals. Dataset label names are mapped to knowledge-base ids here (through the
classes' `dataset_labels` plus a few manifest spellings), never inside the detectors.

    .venv/bin/python benchmarks/perception_eval.py [--media DIR]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from agent.context import Context
from agent.knowledge import load_knowledge_base
from agent.perception import Perceiver, perceive_image, perceive_video
from agent.state import Detection

DEFAULT_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
# Manifest spellings that are not dataset_labels of a class.
EXTRA_LABELS = {"thumb_up": "thumbs_up", "closed_fist": "fist", "anger": "angry"}


def label_map(kb) -> dict[str, str]:
    mapping = {}
    for dataset in ("HaGRID", "CREMA-D"):
        mapping.update(kb.dataset_label_map(dataset))
    mapping.update(EXTRA_LABELS)
    return mapping


def found(dets: list[Detection], label: str, start_s: float, end_s: float) -> list[Detection]:
    return [d for d in dets if d.label == label and d.start_s < end_s and d.end_s > start_s]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    args = parser.parse_args()
    ctx = Context.from_env()
    kb = load_knowledge_base(ctx)
    mapping = label_map(kb)
    with open(args.media / "manifest.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    results: dict[str, list[Detection]] = {}
    with Perceiver(ctx) as perceiver:
        for name in dict.fromkeys(
            r["file"] for r in rows if r["label_type"] in ("gesture", "emotion")
        ):
            started = time.perf_counter()
            path = args.media / name
            still = name.endswith(".png")
            dets = (
                perceive_image(path, ctx, kb, perceiver)
                if still
                else perceive_video(path, ctx, kb, perceiver=perceiver)
            )
            results[name] = dets
            print(f"\n{name}  ({time.perf_counter() - started:.1f} s)")
            for d in dets:
                span = "still" if still else f"{d.start_s:5.2f}-{d.end_s:5.2f}"
                print(f"    {span:>11}  {d.kind:<8} {d.label:<15} {d.confidence:.2f}  {d.cues}")

    print("\nper labelled item (expected vs detected)")
    hits = total = 0
    for row in rows:
        if row["label_type"] not in ("gesture", "emotion"):
            continue
        expected = mapping.get(row["label"], row["label"])
        dets = results[row["file"]]
        if row["start_s"]:
            start_s, end_s = float(row["start_s"]), float(row["end_s"])
            match = found(dets, expected, start_s, end_s)
            seen = sorted(
                {
                    d.label
                    for d in dets
                    if d.kind == row["label_type"] and d.start_s < end_s and d.end_s > start_s
                }
            )
        else:
            start_s = end_s = 0.0
            top = [d for d in dets if d.kind == row["label_type"]]
            top = sorted(top, key=lambda d: -d.confidence)[:1]
            match = [d for d in top if d.label == expected]
            seen = [d.label for d in top]
        ok = bool(match)
        hits += ok
        total += 1
        where = f"{start_s:.1f}-{end_s:.1f} s" if row["start_s"] else "still"
        print(
            f"  {'OK  ' if ok else 'MISS'} {row['file'][:48]:<48} {where:>11}  "
            f"expected {expected:<12} detected {seen}"
        )
    print(f"  labelled items correct: {hits}/{total}")

    print("\nissue 5 targets")
    passed = []
    signs = [r for r in rows if r["file"].endswith(".png") and r["label_type"] == "gesture"]
    sign_ok = all(
        sorted([d for d in results[r["file"]] if d.kind == "gesture"], key=lambda d: -d.confidence)[
            :1
        ]
        and sorted(
            [d for d in results[r["file"]] if d.kind == "gesture"], key=lambda d: -d.confidence
        )[0].label
        == mapping.get(r["label"], r["label"])
        for r in signs
    )
    passed.append(("every labelled hand-sign still correct", sign_ok))
    thumb = results.get("gesture_thumb_up_mediapipe_samples_test_video.mp4", [])
    ups = [d for d in thumb if d.label == "thumbs_up"]
    passed.append(("thumbs_up detected inside 2.2-7.8 s", bool(found(ups, "thumbs_up", 2.2, 7.8))))
    passed.append(("thumbs_up not before 1.3 s", all(d.start_s >= 1.3 for d in ups)))
    clip = results.get("emotion_neutral_then_happy_pyfeat_single_face.mp4", [])
    passed.append(("neutral->happy clip: happy after 0.6 s", bool(found(clip, "happy", 0.6, 2.43))))
    passed.append(
        (
            "neutral->happy clip: not strongly happy in 0-0.5 s",
            not [d for d in found(clip, "happy", 0.0, 0.5) if d.confidence >= 0.5],
        )
    )
    crema = results.get("emotion_happy_cremad_1001_DFA_HAP_XX.mp4", [])
    passed.append(("CREMA-D happy clip: happy", bool(found(crema, "happy", 0.0, 1.907))))
    for name, ok in passed:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"  targets met: {sum(ok for _, ok in passed)}/{len(passed)}")
    return 0 if all(ok for _, ok in passed) else 1


if __name__ == "__main__":
    raise SystemExit(main())
