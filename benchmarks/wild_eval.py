"""Everyday footage: how often gestures, actions and expressions claimed there are really there.

    python benchmarks/wild_eval.py                 # figures of the shipped settings
    python benchmarks/wild_eval.py --fit           # + per-class thresholds fitted in and out
                                                   #   of sample (held out by source)
    python benchmarks/wild_eval.py --fit --write   # + rewrite agent/perception/calibration.yaml

Clips: ../shared/devset (75 everyday clips and photos, see its README) and ../shared/media
(benchmarks/devset.yaml), labelled as `wild_set.py` reads them. Each clip is perceived once
and its per-frame features are cached (BEHAVIOR_AGENT_WILD_CACHE, default
~/.cache/behavior-agent/wild_eval), keyed by the file's sha256 and a fingerprint of the
feature code and settings; rules, thresholds and calibration are re-run from the cache, so a
rule change costs seconds, a feature change one perception pass.

Figures (`wild_set.figures`): gesture precision on the gesture clips, recall of labelled
knowledge-base gestures, false gesture detections per minute of sign-free footage; expression
WAR/UAR over the seven basic classes and the share of neutral faces read neutral or nothing;
action recall and detections of absent actions; frames/s of the clips perceived in this run.

`--fit` fits, per gesture and action class, the switch-on score and minimum duration that
maximise right - 3 x wrong detections (see `wild_fit.py`: a class never seen is kept at its
strictest setting, one that claims falsely twice or more at every setting is switched off),
then reports it twice: in-sample (fitted on everything) and held out by source (each
`source_repo` scored with a fit on the other sources and the shared media). A class switched
off in the current calibration.yaml comes back only when its held-out precision earns it.
`--list` prints every judged gesture and action detection (held out with `--fit`).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from wild_emotion import fit_expressions, fit_talk, replaced
from wild_fit import (
    clamped,
    fit_classes,
    fold_fits,
    held_out,
    held_out_reliability,
    per_class,
    print_reliability,
    shipped_fit,
    tables,
    write_calibration,
)
from wild_set import emotion_reading, figures, load_clips, sha256

from agent.context import Context
from agent.knowledge import load_knowledge_base
from agent.perception import Perceiver
from agent.perception.rules.common import defaults
from agent.perception.runner import perceive_path
from agent.perception.session import PerceptionSession
from agent.video import is_image, probe

PERCEPTION = Path(__file__).resolve().parents[1] / "agent" / "perception"
CACHE = Path(
    os.environ.get(
        "BEHAVIOR_AGENT_WILD_CACHE", Path.home() / ".cache" / "behavior-agent" / "wild_eval"
    )
)
# What per-frame features depend on: the code that measures them and the sampling settings.
FEATURE_CODE = ("landmarks.py", "features.py", "face.py", "geometry.py", "people.py")
SETTINGS = ("sample_fps", "decode_max_side", "learned_models", "object_fps", "track_people")


def fingerprint(ctx: Context) -> str:
    digest = hashlib.sha256()
    files = [PERCEPTION / name for name in FEATURE_CODE] + sorted(
        (PERCEPTION / "learned").rglob("*.py")
    )
    for path in files:
        digest.update(path.read_bytes())
    # What the session records per frame (the learned models run on a worker thread).
    recording = (
        "add_frame",
        "_only_small_people",
        "_start_objects",
        "_start_expression",
        "_settle",
        "_track_people",
    )
    for method in (getattr(PerceptionSession, name) for name in recording):
        digest.update(inspect.getsource(method).encode())
    digest.update(repr(defaults()["landmarks"]).encode())
    digest.update(repr([getattr(ctx, name) for name in SETTINGS]).encode())
    return digest.hexdigest()[:16]


def perceive_all(clips, ctx: Context, kb) -> dict[str, dict]:
    """Per clip: its recorded features (cached), duration, and perception time."""
    CACHE.mkdir(parents=True, exist_ok=True)
    code = fingerprint(ctx)
    records, perceiver = {}, None
    try:
        for clip in clips:
            cached = CACHE / f"{sha256(clip.path)[:20]}-{code}.pkl"
            if cached.is_file():
                records[clip.name] = pickle.loads(cached.read_bytes())
                records[clip.name]["fresh"] = False
                continue
            perceiver = perceiver or Perceiver(ctx)
            records[clip.name] = record = _perceive(clip.path, ctx, kb, perceiver)
            cached.write_bytes(pickle.dumps(record))
            record["fresh"] = True
            print(f"  perceived {clip.name} in {record['seconds']:.1f} s", file=sys.stderr)
    finally:
        if perceiver is not None:
            perceiver.close()
    return records


def _perceive(path: Path, ctx: Context, kb, perceiver) -> dict:
    sessions: list[PerceptionSession] = []

    def keep(*args, **options):
        sessions.append(PerceptionSession(*args, **options))
        return sessions[-1]

    started = time.perf_counter()
    perceive_path(path, ctx, kb, perceiver, session_factory=keep)
    seconds = time.perf_counter() - started
    session = sessions[0]
    still = is_image(path)
    learned = perceiver.learned
    return {
        "frames": session.frames,
        "people": session.people,
        "still": still,
        "duration_s": 0.0 if still else probe(path, ctx).duration_s,
        "seconds": seconds,
        "learned": {task: bool(getattr(learned, task)) for task in ("expression", "objects")},
    }


class _Recorded:
    """Stands in for the Perceiver when a session is re-run from recorded features."""

    def __init__(self, ctx: Context, learned: dict[str, bool]):
        self.ctx = ctx
        self.learned = SimpleNamespace(**{k: (True if v else None) for k, v in learned.items()})

    def reset(self) -> None:
        return None


def replay(record: dict, kb, ctx: Context) -> PerceptionSession:
    """A session holding a clip's recorded features, ready for `finish` or `score_classes`."""
    session = PerceptionSession(_Recorded(ctx, record["learned"]), kb, ctx, still=record["still"])
    session.frames = record["frames"]
    session.people = record["people"]
    return session


