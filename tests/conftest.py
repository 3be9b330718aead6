"""Shared fixtures: the real labelled media in ../shared/media and the everyday clips in
../shared/devset, a private data directory, one real local Ray cluster per test session."""

import csv
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = Path(
    os.environ.get("BEHAVIOR_AGENT_SHARED_MEDIA", REPO_ROOT.parent / "shared" / "media")
)
# The devset lies beside the media folder (../shared/devset/{actions,gestures,emotions}).
SHARED_DEVSET = SHARED_MEDIA.parent / "devset"


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


@pytest.fixture(scope="session")
def devset() -> Path:
    """The folder of labelled everyday clips (actions/, gestures/, emotions/, each with a
    manifest.csv); skips loudly where it is absent."""
    kinds = ("actions", "gestures", "emotions")
    if not all((SHARED_DEVSET / kind / "manifest.csv").is_file() for kind in kinds):
        pytest.skip(
            f"SHARED DEVSET MISSING: {SHARED_DEVSET} lacks */manifest.csv; "
            "set BEHAVIOR_AGENT_SHARED_MEDIA so that its sibling devset/ folder is found"
        )
    return SHARED_DEVSET


def devset_rows(devset: Path, kind: str) -> list[dict[str, str]]:
    """Rows of ../shared/devset/<kind>/manifest.csv (kind: actions, gestures, emotions)."""
    with open(devset / kind / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private BEHAVIOR_AGENT_HOME for one test, so tests never touch the user's library."""
    folder = tmp_path / "home"
    monkeypatch.setenv("BEHAVIOR_AGENT_HOME", str(folder))
    return folder


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster with 2 CPUs, started once for the whole test session (a few
    seconds) and shut down at its end. Its workers import this checkout (PYTHONPATH), so the
    test doubles that tasks receive by reference load there too."""
    import ray

    paths = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    with pytest.MonkeyPatch.context() as patch:
        # The raylet copies this environment when it starts; its workers inherit it.
        patch.setenv("PYTHONPATH", os.pathsep.join(paths))
        patch.delenv("RAY_ADDRESS", raising=False)
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=200 * 1024**2,
        )
    yield ray
    ray.shutdown()
