"""Per-class thresholds and calibration fitted on everyday footage, in and out of sample.

Shared by `wild_eval.py`. For every gesture and action class and every clip whose labels
cover its kind, each candidate (switch-on score, minimum duration) is counted once as right
and wrong detections (`tables`); a fit on any set of clips is then a sum over them. The class
keeps the candidate with the most right - `WRONG_COST` x wrong detections (the lowest such
setting): a class never seen on the footage is kept at the strictest setting needed to make
no false claim there; one that claims falsely (twice or more) at every setting is switched off.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml
from wild_set import MEDIA_SOURCE, UNLABELLED_ACTIONS  # benchmarks/ is the script's folder

from agent.events import clamp_detections
from agent.perception.calibration import Outcome, fit_points, map_score, reliability, rule_key
from agent.perception.capabilities import calibration as current_calibration
from agent.perception.rules.common import Scored
from agent.perception.smoothing import segments

CALIBRATION = Path(__file__).resolve().parents[1] / "agent" / "perception" / "calibration.yaml"
FITTED_KINDS = ("gesture", "action")
# A wrong detection costs three right ones: a kept setting is right at least 3 times in 4.
WRONG_COST = 3.0
SCORES = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
DURATIONS_S = (0.3, 0.6, 1.0, 1.5, 2.0)
# Switched off only when even its best setting claimed it falsely at least this often (one
# false claim at the strictest setting keeps the class, at that setting).
SWITCH_OFF_WRONG = 2
SCORE_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# A class off today comes back when its held-out detections were right this often.
EARN_PRECISION = 0.7
EARN_RIGHT = 2


def _combos(params: dict) -> list[tuple[float, float]]:
    scores = sorted({*SCORES, float(params["min_score"])})
    durations = sorted({*DURATIONS_S, float(params["min_duration_s"])})
    return [(s, d) for s in scores for d in durations]


def _spans(session, record, scored_class, min_score: float, min_duration_s: float):
    _item, params, result, _rule = scored_class
    times = np.array([f.time_s for f in session.frames], dtype=float)
    found = segments(
        times,
        result.scores,
        on=min_score,
        off=min_score * params["off_ratio"],
        min_duration_s=0.0 if record["still"] else min_duration_s,
        merge_gap_s=params["merge_gap_s"],
        step_s=session._step_s(),
        whole_footage=session.whole_footage,
    )
    if record["still"]:
        return [(0.0, 0.0) for _ in found]
    end = record["duration_s"] or np.inf
    return [(start_s, min(end_s, end)) for _, _, start_s, end_s in found]


def tables(clips, records, scored, kb, sessions) -> dict:
    """{(clip, class): {(score, duration): (right, wrong)}} for the fitted kinds."""
    out = {}
    for clip in clips:
        for class_id, entry in scored[clip.name].items():
            kind = entry[0].kind
            if kind not in FITTED_KINDS or clip.events(kind) is None:
                continue
            # Talk is scored by wild_emotion.py on its own labels, not fitted here.
            if class_id in clip.ambiguous or class_id in UNLABELLED_ACTIONS:
                continue
            counts = {}
            for combo in _combos(entry[1]):
                spans = _spans(sessions[clip.name], records[clip.name], entry, *combo)
                right = sum(bool(clip.judge(kind, class_id, s, e)) for s, e in spans)
                counts[combo] = (right, len(spans) - right)
            out[(clip.name, class_id)] = counts
    return out


def kept_switches(kb) -> dict:
    """Today's switches of classes this fit does not cover (expressions)."""
    classes = current_calibration().get("classes", {})
    return {
        k: v
        for k, v in classes.items()
        if k in kb.ids() and kb.get(k).kind not in FITTED_KINDS and v.get("enabled") is False
    }


def fit_classes(table: dict, train: set[str], kb) -> dict:
    """{class: {min_score, min_duration_s}} or {class: {enabled: False, reason}}."""
    totals: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    defaults_of: dict[str, tuple] = {}
    for (clip_name, class_id), counts in table.items():
        if clip_name not in train:
            continue
        for combo, (right, wrong) in counts.items():
            totals[class_id][combo][0] += right
            totals[class_id][combo][1] += wrong
    out = dict(kept_switches(kb))
    for class_id, combos in sorted(totals.items()):
        params = kb.get(class_id).perception.params or {}
        defaults_of[class_id] = params
        best = max(
            combos.items(),
            key=lambda kv: (kv[1][0] - WRONG_COST * kv[1][1], kv[1][0], -kv[0][0], -kv[0][1]),
        )
        (score, duration), (right, wrong) = best
        if right - WRONG_COST * wrong < 0:
            # Kept despite a false claim: at the strictest setting that does no worse.
            ties = [c for c, (r, w) in combos.items() if r == right and w == wrong]
            score, duration = max(ties)
        wrong_anywhere = max(w for _, w in combos.values())
        if right == 0 and wrong_anywhere == 0:
            continue
        if right - WRONG_COST * wrong < 0 and wrong >= SWITCH_OFF_WRONG:
            if kb.get(class_id).perception.detector == "gait":
                # Walkers tracked across a static scene are measured apart (gait:tracks).
                out[class_id] = {"from_landmarks": False}
                continue
            out[class_id] = {
                "enabled": False,
                "reason": (
                    "switched off: on the everyday development footage every setting of its "
                    f"rule was wrong more than once in 4, {wrong} times at best "
                    f"({wrong_anywhere} at worst)"
                ),
            }
            continue
        out[class_id] = {"min_score": float(score), "min_duration_s": float(duration)}
    return out


