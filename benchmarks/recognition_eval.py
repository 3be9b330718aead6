"""Recognition accuracy and speed, before (landmark rules only) and after (learned + rules).

    python benchmarks/recognition_eval.py [--out DIR]

The labelled development set (devset.yaml: ../shared/media plus generated large stills and a
scikit-image portrait) becomes one classification task per kind, run by the evaluation runner
(`agent.evaluation`) twice: with `learned_models=False, calibrate_confidence=False` (the
landmark rules as they were, raw scores, nothing switched off) and with the defaults (learned
models, calibrated confidences). Printed per kind: items, WAR, UAR, items with no detection;
then the precision of all detections of annotated kinds (false detections count against it);
then perception frames per second and indexing speed as a multiple of real time.

These files were looked at while the learned layer was built, so the numbers are
development numbers, not a held-out score.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

from devset import load_devset  # benchmarks/ is the script's folder

from agent.context import Context
from agent.evaluation.runner import run_task
from agent.evaluation.tasks import load_task
from agent.indexing import index_video
from agent.knowledge import load_knowledge_base
from agent.perception import Perceiver
from agent.perception.runner import perceive_path
from agent.video import is_image, probe

KINDS = ("emotion", "gesture", "action")
MODES = {
    "before (rules only)": {"learned_models": False, "calibrate_confidence": False},
    "after (learned + rules)": {},
}
SPEED_VIDEOS = ("scene_pedestrians_walking_opencv_vtest.avi", "action_yoga_askanything.mp4")


def write_tasks(items, folder: Path) -> dict[str, Path]:
    """One generic classification task file per kind, from the items' present events."""
    tasks = {}
    for kind in KINDS:
        rows = []
        for item in items:
            if kind not in item.annotated:
                continue
            for event in item.present:
                if event.label in item.ambiguous or _kind(event.label) != kind:
                    continue
                start = "" if event.start_s is None or is_image(item.path) else event.start_s
                end = "" if event.end_s is None or is_image(item.path) else event.end_s
                rows.append([str(item.path), event.label, start, end])
        annotations = folder / f"{kind}.csv"
        with open(annotations, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["media", "label", "start_s", "end_s"])
            writer.writerows(rows)
        task = folder / f"dev_{kind}.yaml"
        task.write_text(
            f"name: dev_{kind}\ntype: classification\nkind: {kind}\n"
            f"annotations: {annotations.name}\nmedia_root: /\nformat: generic\n"
            "backend: {name: perception}\n",
            encoding="utf-8",
        )
        tasks[kind] = task
    return tasks


_KB = load_knowledge_base(Context.from_env())


def _kind(label: str) -> str:
    return _KB.get(label).kind


def accuracy(tasks: dict[str, Path], ctx: Context, out: Path) -> dict[str, dict]:
    results = {}
    for kind, task_file in tasks.items():
        result = run_task(load_task(task_file), out / kind, ctx=ctx, progress=lambda _: None)
        results[kind] = result.metrics
    return results


def precision_and_fps(items, ctx: Context) -> tuple[int, int, float]:
    """(right, scored) detections of annotated kinds, and perception frames per second."""
    right = scored = frames = 0
    seconds = 0.0
    with Perceiver(ctx) as perceiver:
        for item in items:
            started = time.perf_counter()
            detections = perceive_path(item.path, ctx, _KB, perceiver)
            seconds += time.perf_counter() - started
            if is_image(item.path):
                frames += 1
            else:
                frames += max(1, round(probe(item.path, ctx).duration_s * ctx.sample_fps))
            for d in detections:
                verdict = item.judge(d.kind, d.label, d.start_s, d.end_s)
                if verdict is not None:
                    scored += 1
                    right += int(verdict)
    return right, scored, frames / max(seconds, 1e-9)


def indexing_speed(items, ctx: Context, home: Path) -> list[tuple[str, float, float]]:
    """(video, duration_s, duration_s / wall_s) of indexing from scratch."""
    out = []
    for item in items:
        if item.name not in SPEED_VIDEOS:
            continue
        run_ctx = ctx.replace(home=home / item.name)
        duration_s = probe(item.path, run_ctx).duration_s
        started = time.perf_counter()
        index_video(item.path, run_ctx, kb=_KB)
        out.append((item.name, duration_s, duration_s / (time.perf_counter() - started)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the evaluation outputs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        out = args.out or scratch / "eval"
        items = load_devset(scratch / "generated")
        tasks = write_tasks(items, scratch)
        table = {}
        for mode, settings in MODES.items():
            ctx = Context.from_env(home=scratch / "home" / str(len(table)), **settings)
            print(f"[{mode}] evaluating {len(items)} development files", file=sys.stderr)
            scores = accuracy(tasks, ctx, out / str(len(table)))
            right, scored, fps = precision_and_fps(items, ctx)
            speed = indexing_speed(items, ctx, scratch / "speed" / str(len(table)))
            table[mode] = (scores, right, scored, fps, speed)
    print(f"\n{'mode':<26} {'kind':<8} {'n':>3} {'WAR':>6} {'UAR':>6} {'no det.':>8}")
    for mode, (scores, *_rest) in table.items():
        for kind in KINDS:
            s = scores[kind]
            print(
                f"{mode:<26} {kind:<8} {s['n']:>3} {s['war']:>6.2f} {s['uar']:>6.2f} "
                f"{s.get('no_detection', 0):>8}"
            )
    print(f"\n{'mode':<26} {'precision':>18} {'frames/s':>9}  indexing (x real time)")
    for mode, (_scores, right, scored, fps, speed) in table.items():
        speeds = ", ".join(
            f"{name.split('_')[0]} {duration:.0f} s: {x:.2f}x" for name, duration, x in speed
        )
        share = right / max(scored, 1)
        print(f"{mode:<26} {right:>3}/{scored:<3} = {share:.2f}   {fps:>9.1f}  {speeds}")


if __name__ == "__main__":
    main()
