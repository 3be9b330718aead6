"""Readers for the native annotation formats of public benchmarks, producing generic Items.

Each adapter takes (annotations path, media root, options) and returns Items whose labels are
the dataset's own names; the task file's `label_map` turns them into knowledge-base ids.
"""

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.evaluation.annotations import (
    AnnotationError,
    Item,
    make_item,
    mcq_item,
    open_text,
    read_classification_csv,
    read_grounding_csv,
    read_mcq_jsonl,
)

Reader = Callable[[Path, Path, dict[str, Any]], list[Item]]

# DFEW label files number the classes 1..7 in this order (DFEW README, label/*.csv).
DFEW_LABELS = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
# FERV39k split files name the class; some tools write the 0-based index in this order.
FERV39K_LABELS = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
MAFW_LABELS = (
    "anger",
    "disgust",
    "fear",
    "happiness",
    "neutral",
    "sadness",
    "surprise",
    "contempt",
    "anxiety",
    "helplessness",
    "disappointment",
)
# RAVDESS file names: modality-vocal channel-emotion-intensity-statement-repetition-actor.
RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
RAVDESS_NAME = re.compile(r"(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.\w+$")
# CREMA-D file names: actor_sentence_emotion_level (1001_DFA_ANG_XX.flv).
CREMAD_EMOTIONS = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
CREMAD_NAME = re.compile(r"(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_([A-Z]{1,2})\.\w+$")
VIDEO_SUFFIXES = {".mp4", ".flv", ".avi", ".mkv", ".mov", ".webm"}


@dataclass(frozen=True)
class Adapter:
    """A named annotation format and the task type it feeds."""

    name: str
    task_type: str
    read: Reader
    summary: str


def read_dfew(path: Path, media_root: Path, options: dict[str, Any]) -> list[Item]:
    """DFEW split files (`EmoLabel_DataSplit/test(single-labeled)/set_1.csv`): a header, then
    `order,label` with label 1..7; the clip is `options.media_name` (default `{order:05d}.mp4`)."""
    media_name = options.get("media_name", "{order:05d}.mp4")
    items = []
    with open_text(path) as handle:
        reader = csv.reader(handle)
        for row in reader:
            line = reader.line_num
            cells = [c.strip() for c in row]
            if not any(cells) or not cells[0].isdigit():
                continue  # the header row (order,label) and blank lines
            if len(cells) < 2:
                raise AnnotationError.at(path, line, "expected `order,label`")
            label = _indexed_label(path, line, cells[1], DFEW_LABELS, first=1)
            media = media_name.format(order=int(cells[0]))
            items.append(make_item(media, media_root, f"{path}:{line}", label=label))
    return items


def read_ferv39k(path: Path, media_root: Path, options: dict[str, Any]) -> list[Item]:
    """FERV39k `4_setups/*/test_*.csv`: `clip/path Label` separated by a space, no header."""
    suffix = options.get("media_suffix", ".mp4")
    items = []
    for line, fields in _split_lines(path, 2):
        label = _indexed_label(path, line, fields[1], FERV39K_LABELS, first=0)
        items.append(make_item(fields[0] + suffix, media_root, f"{path}:{line}", label=label))
    return items


def read_mafw(path: Path, media_root: Path, options: dict[str, Any]) -> list[Item]:
    """MAFW `Train & Test Set/single/no_caption/set_N/test.txt`: `00025.mp4 anger` a line."""
    items = []
    for line, fields in _split_lines(path, 2):
        label = _indexed_label(path, line, fields[1], MAFW_LABELS, first=1)
        items.append(make_item(fields[0], media_root, f"{path}:{line}", label=label))
    return items


def read_ravdess(path: Path, media_root: Path, options: dict[str, Any]) -> list[Item]:
    """RAVDESS: the emotion is the third code of each file name under the folder `path`.

    Audio-only files (modality 03) are skipped; `options.modalities` (default ["01", "02"]:
    audio-video and video-only) and `options.vocal_channels` (default both) filter further.
    """
    modalities = {str(m).zfill(2) for m in options.get("modalities", ["01", "02"])}
    channels = {str(c).zfill(2) for c in options.get("vocal_channels", ["01", "02"])}
    items = []
    for file in _scan(path):
        match = RAVDESS_NAME.search(file.name)
        if not match or match[1] not in modalities or match[2] not in channels:
            continue
        if match[3] not in RAVDESS_EMOTIONS:
            raise AnnotationError.at(file, None, f"unknown RAVDESS emotion code {match[3]}")
        label = RAVDESS_EMOTIONS[match[3]]
        items.append(make_item(_relative(file, media_root), media_root, str(file), label=label))
    return _non_empty(items, path, "RAVDESS files like 01-01-03-01-01-01-12.mp4")


