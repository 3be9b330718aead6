"""Confidence calibration on the posed development set (devset.yaml), leave-one-file-out.

    python benchmarks/reliability_table.py          # the reliability tables (no file written)

The shipped calibration (points, thresholds, switches) is fitted on the everyday footage and
the shared media by `benchmarks/wild_eval.py --fit --write`; this script measures the same
kind of fit on the posed media alone.

Every development file (devset.yaml) is perceived once with raw rule scores
(`calibrate_confidence=False`). Each detection of an annotated kind is right or wrong. The fit
bins raw scores per rule, smooths each bin's precision (Beta(1, 1) prior) and makes the map
non-decreasing; a class whose detections were mostly wrong is switched off. The published
table is leave-one-file-out: each file's detections get the confidence of a calibration fitted
on the other files only, so the table measures calibration on footage it was not fitted on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from devset import load_devset  # benchmarks/ is the script's folder

from agent.context import Context
from agent.knowledge import load_knowledge_base
from agent.perception import Perceiver
from agent.perception.calibration import Outcome, fit_points, map_score, reliability, rule_key
from agent.perception.capabilities import capability
from agent.perception.runner import perceive_path

SCORE_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
REPORT_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# A rule's classes are switched off when at least this many of its development detections
# were wrong and its smoothed precision (Beta(1, 1) prior) stayed below the bar.
SWITCH_OFF_WRONG = 1
SWITCH_OFF_PRECISION = 0.35


def collect(items, ctx: Context, kb) -> list[tuple[str, str, str, Outcome]]:
    """(file, kind, class, outcome) of every scored development detection, raw scores."""
    raw_ctx = ctx.replace(calibrate_confidence=False)
    rows = []
    with Perceiver(raw_ctx) as perceiver:
        for item in items:
            started = time.perf_counter()
            detections = perceive_path(item.path, raw_ctx, kb, perceiver)
            for d in detections:
                right = item.judge(d.kind, d.label, d.start_s, d.end_s)
                if right is None:
                    continue
                rule = capability(kb.get(d.label), raw_ctx).rule or "?"
                key = rule_key(rule, person_tracks=bool(d.person_id))
                rows.append((item.name, d.kind, d.label, Outcome(key, d.confidence, right)))
            print(
                f"  perceived {item.name} ({len(detections)} detections, "
                f"{time.perf_counter() - started:.1f} s)",
                file=sys.stderr,
            )
    return rows


def fit(rows, kb) -> dict:
    """The calibration data from scored detections: each rule's points, and the classes
    switched off because their own rule's measured precision is poor."""
    by_rule: dict[str, list[Outcome]] = defaultdict(list)
    for _, _, _, outcome in rows:
        by_rule[outcome.key].append(outcome)
    rules, classes = {}, {}
    for key, outcomes in sorted(by_rule.items()):
        right = sum(o.right for o in outcomes)
        precision = (right + 1) / (len(outcomes) + 2)
        rules[key] = {"points": fit_points(outcomes, SCORE_EDGES), "n": len(outcomes)}
        if len(outcomes) - right < SWITCH_OFF_WRONG or precision >= SWITCH_OFF_PRECISION:
            continue
        for class_id in kb.ids():
            perception = kb.get(class_id).perception
            if perception is not None and perception.detector == key:
                classes[class_id] = {
                    "enabled": False,
                    "reason": (
                        f"switched off: its rule '{key}' was right in {right} of "
                        f"{len(outcomes)} detections on the development footage"
                    ),
                }
    return {"rules": rules, "classes": classes}


def apply(calibration: dict, outcome: Outcome) -> float:
    """The confidence a calibration gives a detection."""
    return map_score(calibration["rules"].get(outcome.key, {}).get("points"), outcome.raw)


def leave_one_file_out(rows, kb) -> list[tuple[str, float, bool]]:
    """(kind, confidence, right) with each file calibrated by a fit on the other files."""
    out = []
    for name in sorted({row[0] for row in rows}):
        calibration = fit([row for row in rows if row[0] != name], kb)
        for file, kind, label, outcome in rows:
            if file != name or label in calibration["classes"]:
                continue
            out.append((kind, apply(calibration, outcome), outcome.right))
    return out


def print_table(title: str, scored: list[tuple[str, float, bool]]) -> None:
    print(f"\n{title}")
    print(f"{'kind':<8} {'reported':>11} {'n':>4} {'precision':>10}")
    for kind in ("emotion", "gesture", "action", "all"):
        pairs = [(c, r) for k, c, r in scored if kind in (k, "all")]
        for lo, hi, n, precision in reliability(pairs, REPORT_EDGES):
            shown = "-" if precision is None else f"{precision:.2f}"
            print(f"{kind:<8} {lo:>4.1f}–{hi:<4.1f}  {n:>4} {shown:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    ctx = Context.from_env()
    kb = load_knowledge_base()
    with tempfile.TemporaryDirectory() as scratch:
        items = load_devset(Path(scratch))
        rows = collect(items, ctx.replace(home=Path(scratch) / "home"), kb)
    calibration = fit(rows, kb)
    print(f"{len(rows)} scored detections on {len({r[0] for r in rows})} development files")
    print(f"\n{'rule':<22} {'n':>4}  raw score -> precision")
    for key, entry in calibration["rules"].items():
        points = ", ".join(f"{x:.2f}->{y:.2f}" for x, y in entry["points"])
        print(f"{key:<22} {entry['n']:>4}  {points}")
    print("\nswitched off:")
    for label, entry in calibration["classes"].items():
        print(f"  {label:<16} {entry['reason']}")
    raw = [(kind, min(1.0, o.raw), o.right) for _, kind, _, o in rows]
    print_table("raw rule scores (before calibration)", raw)
    print_table("calibrated, leave-one-file-out", leave_one_file_out(rows, kb))


if __name__ == "__main__":
    main()
