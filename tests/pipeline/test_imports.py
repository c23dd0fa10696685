"""No import loop anywhere in ``wsi_ssl``, and each pipeline module imports on its own.

An import loop works only in the order it happens to be entered (``import a`` works, ``import b``
first fails on a partly initialised ``a``), so it breaks the day a new caller starts elsewhere.
Two checks: the static graph of every import that can run (module level and inside functions;
imports under ``if TYPE_CHECKING:`` never run and are left out) has no cycle; and every pipeline
module imports first thing in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import wsi_ssl

PACKAGE_DIR = Path(wsi_ssl.__file__).resolve().parent
CHECKED = ("wsi_ssl",)  # the whole package


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the installed ``wsi_ssl``."""
    out = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = ["wsi_ssl", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the ``wsi_ssl`` modules it imports (``from pkg import sub`` counts as ``pkg.sub``)."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        type_only = {
            id(n)
            for block in ast.walk(tree)
            if _is_type_checking_block(block)
            for stmt in block.body  # type: ignore[attr-defined]
            for n in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                dep = known(target)
                if dep and dep != name:
                    graph[name].add(dep)
    return graph


def _is_type_checking_block(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): imports for annotations only."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_sees_a_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_loop_in_the_package() -> None:
    graph = import_graph(module_files())
    assert graph["wsi_ssl.pipeline.runner"] >= {"wsi_ssl.pipeline.stages", "wsi_ssl.pipeline.report"}  # sanity
    loops = [c for c in cycles(graph) if any(m == p or m.startswith(p + ".") for m in c for p in CHECKED)]
    assert not loops, f"import loops: {loops}"


PIPELINE_MODULES = sorted(m for m in module_files() if m == "wsi_ssl.pipeline" or m.startswith("wsi_ssl.pipeline."))


@pytest.mark.parametrize("module", PIPELINE_MODULES + ["wsi_ssl.client", "wsi_ssl.synthetic.command"])
def test_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_cli_parser_stays_light() -> None:
    """``wsi-ssl --help`` imports every command module: none may pull in torch, pandas or the renderer."""
    code = (
        "import sys, wsi_ssl.cli as c; c.build_parser(); "
        "print(' '.join(m for m in ('torch', 'pandas', 'matplotlib', 'tifffile', 'zarr') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", f"imported by the parser: {done.stdout.strip()}"


def test_old_client_import_path_is_the_same_client() -> None:
    from wsi_ssl.client import ApiError, Client
    from wsi_ssl.serve import client

    assert Client is client.Client and ApiError is client.ApiError
