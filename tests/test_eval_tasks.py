"""Task files, the generic annotation formats and the native dataset adapters."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.context import Context
from agent.evaluation.adapters import (
    ADAPTERS,
    CREMAD_EMOTIONS,
    DFEW_LABELS,
    FERV39K_LABELS,
    MAFW_LABELS,
    RAVDESS_EMOTIONS,
)
from agent.evaluation.annotations import AnnotationError
from agent.evaluation.tasks import SHIPPED_TASKS, load_task, read_spec
from agent.knowledge import load_knowledge_base


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def task_yaml(folder: Path, body: str) -> Path:
    (folder / "media").mkdir(parents=True, exist_ok=True)
    return write(folder / "task.yaml", body)


CLASSIFICATION_TASK = """\
name: tiny
type: classification
kind: emotion
annotations: labels.csv
media_root: media
label_map: {anger: angry}
"""


def test_generic_classification_task_loads_with_header_and_segments(tmp_path):
    path = task_yaml(tmp_path, CLASSIFICATION_TASK)
    write(
        tmp_path / "labels.csv",
        "media,label,start_s,end_s\n# a comment\na.mp4,anger,0,2.5\nb.png,happy,,\n",
    )
    task = load_task(path)
    items = task.items()
    assert [i.media for i in items] == ["a.mp4", "b.png"]
    assert items[0].path == str(tmp_path / "media" / "a.mp4")
    assert (items[0].start_s, items[0].end_s) == (0.0, 2.5)
    assert items[1].start_s is None
    assert [task.gold(i) for i in items] == ["angry", "happy"]
    assert task.labels(items) == ["angry", "happy"]
    assert items[0].source.endswith("labels.csv:3")
    assert items[0].key() != items[1].key()


def test_headerless_csv_and_data_root_override(tmp_path):
    data = tmp_path / "data"
    (data / "media").mkdir(parents=True)
    write(data / "labels.csv", "x.mp4,sad\n")
    path = write(tmp_path / "tasks" / "t.yaml", CLASSIFICATION_TASK)
    task = load_task(path, data_root=data)
    [item] = task.items()
    assert item.path == str(data / "media" / "x.mp4") and item.label == "sad"


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        (CLASSIFICATION_TASK.replace("type: classification", "type: ranking"), 2, "type"),
        (CLASSIFICATION_TASK.replace("kind: emotion\n", ""), 1, "needs `kind`"),
        (CLASSIFICATION_TASK + "format: nosuch\n", 7, "unknown format"),
        (CLASSIFICATION_TASK + "metrics: [miou]\n", 7, "do not apply"),
        (CLASSIFICATION_TASK + "colour: red\n", 7, "colour"),
        (CLASSIFICATION_TASK + "backend:\n  settings:\n    sample_fsp: 3\n", 8, "sample_fsp"),
        (CLASSIFICATION_TASK + "label_map: [1, 2\n", 8, "not valid YAML"),
        (CLASSIFICATION_TASK + "prompt: no_such_prompt\n", 7, "No prompt named"),
        (CLASSIFICATION_TASK.replace("media_root: media", "media_root: nowhere"), 5, "nowhere"),
    ],
)
def test_malformed_task_names_file_line_and_problem(tmp_path, body, line, problem):
    path = task_yaml(tmp_path, body)
    with pytest.raises(AnnotationError) as error:
        load_task(path)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert problem in message


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("media,label\na.mp4,happy\nb.mp4\n", 3, "1 cells but the header has 2 columns"),
        ("a.mp4,happy,1,2,no,3\n", 1, "found 6 cells"),
        ("a.mp4,happy,1,2,maybe\n", 1, "present must be true or false"),
        ("a.mp4,happy,1\n", 1, "give both start_s and end_s"),
        ("a.mp4,happy,2,1\n", 1, "not valid"),
        ("a.mp4,happy,x,3\n", 1, "must be seconds"),
        ("a.mp4,\n", 1, "label column is empty"),
        ("media,lbl\na.mp4,happy\n", 1, "lacks the columns ['label']"),
    ],
)
def test_malformed_classification_csv_names_file_line_and_problem(tmp_path, text, line, problem):
    path = task_yaml(tmp_path, CLASSIFICATION_TASK)
    csv_path = write(tmp_path / "labels.csv", text)
    with pytest.raises(AnnotationError) as error:
        load_task(path).items()
    assert str(error.value).startswith(f"{csv_path}:{line}:"), str(error.value)
    assert problem in str(error.value)


def test_missing_annotation_file_says_how_to_fix(tmp_path):
    path = task_yaml(tmp_path, CLASSIFICATION_TASK)
    with pytest.raises(AnnotationError, match="--data-root"):
        load_task(path).items()


def test_grounding_csv_and_mcq_jsonl(tmp_path):
    path = task_yaml(
        tmp_path,
        "name: g\ntype: grounding\nannotations: g.csv\nmedia_root: media\n",
    )
    write(tmp_path / "g.csv", 'media,query,start_s,end_s\nv.mp4,"a person waves, twice",1.5,4\n')
    [item] = load_task(path).items()
    assert item.query == "a person waves, twice" and (item.start_s, item.end_s) == (1.5, 4.0)
    assert load_task(path).gold(item) == [1.5, 4.0]

    path = task_yaml(tmp_path, "name: q\ntype: mcq\nannotations: q.jsonl\nmedia_root: media\n")
    lines = [
        {"media": "v.mp4", "question": "What?", "options": ["a", "b", "c"], "answer": 2},
        {
            "media": "v.mp4",
            "question": "Why?",
            "options": ["x", "y"],
            "answer": 0,
            "start_s": 1,
            "end_s": 2,
        },
    ]
    write(tmp_path / "q.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    items = load_task(path).items()
    assert [i.answer for i in items] == [2, 0] and items[1].options == ["x", "y"]


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ('{"media": "v.mp4", "question": "q", "options": ["a", "b"], "answer": 2}', "answer"),
        ('{"media": "v.mp4", "question": "q", "options": ["a"], "answer": 0}', "options"),
        ('{"media": "v.mp4", "options": ["a", "b"], "answer": 0}', "question"),
        ('{"media": "v.mp4", "question": "q", "options": ["a", "b"], "answer": 0', "JSON"),
    ],
)
def test_malformed_mcq_line_names_file_line_and_problem(tmp_path, record, problem):
    path = task_yaml(tmp_path, "name: q\ntype: mcq\nannotations: q.jsonl\nmedia_root: media\n")
    good = '{"media": "v.mp4", "question": "q", "options": ["a", "b"], "answer": 0}'
    jsonl = write(tmp_path / "q.jsonl", f"{good}\n\n{record}\n")
    with pytest.raises(AnnotationError) as error:
        load_task(path).items()
    assert str(error.value).startswith(f"{jsonl}:3:") and problem in str(error.value)


# --- native adapters, each on a small sample written here -----------------------------------


def adapter_items(name, annotations: Path, media_root: Path, options=None):
    return ADAPTERS[name].read(annotations, media_root, options or {})


def test_dfew_adapter(tmp_path):
    path = write(tmp_path / "set_1" / "test.csv", "order,label\n1,4\n12,1\n345,7\n")
    items = adapter_items("dfew", path, tmp_path / "clips")
    assert adapter_items("dfew", path, tmp_path, {"media_name": "{order}.avi"})[0].media == "1.avi"
    assert [(i.media, i.label) for i in items] == [
        ("00001.mp4", "angry"),
        ("00012.mp4", "happy"),
        ("00345.mp4", "fear"),
    ]
    write(path, "order,label\n1,9\n")
    with pytest.raises(AnnotationError, match=r"test.csv:2: unknown label '9'"):
        adapter_items("dfew", path, tmp_path)


def test_ferv39k_adapter(tmp_path):
    path = write(
        tmp_path / "test_All.csv",
        "Action/BlackBoard/0006/0006_C1_01_00201 Angry\nDaily/Office/0003/clip_7 Happy\n",
    )
    items = adapter_items("ferv39k", path, tmp_path, {"media_suffix": ".mp4"})
    assert [(i.media, i.label) for i in items] == [
        ("Action/BlackBoard/0006/0006_C1_01_00201.mp4", "Angry"),
        ("Daily/Office/0003/clip_7.mp4", "Happy"),
    ]
    write(path, "just-one-field\n")
    with pytest.raises(AnnotationError, match="test_All.csv:1: expected 2"):
        adapter_items("ferv39k", path, tmp_path)


def test_mafw_adapter(tmp_path):
    path = write(tmp_path / "test.txt", "00025.mp4 anger\n00026.mp4 helplessness\n")
    items = adapter_items("mafw", path, tmp_path)
    assert [(i.media, i.label) for i in items] == [
        ("00025.mp4", "anger"),
        ("00026.mp4", "helplessness"),
    ]


def test_ravdess_adapter_reads_codes_and_skips_audio_only(tmp_path):
    for name in (
        "Actor_01/01-01-03-01-01-01-01.mp4",  # audio-video, happy
        "Actor_01/02-01-05-02-01-01-01.mp4",  # video-only, angry
        "Actor_01/03-01-05-02-01-01-01.wav",  # audio-only: skipped
        "Actor_02/01-02-08-01-02-02-02.mp4",  # song, surprised
    ):
        write(tmp_path / name, "")
    items = adapter_items("ravdess", tmp_path, tmp_path)
    assert [(i.media, i.label) for i in items] == [
        ("Actor_01/01-01-03-01-01-01-01.mp4", "happy"),
        ("Actor_01/02-01-05-02-01-01-01.mp4", "angry"),
        ("Actor_02/01-02-08-01-02-02-02.mp4", "surprised"),
    ]
    speech_only = adapter_items("ravdess", tmp_path, tmp_path, {"vocal_channels": ["01"]})
    assert len(speech_only) == 2


def test_cremad_adapter_on_names(tmp_path):
    for name in ("1001_DFA_ANG_XX.flv", "1002_IEO_HAP_HI.mp4", "notes.mp4", "1003_TIE_NEU_XX.flv"):
        write(tmp_path / "VideoFlash" / name, "")
    items = adapter_items("cremad", tmp_path / "VideoFlash", tmp_path)
    assert [(Path(i.media).name, i.label) for i in items] == [
        ("1001_DFA_ANG_XX.flv", "anger"),
        ("1002_IEO_HAP_HI.mp4", "happy"),
        ("1003_TIE_NEU_XX.flv", "neutral"),
    ]
    with pytest.raises(AnnotationError, match="no media files"):
        adapter_items("cremad", write(tmp_path / "empty" / "x.txt", "").parent, tmp_path)


def test_charades_sta_adapter(tmp_path):
    path = write(
        tmp_path / "charades_sta_test.txt",
        "3MSZA 24.3 30.4##person turn a light on.\nAO8RW 0.0 6.9##a person is putting a book on "
        "a shelf.\n",
    )
    items = adapter_items("charades_sta", path, tmp_path / "videos")
    assert items[0].media == "3MSZA.mp4" and items[0].query == "person turn a light on."
    assert (items[0].start_s, items[0].end_s) == (24.3, 30.4)
    write(path, "3MSZA 24.3##no end\n")
    with pytest.raises(AnnotationError, match=r"charades_sta_test.txt:1: expected `VIDEO_ID"):
        adapter_items("charades_sta", path, tmp_path)


def test_nextqa_adapter_csv_with_video_map(tmp_path):
    path = write(
        tmp_path / "val.csv",
        "video,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
        "4010069381,369,640,480,how do the two man play,3,6,CH,a,b,c,d,e\n",
    )
    write(tmp_path / "map.json", json.dumps({"4010069381": "1106/4010069381"}))
    [item] = adapter_items("nextqa", path, tmp_path / "videos", {"video_map": "map.json"})
    assert item.media == "1106/4010069381.mp4"
    assert item.options == ["a", "b", "c", "d", "e"] and item.answer == 3
    write(path, "video,question\n1,q\n")
    with pytest.raises(AnnotationError, match=r"val.csv:2: missing the NExT-QA columns"):
        adapter_items("nextqa", path, tmp_path)


def test_mvbench_adapter_json(tmp_path):
    records = [
        {
            "video": "clip.mp4",
            "question": "What is the man doing?",
            "candidates": ["running", "sitting", "waving"],
            "answer": "waving",
            "start": 1.0,
            "end": 5.0,
        }
    ]
    path = write(tmp_path / "action_sequence.json", json.dumps(records))
    [item] = adapter_items("mvbench", path, tmp_path)
    assert item.answer == 2 and (item.start_s, item.end_s) == (1.0, 5.0)
    records[0]["answer"] = "dancing"
    write(path, json.dumps(records))
    with pytest.raises(AnnotationError, match=r"action_sequence.json: item 0: \"answer\" must"):
        adapter_items("mvbench", path, tmp_path)


def test_shipped_tasks_need_only_a_data_root(tmp_path):
    names = sorted(p.stem for p in SHIPPED_TASKS.glob("*.yaml"))
    assert names == [
        "charades_sta",
        "cremad",
        "dfew",
        "ferv39k",
        "mafw",
        "mvbench",
        "nextqa",
        "ravdess",
        "shared_media",
    ]
    for name in names:
        with pytest.raises(AnnotationError, match="--data-root"):
            load_task(name, data_root=tmp_path)  # the data is not there yet
        spec, _ = read_spec(SHIPPED_TASKS / f"{name}.yaml")
        (tmp_path / spec.media_root).mkdir(parents=True, exist_ok=True)
        task = load_task(name, data_root=tmp_path)
        assert task.media_root == tmp_path / spec.media_root
        shipped = SHIPPED_TASKS / spec.annotations  # a task may ship its own annotations
        expected = shipped if shipped.is_file() else tmp_path / spec.annotations
        assert task.annotations_path == expected
    assert (SHIPPED_TASKS / "shared_media.csv").is_file()


@pytest.mark.parametrize(
    ("name", "dataset_labels"),
    [
        ("dfew", DFEW_LABELS),
        ("ferv39k", FERV39K_LABELS),
        ("mafw", MAFW_LABELS),
        ("ravdess", tuple(RAVDESS_EMOTIONS.values())),
        ("cremad", tuple(CREMAD_EMOTIONS.values())),
    ],
)
def test_shipped_emotion_tasks_map_every_dataset_label_to_a_kb_emotion(
    tmp_path, name, dataset_labels
):
    spec, _ = read_spec(SHIPPED_TASKS / f"{name}.yaml")
    (tmp_path / spec.media_root).mkdir(parents=True)
    task = load_task(name, data_root=tmp_path)
    emotions = set(load_knowledge_base(Context()).ids("emotion"))
    unmapped = [label for label in dataset_labels if task.map_label(label) not in emotions]
    assert not unmapped


def test_command_reports_a_malformed_task_in_one_line(tmp_path):
    path = task_yaml(tmp_path, CLASSIFICATION_TASK.replace("kind: emotion", "kind: mood"))
    cli = str(Path(sys.executable).parent / "behavior-agent")
    done = subprocess.run([cli, "eval", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {path}:3: kind:")
    listed = subprocess.run([cli, "eval-tasks"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert "dfew" in names and "shared_media" in names and len(names) == 9
