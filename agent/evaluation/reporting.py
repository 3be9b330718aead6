"""Writes a run's results: metrics.json, predictions.jsonl, summary.md, run.json, the PNG."""

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and in workers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agent.evaluation.predictors import ABSENT, outcome_of  # noqa: E402

MAX_LISTED = 20


def write_outputs(
    out_dir: Path, task, scores: dict[str, Any], records: list[dict], run_info: dict[str, Any]
) -> None:
    """All result files of one run into `out_dir` (the cache folder stays beside them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "metrics.json", scores)
    _write_json(out_dir / "run.json", run_info)
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            row = {k: v for k, v in record.items() if k not in {"key", "details"}}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    if "confusion_matrix" in scores:
        plot_confusion(scores["confusion_matrix"], task.name, out_dir / "confusion_matrix.png")
    (out_dir / "summary.md").write_text(summary_markdown(task, scores, records, run_info))


def plot_confusion(confusion: dict[str, Any], title: str, path: Path) -> Path:
    """Row-normalised colours with the raw counts written in each cell."""
    matrix = np.array(confusion["matrix"], dtype=float)
    rows, columns = confusion["rows"], confusion["columns"]
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = max(4.0, 0.6 * len(columns) + 2)
    figure, axes = plt.subplots(figsize=(size, max(3.5, 0.55 * len(rows) + 2)))
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    axes.set_yticks(range(len(rows)), rows)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(f"{title}: confusion matrix")
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if shares[row, column] > 0.5 else "black"
        axes.text(column, row, int(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def summary_markdown(task, scores: dict[str, Any], records: list[dict], run: dict) -> str:
    """A human-readable page: metrics, counts, failures, unparsed answers and provenance."""
    lines = [f"# {task.name}: {task.type} on {scores['backend']}", ""]
    if task.spec.description:
        lines += [task.spec.description.strip(), ""]
    lines += ["| metric | value |", "| --- | --- |"]
    for key, value in scores.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lines.append(f"| {key} | {_fmt(value)} |")
        elif value is None and key == "false_claim_rate":
            lines.append(f"| {key} | n/a (no negative item could be checked) |")
    positives = [r for r in records if not r.get("negative")]
    if scores.get("per_class_recall"):
        lines += ["", "Per-class recall:", "", "| class | recall | items |", "| --- | --- | --- |"]
        counts = {label: sum(r["gold"] == label for r in positives) for label in task.scored_labels}
        for label, recall in scores["per_class_recall"].items():
            lines.append(f"| {label} | {_fmt(recall)} | {counts.get(label, 0)} |")
    if "confusion_matrix" in scores:
        lines += ["", "![confusion matrix](confusion_matrix.png)"]
    failed = [r for r in records if r.get("error")]
    if failed:
        lines += ["", f"## Failed items ({len(failed)}, scored as wrong)", ""]
        lines += [f"- `{r['source']}`: {r['error']}" for r in failed[:MAX_LISTED]]
    unparsed = [r for r in records if outcome_of(r) == "unparsed"]
    if unparsed:
        lines += ["", f"## Unparsed answers ({len(unparsed)}, scored as wrong)", ""]
        lines += [f"- `{r['source']}`: {r['raw'][:160]!r}" for r in unparsed[:MAX_LISTED]]
    lines += _negatives_section([r for r in records if r.get("negative")])
    unseen = [r for r in records if outcome_of(r) == "no_detection"]
    if unseen:
        lines += ["", f"## No detection ({len(unseen)}, scored as wrong)", ""]
        lines += ["Perception detected nothing of the task's kind to answer from.", ""]
        lines += [f"- `{r['source']}`: {r['media']}" for r in unseen[:MAX_LISTED]]
    lines += [
        "",
        "## Run",
        "",
        f"- task file: `{run['task_file']}`",
        f"- annotations: `{run['annotations']}` (media under `{run['media_root']}`)",
        f"- backend: {run['backend']}, model: {run['model_id']}",
        *[
            f"  - {m['role']}: {m['name']} ({m['source_package']} {m['version']}, "
            f"license {m['license']}, sha256 {m['sha256'][:16] or 'not recorded'})"
            for m in run.get("models", [])
        ],
        f"- items run now: {run.get('items_run')}, reused from cache: {run.get('items_cached')}",
        f"- git commit: {run['git_commit']}" + (" (plus local changes)" * bool(run["git_dirty"])),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in run["versions"].items()),
        "- all settings: run.json",
        "",
    ]
    return "\n".join(lines)


def _negatives_section(negatives: list[dict]) -> list[str]:
    """Negative items: each false claim (where the absent class was "found"), each class the
    backend could not check, and how many abstained correctly."""
    if not negatives:
        return []
    outcomes = [outcome_of(r) for r in negatives]
    claims = [r for r, o in zip(negatives, outcomes, strict=True) if o == "predicted"]
    claims = [r for r in claims if r["prediction"] != ABSENT]
    uncheckable = [r for r, o in zip(negatives, outcomes, strict=True) if o == "uncheckable"]
    abstained = outcomes.count("predicted") - len(claims)
    lines = ["", f"## Negative items ({len(negatives)}: the class is not there)", ""]
    lines.append(
        f"{abstained} correct abstention(s), {len(claims)} false claim(s), "
        f"{len(uncheckable)} not checkable by this backend."
    )
    if claims:
        lines += ["", "False claims (the absent class was detected):", ""]
        lines += [
            f"- `{r['source']}`: {r['gold']} claimed in {r['media']} ({_events_text(r['raw'])})"
            for r in claims[:MAX_LISTED]
        ]
    if uncheckable:
        lines += ["", "Not checkable (neither a claim nor an abstention):", ""]
        lines += [
            f"- `{r['source']}`: {r['gold']} in {r['media']}: "
            f"{(r.get('details') or {}).get('why', 'the backend cannot check this class')}"
            for r in uncheckable[:MAX_LISTED]
        ]
    return lines


def _events_text(raw: str) -> str:
    """ "0.0–2.5 s at 0.46" for the events a claim rests on (perception's raw JSON)."""
    try:
        events = json.loads(raw)
    except (TypeError, ValueError):
        return "model answer"
    if not isinstance(events, list) or not events:
        return "model answer"
    return ", ".join(
        f"{e['start_s']:.1f}–{e['end_s']:.1f} s at {e['confidence']:.2f}" for e in events[:3]
    )


def _fmt(value: float | int) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
