"""The package layout (docs/architecture.md): one import namespace, the pyproject package list
matches the tree, no import cycle among our modules (imports inside functions count), no old
import paths, modules of a readable size."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OLD_TOP = ("curation", "pipelines", "schemas", "tokenizer", "trainer")
MAX_LINES = 600


def _package_dirs() -> dict[str, Path]:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: REPO / d for name, d in cfg["package-dir"].items()}, cfg["packages"]


def _modules() -> dict[str, Path]:
    """Every module of the installed namespace -> its file in the repository."""
    dirs, packages = _package_dirs()
    mods: dict[str, Path] = {}
    for pkg in packages:
        root = max((n for n in dirs if pkg == n or pkg.startswith(n + ".")), key=len)
        d = dirs[root].joinpath(*pkg[len(root) + 1:].split(".")) if pkg != root else dirs[root]
        for f in d.glob("*.py"):
            mods[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    return mods


def test_package_list_matches_the_tree():
    dirs, packages = _package_dirs()
    found = set()
    for name, d in dirs.items():
        for init in d.rglob("__init__.py"):
            rel = init.parent.relative_to(d).parts
            if name == "corpusmill" and rel and (REPO / rel[0]) in dirs.values():
                continue
            found.add(".".join([name, *rel]))
    assert found == set(packages), "pyproject.toml [tool.setuptools] packages is out of date"


def _imports(mod: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    for node in ast.walk(tree):  # every import, at module level or inside a function
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            # `from pkg import sub` imports the submodule; `from mod import name` imports mod
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            names = subs if len(subs) == len(node.names) else [base, *subs]
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != mod:
                out.add(n)
    return out


def test_no_import_cycles():
    mods = _modules()
    graph = {m: _imports(m, p, set(mods)) for m, p in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_one_namespace_no_old_import_paths():
    pattern = re.compile(rf"^\s*(from|import) ({'|'.join(OLD_TOP)})[.\s]", re.M)
    offenders = []
    for f in list(REPO.glob("*/**/*.py")):
        if ".venv" in f.parts or f.is_relative_to(REPO / "build"):
            continue
        if pattern.search(f.read_text()):
            offenders.append(str(f.relative_to(REPO)))
    assert not offenders, f"old import paths in {offenders}"


def test_modules_are_readable_size():
    big = {str(p.relative_to(REPO)): n for p in _modules().values() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_layers():
    """curation/ (and schemas/, tokenizer/, trainer/) never import the engines, stats, tools or the CLI."""
    mods = _modules()
    upper = ("corpusmill.pipelines", "corpusmill.stats", "corpusmill.tools", "corpusmill.cli")
    lower = ("corpusmill.curation", "corpusmill.schemas", "corpusmill.tokenizer", "corpusmill.trainer")
    bad = {
        m: sorted(d for d in _imports(m, p, set(mods)) if d.startswith(upper))
        for m, p in mods.items()
        if m.startswith(lower)
    }
    bad = {m: d for m, d in bad.items() if d}
    assert not bad, f"lower layers import upper ones: {bad}"