def shipped(clips, records, kb, ctx: Context) -> list:
    """(clip, detections, duration_s) with the settings as they ship."""
    out = []
    for clip in clips:
        record = records[clip.name]
        detections = clamped(replay(record, kb, ctx).finish(), record)
        out.append((clip, detections, record["duration_s"]))
    return out


def frames_per_s(records: dict) -> tuple[float, int]:
    fresh = [r for r in records.values() if r["fresh"]] or list(records.values())
    frames = sum(len(r["frames"]) for r in fresh)
    return frames / max(sum(r["seconds"] for r in fresh), 1e-9), len(fresh)


def print_figures(columns: dict[str, dict]) -> None:
    """One row per figure, one column per way of scoring."""
    rows = (
        ("gesture precision (gesture clips)", "gesture_precision", "gesture_right", "gesture_dets"),
        ("gesture recall (labelled KB events)", None, "gesture_found", "gesture_events"),
        ("gesture false / min (sign-free)", "signfree_per_min", "signfree_false", "signfree_min"),
        ("shared media signs (in-sample)", None, "media_gesture_found", "media_gesture_events"),
        ("emotion WAR (7 basic)", "emotion_war", None, "emotion_n"),
        ("emotion UAR (7 basic)", "emotion_uar", None, "emotion_n"),
        ("neutral faces read neutral/none", None, "neutral_ok", "neutral_n"),
        ("non-neutral share of neutral videos", "neutral_expr_share", None, "neutral_videos"),
        ("talking clips with talk >= half", None, "talk_found", "talk_clips"),
        ("silent clips with any talk", None, "talk_false", "silent_clips"),
        ("action recall (labelled KB)", None, "action_found", "action_events"),
        ("absent-action detections", None, "action_absent", "action_clips"),
    )
    names = list(columns)
    print(f"\n{'figure':<38}" + "".join(f"{n:>22}" for n in names))
    for title, value, top, bottom in rows:
        cells = []
        for name in names:
            f = columns[name]
            if value is None:
                cells.append(f"{f[top]}/{f[bottom]}")
            elif top is None:
                cells.append(f"{f[value]:.2f} (n={f[bottom]})")
            elif value == "signfree_per_min":
                cells.append(f"{f[value]:.1f} ({f[top]} in {f[bottom]:.1f} min)")
            else:
                cells.append(f"{f[value]:.2f} ({f[top]}/{f[bottom]})")
        print(f"{title:<38}" + "".join(f"{c:>22}" for c in cells))


