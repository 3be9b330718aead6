"""`behavior-agent kb`: list, show, validate and match the behavior knowledge base."""

import sys
import textwrap
from pathlib import Path

import typer

from agent.cli.app import app, print_json
from agent.context import Context
from agent.knowledge import (
    KINDS,
    BehaviorClass,
    default_folder,
    load_knowledge_base,
    missing_required,
    validate_folder,
)

kb_app = typer.Typer(
    help="The curated knowledge base of emotions, gestures and actions.", no_args_is_help=True
)
app.add_typer(kb_app, name="kb")

_KIND_HELP = "Only this kind: emotion, gesture or action."


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"'{kind}' is not a kind; use one of {', '.join(KINDS)}.")


@kb_app.command("list")
def list_command(
    kind: str | None = typer.Option(None, "--kind", "-k", help=_KIND_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Every class id with its kind, name and the landmark rule that can detect it."""
    _check_kind(kind)
    kb = load_knowledge_base(Context.from_env())
    classes = [kb.get(i) for i in kb.ids(kind)]  # type: ignore[arg-type]
    if as_json:
        print_json(
            {
                "classes": [
                    {
                        "id": c.id,
                        "kind": c.kind,
                        "name": c.name,
                        "detector": c.perception.detector if c.perception else None,
                    }
                    for c in classes
                ]
            }
        )
        return
    typer.echo(f"{'id':<18} {'kind':<8} {'detector':<20} name")
    for item in sorted(classes, key=lambda c: (KINDS.index(c.kind), c.id)):
        detector = item.perception.detector if item.perception else "-"
        typer.echo(f"{item.id:<18} {item.kind:<8} {detector:<20} {item.name}")
    typer.echo(f"{len(classes)} classes", err=True)


def _wrapped(label: str, text: str) -> list[str]:
    """`label` in a 14-column gutter, `text` filled to 100 columns beside it."""
    hanging = " " * (16 if text.startswith("- ") else 14)
    flat = " ".join(text.split())
    return [textwrap.fill(flat, 100, initial_indent=f"{label:<14}", subsequent_indent=hanging)]


def _describe(item: BehaviorClass) -> list[str]:
    lines = [f"{item.id}  ({item.kind})  {item.name}"]
    lines += _wrapped("synonyms", ", ".join(item.synonyms))
    lines += _wrapped("definition", item.definition)
    if item.action_units:
        units = ", ".join(f"AU{a.au} {a.name}" + (" (common)" if a.role == "common" else "")
                          for a in item.action_units)  # fmt: skip
        lines += _wrapped("action units", units)
    for index, cue in enumerate(item.cues):
        lines += _wrapped("cues" if index == 0 else "", f"- {cue}")
    longest = "open-ended" if item.temporal.max_s is None else f"{item.temporal.max_s:g} s"
    lines += _wrapped(
        "temporal", f"{item.temporal.min_s:g} s to {longest}. {item.temporal.pattern}"
    )
    for index, confusion in enumerate(item.confusions):
        lines += _wrapped(
            "confusions" if index == 0 else "", f"{confusion.id}: {confusion.how_to_tell}"
        )
    if item.perception is None:
        lines += _wrapped("perception", "none (the landmark backend cannot check this class)")
    else:
        p = item.perception
        params = ", ".join(f"{k}={v}" for k, v in p.params.items())
        lines += _wrapped("perception", f"{p.detector} on {', '.join(p.landmarks)}: {p.movement}")
        lines += _wrapped("params", params or "(rule defaults)")
    for index, source in enumerate(item.sources):
        lines += _wrapped("sources" if index == 0 else "", f"- {source}")
    for index, (dataset, labels) in enumerate(item.dataset_labels.items()):
        lines += _wrapped("datasets" if index == 0 else "", f"{dataset}: {', '.join(labels)}")
    return lines


@kb_app.command("show")
def show_command(
    class_id: str = typer.Argument(..., help="Class id, e.g. head_scratch."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Everything the knowledge base says about one class."""
    item = load_knowledge_base(Context.from_env()).get(class_id)
    if as_json:
        print_json(item.model_dump())
        return
    typer.echo("\n".join(_describe(item)))


@kb_app.command("validate")
def validate_command(
    folder: Path | None = typer.Argument(
        None, help="Knowledge-base folder (<kind>/<id>.yaml); default: the shipped one."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Check every class file against the schema and every cross reference; exit 1 on problems.

    The shipped knowledge base must also contain every required class id.
    """
    shipped = folder is None or folder.resolve() == default_folder().resolve()
    target = default_folder() if folder is None else folder
    classes, problems = validate_folder(target)
    if shipped and classes:
        problems += missing_required(classes)
    counts = {kind: sum(c.kind == kind for c in classes.values()) for kind in KINDS}
    if as_json:
        print_json(
            {"folder": str(target), "ok": not problems, "counts": counts, "problems": problems}
        )
    elif problems:
        for problem in problems:
            print(problem, file=sys.stderr)
    else:
        summary = ", ".join(f"{n} {kind}s" for kind, n in counts.items())
        typer.echo(f"ok: {len(classes)} classes ({summary}) in {target}")
    if problems:
        raise typer.Exit(1)


@kb_app.command("match")
def match_command(
    text: str = typer.Argument(..., help='Free text, e.g. "looks nervous".'),
    k: int = typer.Option(5, "--top", "-n", min=1, help="How many classes to return."),
    kind: str | None = typer.Option(None, "--kind", "-k", help=_KIND_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The classes a phrase refers to, best first (synonyms + MiniLM similarity)."""
    _check_kind(kind)
    kb = load_knowledge_base(Context.from_env())
    matches = kb.match(text, k=k, kinds=[kind] if kind else None)  # type: ignore[list-item]
    if as_json:
        print_json({"matches": [{"id": m.id, "kind": m.kind, "score": m.score} for m in matches]})
        return
    for match in matches:
        typer.echo(f"{match.score:.3f}  {match.id:<18} {match.kind}")
