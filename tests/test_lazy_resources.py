"""Fast paths: commands with nothing to do import no heavy library; heavy resources load lazily.

The import checks run the real CLI entry point in a fresh interpreter per command and read
`sys.modules` afterwards, so an import anywhere on the path (module level or not) is seen.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.context import Context
from agent.embed import DEFAULT_TEXT_MODEL, LazyEmbedder, SentenceEmbedder
from agent.indexing import LazyPerceiver, index_video
from agent.knowledge import default_folder, load_knowledge_base
from agent.state import Detection
from agent.vlm import LazyVLM, VLMReply
from tests.synthetic import write_video

REPO_ROOT = Path(__file__).resolve().parents[1]
# Heavy libraries (and the learned perception runtimes) no "nothing to do" command may import.
HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "mediapipe",
    "onnxruntime",
    "ai_edge_litert",
)
# Runs `behavior-agent ARGS` through the entry point, then reports what got imported.
PROBE = """
import json, sys
from agent.cli import main
watched = json.loads(sys.argv[2])
sys.argv = ["behavior-agent", *json.loads(sys.argv[1])]
code = 0
try:
    main()
except SystemExit as stop:
    code = stop.code or 0
found = [name for name in watched if name in sys.modules]
print("IMPORTS " + json.dumps({"code": code, "imported": found}), file=sys.stderr)
"""
# The perception code itself; the package face and `agent.perception.capabilities` (files only)
# may load on the answer path.
WATCHED = [*HEAVY, "agent.perception.landmarks", "agent.perception.runner"]
LOAD_LINE = f"[embed] loading text embedder {DEFAULT_TEXT_MODEL} (first use in this process)"


def run_cli(home: Path, *args: str) -> tuple[dict, str, str]:
    """({"code", "imported"}, stdout, stderr) of one CLI call in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args)), json.dumps(WATCHED)],
        cwd=REPO_ROOT,
        env={**os.environ, "BEHAVIOR_AGENT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("IMPORTS ")]
    assert lines, f"the probe did not finish:\n{done.stderr[-3000:]}"
    return json.loads(lines[-1].removeprefix("IMPORTS ")), done.stdout, done.stderr


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A private home with one synthetic video indexed by the CLI (the import probe's control)."""
    folder = tmp_path_factory.mktemp("lazy")
    video = write_video(folder / "clip.mp4", [2.0], fps=10.0, size=(160, 120))
    home = folder / "home"
    first, _, stderr = run_cli(home, "index", str(video))
    assert first["code"] == 0, stderr
    return home, video, first


def test_the_probe_sees_what_real_indexing_imports(library):
    # Indexing a new video perceives it: mediapipe must show up, or the probe sees nothing.
    _, _, first = library
    assert "mediapipe" in first["imported"] and "agent.perception.runner" in first["imported"]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["library"],
        ["library", "--json"],
        ["kb", "show", "head_scratch"],
        ["kb", "list"],
        ["index", "{video}"],
        ["probe", "{video}"],
    ],
    ids=lambda args: " ".join(args),
)
def test_nothing_to_do_commands_import_no_heavy_library(library, args):
    home, video, _ = library
    result, stdout, stderr = run_cli(home, *[a.format(video=video) for a in args])
    assert result["code"] == 0, stderr
    assert result["imported"] == [], f"{' '.join(args)} imported {result['imported']}"
    if args[0] == "index":
        assert "already indexed" in stdout and "nothing to do" in stdout


def test_index_force_indexes_an_indexed_video_again(library):
    # `--force` was ignored by the CLI's own loop (only `--ray` passed it on).
    home, video, _ = library
    result, stdout, stderr = run_cli(home, "index", "--force", "--json", str(video))
    assert result["code"] == 0, stderr
    (indexed,) = json.loads(stdout)["indexed"]
    assert indexed["reused"] is False
    assert "mediapipe" in result["imported"]


@pytest.mark.parametrize(
    "args",
    [["search", "someone waving"], ["ask", "{video}", "When does someone wave?"]],
    ids=["search", "ask"],
)
def test_a_new_question_loads_the_embedder_once_and_says_so(library, args):
    home, video, _ = library
    result, stdout, stderr = run_cli(home, *[a.format(video=video) for a in args])
    assert result["code"] == 0, stderr
    assert stderr.count(LOAD_LINE) == 1, stderr
    # The default MiniLM runs on NumPy, and an indexed video needs no perception.
    assert result["imported"] == [], result["imported"]
    assert stdout.strip()


def test_quiet_ask_does_not_announce_the_load(library):
    home, video, _ = library
    result, _, stderr = run_cli(home, "ask", str(video), "Is anyone smiling?", "--quiet")
    assert result["code"] == 0, stderr
    assert "[embed]" not in stderr


def test_the_text_embedder_loads_on_its_first_embed_only(caplog):
    embedder = LazyEmbedder("text", DEFAULT_TEXT_MODEL, "cpu", SentenceEmbedder)
    assert embedder.name == DEFAULT_TEXT_MODEL
    assert embedder.version.startswith(f"{DEFAULT_TEXT_MODEL}==") and not embedder.loaded
    with caplog.at_level(logging.INFO, logger="agent.loading"):
        first = embedder.embed(["she waves"])
        again = embedder.embed(["she waves"])
    assert embedder.loaded and first.shape == (1, 384)
    np.testing.assert_array_equal(first, again)
    loads = [r.getMessage() for r in caplog.records if r.name == "agent.loading"]
    assert loads == [LOAD_LINE]