def fold_fits(table: dict, clips, kb) -> dict[str, dict]:
    """For each source: the fit on every clip of the other sources. The shared media (posed
    demos, not a target) are in every training set, so their column is in-sample."""
    sources = sorted({c.source for c in clips} - {MEDIA_SOURCE})
    folds = {
        source: fit_classes(table, {c.name for c in clips if c.source != source}, kb)
        for source in sources
    }
    folds[MEDIA_SOURCE] = fit_classes(table, {c.name for c in clips}, kb)
    return folds


def clamped(detections, record: dict) -> list:
    """Detections clamped to the video, as the perception runner gives them."""
    return detections if record["still"] else clamp_detections(detections, record["duration_s"])


def fitted_detections(clip, record, session, scored_classes, fitted: dict) -> list:
    """A clip's detections from raw scores with fitted params and switches applied."""
    overrides = {k: v for k, v in fitted.items() if "enabled" not in v}
    kept = {k: v for k, v in scored_classes.items() if "enabled" not in fitted.get(k, {})}
    for class_id, (item, params, result, rule) in kept.items():
        if overrides.get(class_id, {}).get("from_landmarks") is False:
            # The rule reads nothing from landmarks then (only tracked people count).
            kept[class_id] = (item, params, Scored.empty(len(result.scores)), rule)
    return clamped(session.detections_of(kept, overrides), record)


def held_out(clips, records, sessions, scored, folds) -> list:
    """(clip, detections, duration_s), each clip scored with the fit that left its source out."""
    return [
        (
            clip,
            fitted_detections(
                clip, records[clip.name], sessions[clip.name], scored[clip.name], folds[clip.source]
            ),
            records[clip.name]["duration_s"],
        )
        for clip in clips
    ]


def per_class(results) -> dict[str, tuple[int, int]]:
    """{class: (right, judged)} of gesture and action detections."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for clip, detections, _ in results:
        for d in detections:
            verdict = clip.judge(d.kind, d.label, d.start_s, d.end_s)
            if d.kind in FITTED_KINDS and verdict is not None:
                out[d.label][0] += int(verdict)
                out[d.label][1] += 1
    return {k: tuple(v) for k, v in out.items()}


def shipped_fit(in_sample: dict, held: dict[str, tuple[int, int]]) -> dict:
    """The in-sample fit, with classes off today kept off unless held out they earned it."""
    today = current_calibration().get("classes", {})
    out = dict(in_sample)
    for class_id, entry in today.items():
        if entry.get("enabled") is not False or "enabled" in out.get(class_id, {}):
            continue
        right, judged = held.get(class_id, (0, 0))
        if right >= EARN_RIGHT and right / judged >= EARN_PRECISION:
            continue
        out[class_id] = {
            "enabled": False,
            "reason": (
                f"switched off: held out by source it was right in {right} of {judged} "
                "detections on the everyday development footage"
            ),
        }
    return out


def write_calibration(fit: dict, results, rules_of: dict[str, str]) -> Path:
    """calibration.yaml from a fit and the raw detections it gives (with their verdicts)."""
    rules = calibration_points(results, rules_of)
    classes = {k: v for k, v in fit.items() if "enabled" in v}
    thresholds = {k: v for k, v in fit.items() if "enabled" not in v}
    n = sum(entry["n"] for entry in rules.values())
    header = (
        "# Confidence calibration and per-class thresholds of the perception rules, fitted by\n"
        "# `python benchmarks/wild_eval.py --fit --write` on ../shared/devset and\n"
        f"# ../shared/media ({n} scored detections). Do not edit by hand: refit.\n"
    )
    body = {"classes": classes, "rules": rules, "thresholds": thresholds}
    CALIBRATION.write_text(header + yaml.safe_dump(body, sort_keys=True, width=100), "utf-8")
    return CALIBRATION


def calibration_points(results, rules_of: dict[str, str]) -> dict[str, dict]:
    """Per rule key: isotonic (raw score, precision) points from judged raw detections."""
    by_rule: dict[str, list[Outcome]] = defaultdict(list)
    for clip, detections, _ in results:
        for d in detections:
            verdict = clip.judge(d.kind, d.label, d.start_s, d.end_s)
            if verdict is None:
                continue
            key = rule_key(rules_of[d.label], bool(d.person_id))
            by_rule[key].append(Outcome(key, d.confidence, verdict))
    return {
        key: {"points": fit_points(outcomes, SCORE_EDGES), "n": len(outcomes)}
        for key, outcomes in sorted(by_rule.items())
    }


REPORT_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def print_reliability(scored: list[tuple[str, float, bool]]) -> None:
    """Reported-confidence buckets against measured precision, per kind and overall."""
    print(f"\n{'kind':<8} {'reported':>11} {'n':>4} {'precision':>10}")
    for kind in ("emotion", "gesture", "action", "all"):
        pairs = [(c, r) for k, c, r in scored if kind in (k, "all")]
        for lo, hi, n, precision in reliability(pairs, REPORT_EDGES):
            shown = "-" if precision is None else f"{precision:.2f}"
            print(f"{kind:<8} {lo:>4.1f}-{hi:<4.1f}  {n:>4} {shown:>10}")


def held_out_reliability(results, rules_of: dict[str, str]) -> list[tuple[str, float, bool]]:
    """(kind, calibrated confidence, right) of every judged detection, each source's
    confidences mapped by a calibration fitted on the other sources' detections."""
    out = []
    for source in sorted({clip.source for clip, _, _ in results}):
        rules = calibration_points([r for r in results if r[0].source != source], rules_of)
        for clip, detections, _ in results:
            if clip.source != source:
                continue
            for d in detections:
                verdict = clip.judge(d.kind, d.label, d.start_s, d.end_s)
                if verdict is None:
                    continue
                key = rule_key(rules_of[d.label], bool(d.person_id))
                points = rules.get(key, {}).get("points")
                out.append((d.kind, map_score(points, d.confidence), verdict))
    return out
