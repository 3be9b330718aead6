"""Shared fixtures: the real labelled media in ../shared/media, a private data directory."""

import csv
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = Path(
    os.environ.get("BEHAVIOR_AGENT_SHARED_MEDIA", REPO_ROOT.parent / "shared" / "media")
)


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """The folder of real labelled recordings; skips loudly where it is absent."""
    if not (SHARED_MEDIA / "manifest.csv").is_file():
        pytest.skip(
            f"SHARED MEDIA MISSING: {SHARED_MEDIA} has no manifest.csv; "
            "set BEHAVIOR_AGENT_SHARED_MEDIA to the folder to run the real-media tests"
        )
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def manifest(shared_media: Path) -> list[dict[str, str]]:
    """Rows of ../shared/media/manifest.csv (one per labelled segment)."""
    with open(shared_media / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private BEHAVIOR_AGENT_HOME for one test, so tests never touch the user's library."""
    folder = tmp_path / "home"
    monkeypatch.setenv("BEHAVIOR_AGENT_HOME", str(folder))
    return folder
