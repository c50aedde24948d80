"""The shape of the code: no import circle in src/, no file over 400 lines, the experiment written once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml
from conftest import REPO

from heavytail.config import SCALES_DIR, load_schema

SRC = REPO / "src"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """heavytail module -> the heavytail modules it imports, at module level or inside functions alike."""
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets.add(base)
                targets |= {f"{base}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules along it, or None (a package importing its own submodules
    for re-export is not a circle of code: an __init__ is skipped as a target of its submodules)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if node.startswith(target + "."):
                continue  # a submodule importing its package __init__
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_circle_in_src():
    assert find_cycle(import_graph()) is None, find_cycle(import_graph())


def test_no_file_over_400_lines():
    kinds = ("*.py", "*.smk", "*.yaml", "*.j2", "*.sh")
    files = [p for kind in kinds for p in REPO.glob(f"**/{kind}")
             if not any(part.startswith(".") or part in ("results", "resources", "reports") and p.suffix != ".j2"
                        for part in p.relative_to(REPO).parts[:-1])]
    long = {str(p.relative_to(REPO)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_workflow_holds_rules_only_with_literal_names():
    rules = REPO / "workflow" / "rules"
    assert not list(rules.glob("*_helpers.smk"))
    for path in rules.glob("*.smk"):
        named_at_run_time = re.search(r"^\s+name:\s*$", path.read_text(), flags=re.M)
        assert not named_at_run_time, f"{path.name}: a rule named at run time is not greppable"


def _leaves(mapping, prefix=""):
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _replaced_whole(path: str, schema: dict) -> bool:
    from heavytail.config import _child_schema

    node = schema
    for part in path.split("."):
        node = _child_schema(node, part, schema)
        if node is None:
            return False
        if node.get("x-replace-whole"):
            return True
    return False


def test_the_experiment_is_written_once_and_small():
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    base_leaves = dict(_leaves(base))
    schema = load_schema()
    total = (REPO / "config.yaml").stat().st_size
    for path in SCALES_DIR.glob("*.yaml"):
        total += path.stat().st_size
        overlay = yaml.safe_load(path.read_text())
        restated = [key for key, value in _leaves(overlay)
                    if key in base_leaves and base_leaves[key] == value and not _replaced_whole(key, schema)]
        assert not restated, f"{path.name} restates config.yaml's values: {restated}"
    assert total <= 15 * 1024, f"config.yaml + scale files: {total} bytes"