def list_detections(results) -> None:
    """Every judged gesture and action detection (held out where fitted): what went wrong."""
    print(f"\n{'verdict':<7} {'clip':<40} {'class':<14} {'span s':<13} cue")
    for clip, detections, _ in results:
        for d in detections:
            verdict = clip.judge(d.kind, d.label, d.start_s, d.end_s)
            if d.kind in ("gesture", "action") and verdict is not None:
                span = f"{d.start_s:.1f}-{d.end_s:.1f}"
                shown = "right" if verdict else "WRONG"
                print(f"{shown:<7} {clip.name[:40]:<40} {d.label:<14} {span:<13} {d.cues[:60]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="fit thresholds in and out of sample")
    parser.add_argument("--write", action="store_true", help="with --fit: write calibration.yaml")
    parser.add_argument("--no-media", action="store_true", help="leave ../shared/media out")
    parser.add_argument(
        "--list", action="store_true", help="list the judged gesture and action detections"
    )
    args = parser.parse_args()
    ctx = Context.from_env()
    kb = load_knowledge_base(ctx)
    with tempfile.TemporaryDirectory() as scratch:
        clips = load_clips(Path(scratch), media=not args.no_media)
        print(f"{len(clips)} clips; cache {CACHE}", file=sys.stderr)
        records = perceive_all(clips, ctx.replace(home=Path(scratch) / "home"), kb)
    results = shipped(clips, records, kb, ctx)
    columns = {"shipped": figures(results, ctx)}
    fps, fresh = frames_per_s(records)
    if args.fit:
        fitted = fit(clips, records, kb, ctx)
        columns["fit in-sample"] = figures(fitted["in_sample_results"], ctx)
        results = fitted["held_out_results"]
        columns["held out by source"] = figures(results, ctx)
    if args.list:
        list_detections(results)
    print_figures(columns)
    print(f"\nframes/s: {fps:.1f} over the {fresh} clips timed (perceived without cache)")
    if not args.fit:
        return
    held = fitted["held_per_class"]
    print(f"\n{'class':<16} {'shipped fit':<44} held-out right/judged")
    for class_id in sorted(set(fitted["shipped"]) | set(held)):
        entry = fitted["shipped"].get(class_id, "knowledge-base params")
        if isinstance(entry, dict) and "reason" in entry:
            entry = "off"
        right, judged = held.get(class_id, (0, 0))
        print(f"{class_id:<16} {str(entry):<44} {right}/{judged}")
    print("\nreliability of calibrated confidences, each source calibrated by the others:")
    print_reliability(held_out_reliability(fitted["shipped_results"], fitted["rules"]))
    if args.write:
        path = write_calibration(fitted["shipped"], fitted["shipped_results"], fitted["rules"])
        print(f"\nwrote {path}")


def fit(clips, records, kb, ctx: Context) -> dict:
    """Fits in sample and per held-out source, their results, and the fit to ship."""
    raw_ctx = ctx.replace(calibrate_confidence=False)
    sessions = {c.name: replay(records[c.name], kb, raw_ctx) for c in clips}
    scored = {name: s.score_classes() for name, s in sessions.items()}
    table = tables(clips, records, scored, kb, sessions)
    in_sample = fit_classes(table, {c.name for c in clips}, kb)
    folds = fold_fits(table, clips, kb)
    everyone = {source: in_sample for source in folds}
    held_out_results = held_out(clips, records, sessions, scored, folds)
    held = per_class(held_out_results)
    ship = shipped_fit(in_sample, held)
    rules = {k: v[3] for s in scored.values() for k, v in s.items()}
    expressions = fit_expressions(
        clips,
        lambda c: (clamped(replay(records[c.name], kb, ctx).finish(), records[c.name]),
                   records[c.name]["duration_s"]),
        kb,
        lambda detections, duration_s: emotion_reading(detections, duration_s, ctx),
    )  # fmt: skip
    talk = fit_talk(clips, records, kb)
    print(f"expressions, neutral first, fitted in-sample: {expressions['chosen']}")
    print(f"talk, fitted in-sample: {talk['chosen']}")

    def speech(results, fold):
        results = replaced(results, expressions[fold], "emotion")
        return replaced(results, talk[fold], "action", "talk")

    return {
        "in_sample_results": speech(
            held_out(clips, records, sessions, scored, everyone), "in_sample"
        ),
        "held_out_results": speech(held_out_results, "held_out"),
        "held_per_class": held,
        "shipped": ship,
        "shipped_results": held_out(
            clips, records, sessions, scored, {source: ship for source in folds}
        ),
        "rules": rules,
    }


if __name__ == "__main__":
    main()
