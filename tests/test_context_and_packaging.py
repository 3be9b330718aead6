"""Settings from the environment, and package data found by an installed (non-editable) wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agent.context import Context, default_home
from agent.errors import ConfigError
from agent.timefmt import format_clock, format_span, parse_clock

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_home_defaults_to_a_user_cache_and_follows_the_env(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("BEHAVIOR_AGENT_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert Context.from_env().home == tmp_path / "cache" / "behavior-agent"
    assert default_home() == tmp_path / "cache" / "behavior-agent"
    monkeypatch.setenv("BEHAVIOR_AGENT_HOME", str(tmp_path / "lib"))
    assert Context.from_env().home == tmp_path / "lib"


def test_env_overrides_are_typed_and_explicit_values_win(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("BEHAVIOR_AGENT_SAMPLE_FPS", "1.5")
    monkeypatch.setenv("BEHAVIOR_AGENT_TOP_K", "9")
    monkeypatch.setenv("BEHAVIOR_AGENT_BACKEND", "videollama3")
    ctx = Context.from_env(top_k=3)
    assert (ctx.sample_fps, ctx.top_k, ctx.backend) == (1.5, 3, "videollama3")


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("BEHAVIOR_AGENT_SAMPLE_FPS", "fast", "BEHAVIOR_AGENT_SAMPLE_FPS='fast'"),
        ("BEHAVIOR_AGENT_BACKEND", "gpt", "BEHAVIOR_AGENT_BACKEND='gpt'.*perception, videollama3"),
        ("BEHAVIOR_AGENT_CLIP_OVERLAP_S", "20", "overlap"),
        # A typo is refused, never read as false.
        ("BEHAVIOR_AGENT_LEARNED_MODELS", "ture", "BEHAVIOR_AGENT_LEARNED_MODELS='ture'.*true"),
        ("BEHAVIOR_AGENT_TRACK_PEOPLE", "", "BEHAVIOR_AGENT_TRACK_PEOPLE=''.*yes, on, 0"),
        ("BEHAVIOR_AGENT_QUANTIZATION", "4-bit", "QUANTIZATION='4-bit'.*auto, 4bit, 8bit, none"),
    ],
)
def test_bad_settings_say_what_to_fix(monkeypatch, name, value, match) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=match):
        Context.from_env()


@pytest.mark.parametrize(("value", "expected"), [("TRUE", True), (" on", True), ("0", False)])
def test_yes_no_settings_read_both_ways(monkeypatch, value, expected) -> None:
    monkeypatch.setenv("BEHAVIOR_AGENT_LEARNED_MODELS", value)
    assert Context.from_env().learned_models is expected


def test_library_code_reads_no_environment() -> None:
    """Only entry points (the CLI, the web app's server, `agent.api`) build a Context from the
    environment; everything else is handed one."""
    agent = Path(__file__).resolve().parent.parent / "agent"
    readers = sorted(
        str(path.relative_to(agent))
        for path in agent.rglob("*.py")
        if "from_env(" in path.read_text(encoding="utf-8")
    )
    entry_points = [p for p in readers if p.startswith("cli/")]
    assert entry_points, "the CLI builds its Context from the environment"
    rest = [p for p in readers if not p.startswith("cli/")]
    assert rest == ["api.py", "context.py", "web/server.py"]


def test_time_formatting_round_trips() -> None:
    assert format_clock(75.44) == "01:15"
    assert format_clock(75.44, 1) == "01:15.4"
    assert format_clock(3723) == "1:02:03"
    assert format_span(2.2, 7.8, 1) == "00:02.2–00:07.8"
    assert parse_clock("2:30") == 150.0
    assert parse_clock("1:02:03") == 3723.0
    assert parse_clock("12.5") == 12.5
    assert parse_clock("soon") is None


@pytest.mark.slow
def test_installed_wheel_finds_prompts_and_knowledge(tmp_path: Path) -> None:
    """A non-editable install must carry prompts/ and knowledge/ inside the package."""
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO_ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("behavior_agent-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    prompt_files = [n for n in names if n.startswith("agent/_data/prompts/")]
    knowledge_files = [n for n in names if n.startswith("agent/_data/knowledge/")]
    assert prompt_files and knowledge_files
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from agent.resources import data_dir; print(data_dir('prompts')); "
            "print(data_dir('knowledge'))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [
        str(target / "agent" / "_data" / "prompts"),
        str(target / "agent" / "_data" / "knowledge"),
    ]
