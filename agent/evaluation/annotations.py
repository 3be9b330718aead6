"""Benchmark items and the generic annotation formats (classification/grounding CSV, MCQ JSONL).

Every reading error names the file, the line and the problem, so a hand-written annotation file
can be fixed without reading code.
"""

import csv
import hashlib
import json
import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from agent.errors import BehaviorAgentError


class AnnotationError(BehaviorAgentError):
    """A task or annotation file that cannot be used; the message says where and why."""

    @classmethod
    def at(cls, path: str | Path, line: int | str | None, problem: str) -> "AnnotationError":
        """`path:line: problem` (a JSON list names `item N` instead of a line)."""
        if isinstance(line, int):
            return cls(f"{path}:{line}: {problem}")
        return cls(f"{path}: {line}: {problem}" if line else f"{path}: {problem}")


class Item(BaseModel):
    """One benchmark item as read from an annotation file (labels still in the dataset's names).

    classification: `label`, and optionally the segment `start_s`..`end_s` to look at; a
    *negative* item (`negative`) names a class that is NOT present there (abstention test);
    grounding: `query`, and the gold span `start_s`..`end_s` inside the whole video;
    mcq: `question`, `options` and the gold option index `answer`.
    """

    model_config = ConfigDict(extra="forbid")

    media: str
    path: str
    source: str
    label: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    query: str | None = None
    options: list[str] = []
    answer: int | None = None
    negative: bool = False

    def key(self) -> str:
        """Stable identity of the item (its content, not its position), for the result cache."""
        payload = self.model_dump(include={"media", "label", "start_s", "end_s", "query"})
        payload["options"] = self.options
        payload["answer"] = self.answer
        if self.negative:  # only then: the keys of positive items stay as they were
            payload["negative"] = True
        text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


CLASSIFICATION_COLUMNS = ("media", "label", "start_s", "end_s", "present")
# Values of the `present` column: false marks a negative item (the class is not there).
PRESENT_VALUES = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
GROUNDING_COLUMNS = ("media", "query", "start_s", "end_s")


def read_classification_csv(path: Path, media_root: Path) -> list[Item]:
    """`media,label[,start_s,end_s[,present]]` rows; a header row is optional; `#` lines are
    comments. `present` false (`false`/`no`/`0`) makes a negative item: the label's class is
    not in that span, and any detection of it is a false claim."""
    items = []
    for line, row in _csv_rows(path, CLASSIFICATION_COLUMNS, required=2):
        media, label = row["media"], row["label"]
        if not label:
            raise AnnotationError.at(path, line, "the label column is empty")
        start_s, end_s = _span(path, line, row.get("start_s"), row.get("end_s"), optional=True)
        present = (row.get("present") or "true").strip().lower()
        if present not in PRESENT_VALUES:
            raise AnnotationError.at(
                path, line, f"present must be true or false (yes/no, 1/0), got {present!r}"
            )
        items.append(
            make_item(
                media,
                media_root,
                f"{path}:{line}",
                label=label,
                start_s=start_s,
                end_s=end_s,
                negative=not PRESENT_VALUES[present],
            )
        )
    return items


def read_grounding_csv(path: Path, media_root: Path) -> list[Item]:
    """`media,query,start_s,end_s` rows (the gold span of the query inside the whole video)."""
    items = []
    for line, row in _csv_rows(path, GROUNDING_COLUMNS, required=4):
        if not row["query"]:
            raise AnnotationError.at(path, line, "the query column is empty")
        start_s, end_s = _span(path, line, row["start_s"], row["end_s"], optional=False)
        items.append(
            make_item(
                row["media"],
                media_root,
                f"{path}:{line}",
                query=row["query"],
                start_s=start_s,
                end_s=end_s,
            )
        )
    return items


def read_mcq_jsonl(path: Path, media_root: Path) -> list[Item]:
    """One JSON object a line: `{"media", "question", "options": [...], "answer": index}`,
    optionally with `start_s`/`end_s` to restrict the video to a segment."""
    items = []
    for line, text in _lines(path):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise AnnotationError.at(path, line, f"not valid JSON ({error.msg})") from None
        items.append(mcq_item(record, path, line, media_root))
    return items


