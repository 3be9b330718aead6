"""The package's shape: no module in agent/ past 500 lines, no import circle between modules or
between packages, and the agent's parts in their packages.

Imports are read with `ast`, not by importing, so the check costs nothing and sees imports
inside functions too: a deferred import that closes a circle is still a circle, it only fails
later and harder to trace.
"""

import ast
import re
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parent.parent / "agent"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(AGENT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def agent_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(AGENT.rglob("*.py"))}


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The agent modules this file imports, at any depth in the file.

    `from agent.x import y` counts as `agent.x.y` when that is a module and as `agent.x`
    otherwise; relative imports are resolved against the file's package.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else base)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = agent_modules()
    known = set(modules)
    return {name: imported_modules(path, name, known) for name, path in modules.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path that ends where it starts, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once cleared
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Imports between the parts of each package: `agent.report.build -> agent.charts` is the
    edge `agent.report -> agent.charts` among agent's parts.

    A part is a direct child (module or subpackage) of a package; an import between two modules
    under different parts of the same package is an edge between those parts. A package's own
    `__init__` belongs to no part, so a face that re-exports its modules is no circle.
    """
    parts: dict[str, set[str]] = {}
    for source, targets in graph.items():
        for target in targets:
            source_parts, target_parts = source.split("."), target.split(".")
            shared = 0
            while (
                shared < min(len(source_parts), len(target_parts)) - 1
                and source_parts[shared] == target_parts[shared]
            ):
                shared += 1
            if shared == 0 or len(source_parts) == shared or len(target_parts) == shared:
                continue  # outside agent, or one of them is the package itself
            if source_parts[shared] == target_parts[shared]:
                continue  # the same part
            package = ".".join(source_parts[:shared])
            source_part = f"{package}.{source_parts[shared]}"
            target_part = f"{package}.{target_parts[shared]}"
            parts.setdefault(source_part, set()).add(target_part)
            parts.setdefault(target_part, set())
    return parts


def test_no_module_in_agent_is_longer_than_the_limit():
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in agent_modules().items()
    }
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"split these modules by concern (limit {MAX_LINES} lines): {too_long}"
    assert len(lengths) > 50  # the walk found the package, not an empty folder


def test_agent_has_no_import_circle():
    graph = import_graph()
    # The walk sees real edges: the index's face reaches its SQLite store through the layers.
    assert "agent.index.library" in graph["agent.index"]
    assert "agent.index.store" in reachable(graph, "agent.index")
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_no_two_packages_import_each_other():
    # e.g. charts.py beside report/: report.build drew charts, charts read report.model.
    parts = package_graph(import_graph())
    assert "agent.index" in parts["agent.indexing"]  # the walk sees edges between packages
    cycle = find_cycle(parts)
    assert cycle is None, "import circle between packages: " + " -> ".join(cycle or [])


def test_the_package_graph_joins_modules_into_their_parts():
    graph = {
        "agent.report.build": {"agent.charts", "agent.report.model"},
        "agent.charts": {"agent.report.model"},
        "agent.report.model": set(),
        "agent.report": {"agent.report.build"},
    }
    parts = package_graph(graph)
    assert parts["agent.report"] == {"agent.charts"}
    assert parts["agent.charts"] == {"agent.report"}
    assert parts["agent.report.build"] == {"agent.report.model"}
    assert find_cycle(parts) == ["agent.charts", "agent.report", "agent.charts"]
    # The same modules with charts inside report/: no circle between packages.
    inside = {
        "agent.report.build": {"agent.report.charts", "agent.report.model"},
        "agent.report.charts": {"agent.report.model"},
        "agent.report.model": set(),
    }
    assert find_cycle(package_graph(inside)) is None


# The modules agent/ holds at its top level: shared records and settings, the video layer and
# the public API. Everything else lives in a package (the agent loop in loop/, charts in
# report/, capabilities in perception/, the embedders in embed/).
TOP_LEVEL = {
    "agent.api",
    "agent.context",
    "agent.errors",
    "agent.events",
    "agent.provenance",
    "agent.quiet",
    "agent.resources",
    "agent.state",
    "agent.time_phrases",
    "agent.timefmt",
    "agent.video",
}


def test_agent_top_level_holds_only_shared_modules_and_packages():
    modules = agent_modules()
    loose = {
        name
        for name, path in modules.items()
        if name.count(".") == 1 and path.name != "__init__.py"
    }
    assert loose == TOP_LEVEL, f"put these in a package: {sorted(loose - TOP_LEVEL)}"
    for name in ("graph", "nodes", "deps", "retrieval", "inspection", "onset", "composing"):
        assert f"agent.loop.{name}" in modules
    for name in ("answering", "checkable"):
        assert f"agent.loop.{name}" in modules
    assert {"agent.report.charts", "agent.perception.capabilities"} <= set(modules)
    assert {"agent.embed.embedders", "agent.embed.text_encoder"} <= set(modules)
    assert not any(name.startswith("agent.web.readiness") for name in modules)  # a test helper


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}, ["b", "b2", "b"]),
    ],
)
def test_the_cycle_finder_finds_circles_and_only_circles(graph, expected):
    assert find_cycle(graph) == expected


def test_from_imports_resolve_to_submodules_and_relative_imports_to_the_package(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "from agent.index import store, ClipIndex\n"
        "def later():\n"
        "    from . import sibling\n"
        "    import agent.report.render\n",
        encoding="utf-8",
    )
    known = {"agent.index", "agent.index.store", "agent.pkg.sibling", "agent.report.render"}
    found = imported_modules(source, "agent.pkg.mod", known)
    assert found == {"agent.index", "agent.index.store", "agent.pkg.sibling", "agent.report.render"}


ROOT = AGENT.parent
DOCS = [ROOT / "README.md", ROOT / "knowledge" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_agent_path_the_docs_name_exists():
    named = {
        (doc.name, match)
        for doc in DOCS
        for match in re.findall(r"\bagent/[\w/]+(?:\.py|\.yaml|/)", doc.read_text(encoding="utf-8"))
    }
    assert len(named) > 20
    missing = sorted((doc, path) for doc, path in named if not (ROOT / path).exists())
    assert not missing, f"the docs name paths that are not in the tree: {missing}"


def test_the_readme_layout_names_every_module_and_package():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("### Layout", 1)[1].split("```", 2)[1]
    names = set(re.findall(r"[\w]+(?:\.py|/)", layout))
    unnamed = sorted(
        str(path.relative_to(AGENT))
        for path in AGENT.rglob("*.py")
        # The CLI's command modules are described as a group.
        if path.name not in ("__init__.py", "__main__.py")
        and path.name not in names
        and not (path.parent.name == "cli" and path.name.endswith("_commands.py"))
    )
    unnamed += sorted(
        str(path.relative_to(AGENT))
        for path in AGENT.rglob("__init__.py")
        if path.parent != AGENT and path.parent.name + "/" not in names
    )
    assert not unnamed, f"the README's layout section does not name: {unnamed}"