def read_cremad(path: Path, media_root: Path, options: dict[str, Any]) -> list[Item]:
    """CREMA-D: the emotion is the third code of each file name (1001_DFA_ANG_XX.flv)."""
    items = []
    for file in _scan(path):
        match = CREMAD_NAME.search(file.name)
        if match:
            label = CREMAD_EMOTIONS[match[3]]
            items.append(make_item(_relative(file, media_root), media_root, str(file), label=label))
    return _non_empty(items, path, "CREMA-D files like 1001_DFA_ANG_XX.flv")


def read_charades_sta(path: Path, media_root: Path, options: dict[str, Any]) -> list[Item]:
    """Charades-STA `charades_sta_test.txt`: `VID start end##query` a line; video `VID.mp4`."""
    suffix = options.get("media_suffix", ".mp4")
    items = []
    for line, text in _text_lines(path):
        head, sep, query = text.partition("##")
        fields = head.split()
        if not sep or len(fields) != 3 or not query.strip():
            raise AnnotationError.at(path, line, "expected `VIDEO_ID START END##query`")
        try:
            start_s, end_s = float(fields[1]), float(fields[2])
        except ValueError:
            raise AnnotationError.at(path, line, "start and end must be seconds") from None
        if not 0 <= start_s < end_s:
            raise AnnotationError.at(path, line, f"the span {start_s}..{end_s} s is not valid")
        items.append(
            make_item(
                fields[0] + suffix,
                media_root,
                f"{path}:{line}",
                query=query.strip(),
                start_s=start_s,
                end_s=end_s,
            )
        )
    return items


def read_nextqa(path: Path, media_root: Path, options: dict[str, Any]) -> list[Item]:
    """NExT-QA `val.csv`/`test.csv` (video, question, answer, a0..a4) or the same as JSON.

    `options.video_map` (e.g. map_vid_vidorID.json, relative to the annotation file) maps a
    video id to its path under the media root; otherwise the video is `<id>.mp4`.
    """
    suffix = options.get("media_suffix", ".mp4")
    video_map = _video_map(path, options.get("video_map"))
    items = []
    for where, record in _records(path):
        missing = [k for k in ("video", "question", "answer", "a0", "a1") if k not in record]
        if missing:
            raise AnnotationError.at(path, where, f"missing the NExT-QA columns {missing}")
        options_text = [str(record[f"a{i}"]) for i in range(10) if record.get(f"a{i}")]
        video = str(record["video"])
        generic = {
            "media": video_map.get(video, video) + suffix,
            "question": str(record["question"]),
            "options": options_text,
            "answer": _int(path, where, record["answer"]),
        }
        items.append(mcq_item(generic, path, where, media_root))
    return items


def read_mvbench(path: Path, media_root: Path, options: dict[str, Any]) -> list[Item]:
    """MVBench-style JSON: a list of {video, question, candidates, answer (text)[, start, end]}."""
    items = []
    for where, record in _records(path):
        candidates = record.get("candidates")
        if not isinstance(candidates, list) or record.get("answer") not in candidates:
            raise AnnotationError.at(
                path, where, '"answer" must be one of the "candidates" list (MVBench format)'
            )
        generic = {
            "media": str(record.get("video", "")),
            "question": str(record.get("question", "")),
            "options": [str(c) for c in candidates],
            "answer": candidates.index(record["answer"]),
        }
        if record.get("start") is not None and record.get("end") is not None:
            generic.update(start_s=record["start"], end_s=record["end"])
        items.append(mcq_item(generic, path, where, media_root))
    return items