def mcq_item(record: object, path: Path, line: int | str, media_root: Path) -> Item:
    """Checks one MCQ record (a dict) and turns it into an Item."""
    if not isinstance(record, dict):
        raise AnnotationError.at(path, line, "expected a JSON object {...}")
    unknown = set(record) - {"media", "question", "options", "answer", "start_s", "end_s", "id"}
    if unknown:
        raise AnnotationError.at(path, line, f"unknown keys {sorted(unknown)}")
    for key in ("media", "question"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            raise AnnotationError.at(path, line, f'"{key}" must be a non-empty string')
    options = record.get("options")
    if not isinstance(options, list) or len(options) < 2:
        raise AnnotationError.at(path, line, '"options" must be a list of at least 2 strings')
    if not all(isinstance(o, str) and o.strip() for o in options):
        raise AnnotationError.at(path, line, '"options" must all be non-empty strings')
    answer = record.get("answer")
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(options):
        raise AnnotationError.at(
            path,
            line,
            f'"answer" must be the 0-based index of the right option (0..{len(options) - 1}), '
            f"got {answer!r}",
        )
    start_s, end_s = _span(path, line, record.get("start_s"), record.get("end_s"), optional=True)
    return make_item(
        record["media"],
        media_root,
        f"{path}:{line}" if isinstance(line, int) else f"{path}: {line}",
        query=record["question"].strip(),
        options=[o.strip() for o in options],
        answer=answer,
        start_s=start_s,
        end_s=end_s,
    )


def make_item(media: str, media_root: Path, source: str, **fields) -> Item:
    """An Item whose `path` is `media` resolved against the media root."""
    media = media.strip()
    if not media:
        raise AnnotationError(f"{source}: the media column is empty")
    return Item(media=media, path=str(resolve_media(media, media_root)), source=source, **fields)


def resolve_media(media: str, media_root: Path) -> Path:
    """Absolute media paths stay as they are; relative ones are under the media root."""
    path = Path(media).expanduser()
    return path if path.is_absolute() else media_root / path


def _lines(path: Path):
    """(line number, text) of the non-blank, non-comment lines of a text file."""
    with open_text(path) as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip() and not text.lstrip().startswith("#"):
                yield number, text.strip()


def open_text(path: Path):
    """Opens an annotation file as UTF-8 (BOM tolerated) with a clear error when missing."""
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise AnnotationError(
            f"{path}: annotation file not found. Check `annotations` in the task file, or point "
            "at the data with `behavior-agent eval TASK.yaml --data-root DIR`."
        ) from None
    except IsADirectoryError:
        raise AnnotationError(f"{path}: is a folder, expected an annotation file") from None


def _csv_rows(path: Path, columns: tuple[str, ...], required: int):
    """(line, {column: value}) for each data row; columns by header names or by position."""
    with open_text(path) as handle:
        reader = csv.reader(handle)
        names: list[str] | None = None
        for row in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if names is None and cells[0].lower() == "media":
                names = [c.lower() for c in cells]
                missing = [c for c in columns[:required] if c not in names]
                if missing:
                    raise AnnotationError.at(path, line, f"header lacks the columns {missing}")
                continue
            yield line, _row_dict(path, line, cells, names, columns, required)


def _row_dict(path, line, cells, names, columns, required) -> dict[str, str]:
    if names is not None:
        if len(cells) != len(names):
            raise AnnotationError.at(
                path, line, f"{len(cells)} cells but the header has {len(names)} columns"
            )
        return dict(zip(names, cells, strict=True))
    if not required <= len(cells) <= len(columns):
        expected = ",".join(columns[:required]) + "".join(f"[,{c}]" for c in columns[required:])
        raise AnnotationError.at(
            path, line, f"expected {expected} but found {len(cells)} cells: {','.join(cells)}"
        )
    return dict(zip(columns, cells, strict=False))


def _span(path, line, start, end, *, optional: bool) -> tuple[float | None, float | None]:
    """Parses and checks a start/end pair in seconds (both given, finite, 0 <= start < end)."""
    blank = (start is None or start == "", end is None or end == "")
    if all(blank) and optional:
        return None, None
    if any(blank):
        raise AnnotationError.at(path, line, "give both start_s and end_s, or neither")
    try:
        start_s, end_s = float(start), float(end)
    except (TypeError, ValueError):
        raise AnnotationError.at(
            path, line, f"start_s/end_s must be seconds, got {start!r} and {end!r}"
        ) from None
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or start_s < 0 or end_s <= start_s:
        raise AnnotationError.at(
            path, line, f"the span {start_s}..{end_s} s is not valid (need 0 <= start_s < end_s)"
        )
    return start_s, end_s
