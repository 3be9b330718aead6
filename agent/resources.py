"""Finds the data that ships with the package (prompts, knowledge base) in a wheel or a checkout."""

from functools import cache
from pathlib import Path

from agent.errors import BehaviorAgentError

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """The folder `name` (`prompts` or `knowledge`).

    An installed wheel carries it as `agent/_data/<name>`; an editable install or a checkout
    has it at the repository's top level, beside the `agent/` package.
    """
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise BehaviorAgentError(
        f"The package data folder '{name}' is missing (looked in {_PACKAGE_DIR / '_data'} and "
        f"{_PACKAGE_DIR.parent}). Reinstall behavior-agent with `bash scripts/install.sh`."
    )


def load_prompt(name: str) -> str:
    """The text of the prompt template `prompts/<name>.txt` (or `.md`)."""
    folder = data_dir("prompts")
    for suffix in (".txt", ".md"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    known = sorted(p.stem for p in folder.iterdir() if p.suffix in {".txt", ".md"})
    raise BehaviorAgentError(f"No prompt named '{name}' in {folder}; known prompts: {known}.")
