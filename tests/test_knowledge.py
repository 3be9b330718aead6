"""Knowledge base: schema, coverage, cross references, precise errors, prompts and the CLI."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from agent.cli.app import app
from agent.context import Context
from agent.errors import BehaviorAgentError
from agent.knowledge import (
    FACS_AU_NAMES,
    KINDS,
    REQUIRED_IDS,
    KnowledgeBase,
    KnowledgeBaseError,
    UnknownClassError,
    default_folder,
    load_knowledge_base,
    missing_required,
    validate_folder,
)

SHIPPED = default_folder()


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge_base(Context())


def _valid_class(class_id: str = "wave", kind: str = "gesture", **changes) -> dict:
    data = {
        "id": class_id,
        "kind": kind,
        "name": class_id.replace("_", " ").title(),
        "synonyms": [class_id.replace("_", " ")],
        "definition": "A test class with a definition long enough to pass.",
        "cues": ["Something visible."],
        "temporal": {"min_s": 0.5, "max_s": 3.0, "pattern": "Starts, holds and ends."},
        "confusions": [],
        "perception": None,
        "sources": ["A source."],
    }
    data.update(changes)
    return data


def _write(folder: Path, data: dict, kind: str | None = None, name: str | None = None) -> Path:
    path = folder / (kind or data["kind"]) / f"{name or data['id']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _problems(folder: Path) -> list[str]:
    return validate_folder(folder)[1]


# --- the shipped knowledge base ------------------------------------------------------------


def test_every_shipped_file_validates():
    classes, problems = validate_folder(SHIPPED)
    assert problems == []
    files = sorted(SHIPPED.rglob("*.yaml"))
    assert len(classes) == len(files) >= 56
    for path in files:
        assert path.parent.name in KINDS, f"{path} is not under a kind folder"


def test_every_required_id_exists_with_its_kind(kb):
    assert missing_required({i: kb.get(i) for i in kb.ids()}) == []
    for kind, ids in REQUIRED_IDS.items():
        assert set(ids) <= set(kb.ids(kind))
    assert len(REQUIRED_IDS["emotion"]) == 12
    assert len(REQUIRED_IDS["gesture"]) == 23
    assert len(REQUIRED_IDS["action"]) == 21


def test_confusions_point_at_existing_other_classes(kb):
    for class_id in kb.ids():
        item = kb.get(class_id)
        for confusion in item.confusions:
            assert confusion.id in kb, f"{class_id} -> {confusion.id}"
            assert confusion.id != class_id
        assert len({c.id for c in item.confusions}) == len(item.confusions)


def test_emotions_carry_facs_action_units(kb):
    for item in kb.by_kind("emotion"):
        if item.id in {"neutral", "calm"}:  # defined by the absence of AUs
            assert item.action_units == []
            continue
        assert any(a.role == "core" for a in item.action_units), item.id
        for unit in item.action_units:
            assert FACS_AU_NAMES[unit.au] == unit.name
    core = {
        i: {a.au for a in kb.get(i).action_units if a.role == "core"} for i in kb.ids("emotion")
    }
    assert core["happy"] == {6, 12}
    assert core["sad"] >= {1, 4, 15}
    assert core["surprise"] >= {1, 2, 5, 26}
    assert core["angry"] >= {4, 5, 7, 23}
    assert core["disgust"] >= {9, 15, 16}
    assert core["contempt"] == {12, 14}
    assert core["fear"] >= {1, 2, 4, 5, 20}


def test_perception_blocks_are_data_or_null(kb):
    for class_id in kb.ids():
        perception = kb.get(class_id).perception
        if perception is not None:
            assert re.fullmatch(r"[a-z_]+", perception.detector)
            assert perception.landmarks and perception.movement
    # Emotions read by the learned classifier keep their AU prototype as the explanation.
    assert kb.get("happy").perception.detector == "expression_model"
    assert kb.get("happy").perception.params["model_label"] == "happy"
    assert "AU12" in kb.get("happy").perception.params["au_weights"]
    assert kb.get("thumbs_up").perception.detector == "hand_sign"
    assert kb.get("drink").perception.params["objects"] == ["cup", "bottle", "wine_glass"]
    for unobservable in ("clean", "play_instrument", "apply_makeup"):
        assert kb.get(unobservable).perception is None


def test_every_class_has_content_a_reader_can_use(kb):
    for class_id in kb.ids():
        item = kb.get(class_id)
        assert len(item.definition.split()) >= 8, class_id
        assert item.synonyms and item.cues and item.sources, class_id
        assert item.temporal.max_s is None or item.temporal.max_s >= item.temporal.min_s


def test_lookup_by_kind_and_unknown_ids(kb):
    assert kb.get("head_scratch").kind == "gesture"
    assert [c.id for c in kb.by_kind("action")] == kb.ids("action")
    assert len(kb.ids()) == sum(len(kb.ids(k)) for k in KINDS)
    with pytest.raises(UnknownClassError, match="kb list"):
        kb.get("definitely_not_a_class")


def test_dataset_label_maps(kb):
    hagrid = kb.dataset_label_map("HaGRID")
    assert hagrid["like"] == "thumbs_up"
    assert hagrid["peace"] == "victory"
    assert hagrid["one"] == "index_up"
    assert hagrid["palm"] == "open_palm"
    assert hagrid["mute"] == "shush"
    assert kb.dataset_label_map("MAFW")["happiness"] == "happy"
    assert kb.dataset_label_map("DFEW")["angry"] == "angry"
    assert kb.dataset_label_map("RAVDESS")["calm"] == "calm"
    assert kb.dataset_label_map("no such dataset") == {}


def test_default_knowledge_base_is_cached():
    assert load_knowledge_base(Context()) is load_knowledge_base(Context())


# --- prompt snippets -----------------------------------------------------------------------


def test_prompt_snippet_full_blocks(kb):
    text = kb.prompt_snippet(["happy", "thumbs_up"])
    assert text.startswith("- happy (emotion): ")
    assert "AU6 cheek raiser + AU12 lip corner puller" in text
    assert "vs contempt:" in text and "vs thumbs_down:" in text
    assert "\n- thumbs_up (gesture): " in text


def test_prompt_snippet_is_brief_for_many_classes(kb):
    every = kb.prompt_snippet()
    assert len(every.splitlines()) == len(kb)
    assert len(every) < len(kb.prompt_snippet(brief=False)) / 3
    with pytest.raises(UnknownClassError):
        kb.prompt_snippet(["happy", "nope"])


# --- precise errors for broken files ---------------------------------------------------------


def test_missing_field_names_file_class_and_field(tmp_path):
    data = _valid_class(confusions=[{"id": "wave_two"}])
    path = _write(tmp_path, data)
    _write(tmp_path, _valid_class("wave_two"))
    problems = _problems(tmp_path)
    assert len(problems) == 1
    assert str(path) in problems[0]
    assert "class 'wave'" in problems[0]
    assert "field 'confusions[0].how_to_tell'" in problems[0]
    with pytest.raises(KnowledgeBaseError) as raised:
        load_knowledge_base(Context(), tmp_path)
    assert isinstance(raised.value, BehaviorAgentError)
    assert "confusions[0].how_to_tell" in str(raised.value)


def test_wrong_type_and_unknown_field(tmp_path):
    _write(tmp_path, _valid_class(temporal={"min_s": "soon", "max_s": 1, "pattern": "x" * 12}))
    _write(tmp_path, _valid_class("nod", colour="red"))
    problems = "\n".join(_problems(tmp_path))
    assert "class 'wave': field 'temporal.min_s'" in problems
    assert "class 'nod': field 'colour'" in problems


def test_mislabelled_action_unit_is_caught(tmp_path):
    units = [{"au": 12, "name": "cheek raiser"}]
    _write(tmp_path, _valid_class("happy", "emotion", action_units=units))
    (problem,) = _problems(tmp_path)
    assert "field 'action_units[0]'" in problem and "lip corner puller" in problem


def test_unknown_confusion_id(tmp_path):
    confusions = [{"id": "ghost", "how_to_tell": "Ghosts are not visible at all."}]
    path = _write(tmp_path, _valid_class(confusions=confusions))
    (problem,) = _problems(tmp_path)
    assert problem.startswith(f"{path}: class 'wave': field 'confusions[0].id'")
    assert "'ghost'" in problem


def test_id_file_kind_and_duplicates(tmp_path):
    _write(tmp_path, _valid_class(), name="waving")
    _write(tmp_path, _valid_class("fist"), kind="action")
    _write(tmp_path, _valid_class("Bad Id"), name="bad")
    problems = "\n".join(_problems(tmp_path))
    assert "class 'wave': field 'id': must equal the file name 'waving'" in problems
    assert "class 'fist': field 'kind'" in problems
    assert "class 'Bad Id': field 'id'" in problems and "snake_case" in problems


def test_consistency_problems_name_their_field(tmp_path):
    same = {"id": "nod", "how_to_tell": "A nod moves up and down."}
    itself = {"id": "wave", "how_to_tell": "It is the same thing."}
    units = [{"au": 12, "name": "lip corner puller"}]
    _write(tmp_path, _valid_class(confusions=[same, same, itself], action_units=units))
    _write(tmp_path, _valid_class("nod"))
    problems = "\n".join(_problems(tmp_path))
    assert "class 'wave': field 'action_units': only emotions" in problems
    assert "class 'wave': field 'confusions[1].id': 'nod' is listed twice" in problems
    assert "class 'wave': field 'confusions[2].id': a class cannot be confused with itself" in (
        problems
    )


def test_bad_yaml_and_bad_perception(tmp_path):
    broken = tmp_path / "gesture" / "nod.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text("id: nod\nkind: [gesture\n", encoding="utf-8")
    perception = {"detector": "hand_sign", "landmarks": [], "movement": "m", "params": {}}
    _write(tmp_path, _valid_class(perception=perception))
    problems = "\n".join(_problems(tmp_path))
    assert f"{broken}: class 'nod':" in problems and "not valid YAML" in problems
    assert "class 'wave': field 'perception.landmarks'" in problems


def test_empty_or_missing_folder(tmp_path):
    assert "no <kind>/<id>.yaml files" in _problems(tmp_path)[0]
    assert "no such knowledge-base folder" in _problems(tmp_path / "absent")[0]


def test_a_new_class_folder_loads(tmp_path):
    _write(tmp_path, _valid_class("yawn", "action", synonyms=["yawning", "yawns"]))
    kb = load_knowledge_base(Context(), tmp_path)
    assert kb.ids() == ["yawn"] and kb.get("yawn").kind == "action"


# --- lexical matching, isolated from the embedding model -------------------------------------


class _ZeroEmbedder:
    """A double with no semantic signal, so only synonym matching can score."""

    def embed(self, texts):
        return np.zeros((len(texts), 8), np.float32)


@pytest.fixture(scope="module")
def lexical_kb(kb) -> KnowledgeBase:
    return KnowledgeBase([kb.get(i) for i in kb.ids()], embedder=_ZeroEmbedder())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scratching his head", "head_scratch"),
        ("Thumbs down!", "thumbs_down"),
        ("she nodded", "nod"),
        ("he is clapping", "clapping"),
        ("like", "thumbs_up"),  # a HaGRID label, exact match only
        ("shake_hands", "shake_hands"),
    ],
)
def test_synonym_matching(lexical_kb, text, expected):
    assert lexical_kb.match(text, k=1)[0].id == expected


def test_lexical_guards(lexical_kb):
    # "like" inside a sentence is not the HaGRID label; "at what point" is not pointing.
    assert lexical_kb.match("it looks like rain", k=1)[0].score == 0.0
    assert lexical_kb.match("at what point does she cry", k=1)[0].id == "sad"
    assert lexical_kb.match("   ") == []
    assert lexical_kb.match_many(["", "nodding"], k=1)[0] == []
    only_actions = lexical_kb.match("he is nodding while walking", k=2, kinds=["action"])
    assert [m.kind for m in only_actions] == ["action", "action"]
    assert only_actions[0].id == "walk"


# --- CLI (no embedding model needed) ----------------------------------------------------------


def test_cli_validate_list_show(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["kb", "validate"])
    assert result.exit_code == 0, result.output
    count = int(re.match(r"ok: (\d+) classes", result.output).group(1))
    assert count == len(load_knowledge_base(Context()))

    listed = runner.invoke(app, ["kb", "list", "--kind", "emotion", "--json"])
    rows = json.loads(listed.stdout)["classes"]
    assert set(REQUIRED_IDS["emotion"]) <= {r["id"] for r in rows}
    assert all(r["kind"] == "emotion" for r in rows)

    shown = runner.invoke(app, ["kb", "show", "happy"])
    assert shown.stdout.startswith("happy  (emotion)  Happiness")
    assert "AU12 lip corner puller" in shown.stdout and "contempt:" in shown.stdout
    assert json.loads(runner.invoke(app, ["kb", "show", "fall", "--json"]).stdout)["id"] == "fall"

    _write(tmp_path, _valid_class(confusions=[{"id": "ghost", "how_to_tell": "Not visible."}]))
    broken = runner.invoke(app, ["kb", "validate", str(tmp_path)])
    assert broken.exit_code == 1
    assert "confusions[0].id" in broken.output

    bad_kind = runner.invoke(app, ["kb", "list", "--kind", "mood"])
    assert bad_kind.exit_code != 0