def _generic(reader: Callable[[Path, Path], list[Item]]) -> Reader:
    return lambda path, media_root, options: reader(path, media_root)


ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        Adapter(
            "classification_csv",
            "classification",
            _generic(read_classification_csv),
            "CSV media,label[,start_s,end_s]",
        ),
        Adapter(
            "grounding_csv",
            "grounding",
            _generic(read_grounding_csv),
            "CSV media,query,start_s,end_s",
        ),
        Adapter(
            "mcq_jsonl",
            "mcq",
            _generic(read_mcq_jsonl),
            'JSONL {"media","question","options","answer"}',
        ),
        Adapter("dfew", "classification", read_dfew, "DFEW label/*.csv (order,label 1..7)"),
        Adapter("ferv39k", "classification", read_ferv39k, "FERV39k 4_setups/*/*.csv"),
        Adapter("mafw", "classification", read_mafw, "MAFW single/*/set_N/test.txt"),
        Adapter("ravdess", "classification", read_ravdess, "RAVDESS file-name codes"),
        Adapter("cremad", "classification", read_cremad, "CREMA-D file-name codes"),
        Adapter("charades_sta", "grounding", read_charades_sta, "Charades-STA VID s e##query"),
        Adapter("nextqa", "mcq", read_nextqa, "NExT-QA csv/json (a0..a4, answer index)"),
        Adapter("mvbench", "mcq", read_mvbench, "MVBench-style JSON (candidates, answer text)"),
    )
}
GENERIC_FORMATS = {"classification": "classification_csv", "grounding": "grounding_csv"}
GENERIC_FORMATS["mcq"] = "mcq_jsonl"


def read_items(fmt: str, task_type: str, path: Path, media_root: Path, options: dict) -> list[Item]:
    """Items of an annotation file in format `fmt` (`generic` = the generic format of the type)."""
    name = GENERIC_FORMATS[task_type] if fmt == "generic" else fmt
    adapter = ADAPTERS[name]
    if not path.exists():
        raise AnnotationError(
            f"{path}: annotations not found. Check `annotations` in the task file, or point at "
            "the data with `behavior-agent eval TASK.yaml --data-root DIR`."
        )
    return adapter.read(path, media_root, options)


def _indexed_label(path: Path, line: int, value: str, names: tuple[str, ...], first: int) -> str:
    """A class given by name (any case) or by its number in the dataset's class list."""
    by_name = {n.lower(): n for n in names}
    if value.lower() in by_name:
        return by_name[value.lower()]
    if value.isdigit() and 0 <= int(value) - first < len(names):
        return names[int(value) - first]
    raise AnnotationError.at(
        path, line, f"unknown label {value!r}; expected one of {list(names)} or its number"
    )


def _text_lines(path: Path):
    with open_text(path) as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                yield number, text.strip()


def _split_lines(path: Path, count: int):
    """Whitespace-separated lines; the last field may not contain spaces either."""
    for line, text in _text_lines(path):
        fields = text.rsplit(maxsplit=count - 1)
        if len(fields) != count:
            raise AnnotationError.at(path, line, f"expected {count} space-separated fields")
        yield line, fields


def _scan(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise AnnotationError(
            f"{folder}: expected the folder that holds the media files (this format reads "
            "labels from file names); set `annotations` to that folder or use --data-root."
        )
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)


def _relative(file: Path, media_root: Path) -> str:
    """The file's path under the media root when it is there (shorter, portable), else absolute."""
    try:
        return str(file.relative_to(media_root))
    except ValueError:
        return str(file)


def _non_empty(items: list[Item], folder: Path, expected: str) -> list[Item]:
    if not items:
        raise AnnotationError(f"{folder}: no media files found; expected {expected}.")
    return items


def _records(path: Path):
    """(line or item number, dict) from a CSV with a header, a JSON list or JSONL."""
    if path.suffix.lower() == ".csv":
        with open_text(path) as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, row
        return
    with open_text(path) as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if data is None:  # JSONL
        for line, raw in _text_lines(path):
            try:
                yield line, json.loads(raw)
            except json.JSONDecodeError as error:
                raise AnnotationError.at(path, line, f"not valid JSON ({error.msg})") from None
        return
    records = (
        data if isinstance(data, list) else data.get("data") if isinstance(data, dict) else None
    )
    if not isinstance(records, list):
        raise AnnotationError.at(path, 1, "expected a JSON list of question records")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise AnnotationError(f"{path}: item {index}: expected a JSON object")
        yield f"item {index}", record


def _video_map(path: Path, name: str | None) -> dict[str, str]:
    if not name:
        return {}
    map_path = path.parent / name
    with open_text(map_path) as handle:
        try:
            return {str(k): str(v) for k, v in json.load(handle).items()}
        except (json.JSONDecodeError, AttributeError) as error:
            raise AnnotationError.at(map_path, None, f"not a JSON object ({error})") from None


def _int(path: Path, where: int | str, value: object) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnnotationError.at(path, where, f"answer {value!r} is not an option index") from None