class _DescribingVLM:
    """Stands in for the real model in a first indexing run (same fingerprint and backend)."""

    version = LazyVLM.version
    backend = "videollama3"

    def __init__(self, model_id: str):
        self.model_id = model_id

    def describe(self, frames, info, kb_snippet):
        return VLMReply(text="A person.", data={"summary": "A person stands.", "people": []})


class _OneDetectionSession:
    def __init__(self, perceiver, kb, ctx, still=False):
        pass

    def add(self, batch):
        pass

    def finish(self):
        return [Detection(kind="gesture", label="wave", start_s=0.5, end_s=1.0, confidence=0.9)]


def test_an_indexed_video_is_reused_without_loading_the_vlm_or_perception(tmp_path):
    video = write_video(tmp_path / "clip.mp4", [3.0], fps=10.0, size=(160, 120))
    # A model id that cannot load: loading it would raise, so reuse must not touch it.
    model_id = str(tmp_path / "no-such-model")
    ctx = Context(
        home=tmp_path / "home", backend="videollama3", clip_length_s=3.0, model_id=model_id
    )
    kb = load_knowledge_base(Context())
    options = {"kb": kb, "session_factory": _OneDetectionSession}
    first = index_video(video, ctx, vlm=_DescribingVLM(model_id), perceiver=object(), **options)
    assert not first.reused and first.settings["backend"] == "videollama3"
    missing = LazyVLM(ctx)
    perceiver = LazyPerceiver(ctx)
    again = index_video(video, ctx, vlm=missing, perceiver=perceiver, **options)
    assert again.reused and again.clip_count == first.clip_count
    assert not missing.loaded and not perceiver.loaded


def test_the_lazy_vlm_fingerprint_names_the_class_load_vlm_returns():
    from agent.vlm.videollama3 import VideoLlama3

    assert LazyVLM.version == VideoLlama3.__name__


# --- knowledge-base vectors, cached on disk across processes -------------------------------

# Matches one phrase against a knowledge base in a fresh process, counting the texts embedded.
COUNT_EMBEDS = """
import json, sys
from agent.context import Context
from agent.embed import load_text_embedder
from agent.knowledge import default_folder, load_knowledge_base

real = load_text_embedder(Context.from_env())
embedded = []

class Counting:
    name, version = real.name, real.version

    def embed(self, texts):
        embedded.append(len(texts))
        return real.embed(texts)

kb = load_knowledge_base(Context.from_env(), sys.argv[1])
kb.embedder = Counting()
print(json.dumps({"best": kb.match("thumbs down", k=1)[0].id, "embedded": sum(embedded)}))
"""


def match_in_new_process(folder: Path, home: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", COUNT_EMBEDS, str(folder)],
        cwd=REPO_ROOT,
        env={**os.environ, "BEHAVIOR_AGENT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_class_vectors_are_reused_by_the_next_process_and_rebuilt_when_stale(tmp_path):
    folder = shutil.copytree(default_folder(), tmp_path / "knowledge")
    home = tmp_path / "home"
    first = match_in_new_process(folder, home)
    # Every class phrase was embedded once, plus the query.
    assert first["best"] == "thumbs_down" and first["embedded"] > 200
    (cached,) = (home / "cache").glob("kb_vectors_*.npy")
    second = match_in_new_process(folder, home)
    assert second == {"best": "thumbs_down", "embedded": 1}  # only the query

    # An edited class (a new synonym) is a different knowledge base: embedded afresh.
    wave = folder / "gesture" / "wave.yaml"
    original = wave.read_text(encoding="utf-8")
    assert "synonyms: [wave, " in original
    wave.write_text(original.replace("synonyms: [wave, ", "synonyms: [wave, hand flapping, "))
    edited = match_in_new_process(folder, home)
    assert edited["embedded"] == first["embedded"] + 1
    assert len(list((home / "cache").glob("kb_vectors_*.npy"))) == 2

    # A damaged cache file is rebuilt, never fatal.
    cached.write_bytes(b"not an array")
    wave.write_text(original)
    rebuilt = match_in_new_process(folder, home)
    assert rebuilt == first
    assert np.load(cached).shape[0] == first["embedded"] - 1


def test_indexing_a_new_library_embeds_the_class_phrases_for_its_first_question(tmp_path):
    home = tmp_path / "home"
    ctx = Context(home=home, clip_length_s=3.0)
    video = write_video(tmp_path / "clip.mp4", [3.0], fps=10.0, size=(160, 120))
    index_video(video, ctx, perceiver=object(), session_factory=_OneDetectionSession)
    (cached,) = (home / "cache").glob("kb_vectors_*.npy")
    assert np.load(cached).shape[1] == 384
    # The first question in a new process embeds only itself, not ~900 class phrases.
    assert match_in_new_process(default_folder(), home) == {"best": "thumbs_down", "embedded": 1}
