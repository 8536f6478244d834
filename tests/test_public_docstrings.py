"""The public surface is documented: every public function, class and method of the core's documented modules has
a docstring, and every package names its public API in ``__all__``. Read from the source (no imports), so it is
instant and needs no optional dependency."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Modules whose public names must all carry a docstring (packages: every public module in them).
DOCUMENTED = ["trautoml/grouping", "trautoml/models", "landmarkers", "trautoml/workspace.py", "trautoml/tracking.py",
              "trautoml/summary.py", "trautoml/naming.py", "trautoml/progress.py", "trautoml/decision.py",
              "trautoml/decide.py", "trautoml/warmstart.py", "trautoml/presets.py", "trautoml/stages",
              "trautoml/trial_runner.py", "trautoml/search.py", "trautoml/api.py", "trautoml/registry.py",
              "trautoml/testing.py", "trautoml/__init__.py", "trautoml/cli.py", "trautoml/data", "trautoml/executor.py",
              "trautoml/workers.py", "trautoml/bench", "trautoml/mechanisms.py", "trautoml/plots.py",
              "trautoml/workspace_store.py", "search_backends"]
#: Packages that must list their public API in ``__all__``.
PACKAGES = ["trautoml/grouping", "trautoml/models", "trautoml/bench", "trautoml/stages", "trautoml/data",
            "landmarkers", "search_backends", "search_backends/enas", "search_backends/transfer"]


def _files(entry: str) -> list[Path]:
    path = ROOT / entry
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [f for f in files if all(not p.startswith("_") or p == "__init__.py" for p in f.relative_to(ROOT).parts)]


def _defs(body) -> list:
    return [n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def undocumented(files: list[Path]) -> list[str]:
    """``path:line name`` of every public function, class and method in ``files`` without a docstring. A method
    counts as documented when a base class of the same name, defined in ``files``, documents it."""
    trees = {f: ast.parse(f.read_text()) for f in files}
    classes: dict[str, list[ast.ClassDef]] = {}
    for tree in trees.values():
        for node in _defs(tree.body):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, []).append(node)

    def inherited(cls: ast.ClassDef, method: str, seen: frozenset = frozenset()) -> bool:
        for base in cls.bases:
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
            for b in classes.get(name, []):
                if id(b) in seen:
                    continue
                if any(m.name == method and ast.get_docstring(m) for m in _defs(b.body)) or \
                        inherited(b, method, seen | {id(b)}):
                    return True
        return False

    missing = []
    for f, tree in trees.items():
        where = f.relative_to(ROOT)
        for node in _defs(tree.body):
            if node.name.startswith("_"):
                continue
            if not ast.get_docstring(node):
                missing.append(f"{where}:{node.lineno} {node.name}")
            if isinstance(node, ast.ClassDef):
                for m in _defs(node.body):
                    if not m.name.startswith("_") and not ast.get_docstring(m) and not inherited(node, m.name):
                        missing.append(f"{where}:{m.lineno} {node.name}.{m.name}")
    return missing


def test_public_functions_classes_and_methods_have_docstrings():
    files = [f for entry in DOCUMENTED for f in _files(entry)]
    assert len(files) > len(DOCUMENTED)
    missing = undocumented(files)
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_list_their_public_api(package):
    init = ROOT / package / "__init__.py"
    tree = ast.parse(init.read_text())
    assert ast.get_docstring(tree), f"{package} has no docstring"
    listed = [node.value for node in tree.body if isinstance(node, ast.Assign)
              and any(getattr(t, "id", None) == "__all__" for t in node.targets)]
    assert listed, f"{package}/__init__.py has no __all__"
    names = ast.literal_eval(listed[-1])
    bound = {(a.asname or a.name).split(".")[0] for node in ast.walk(tree)
             if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names}
    bound |= {n.name for n in _defs(tree.body)}
    bound |= {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
              if isinstance(t, ast.Name)}
    submodules = {p.stem for p in (ROOT / package).glob("*.py")} | \
        {p.parent.name for p in (ROOT / package).glob("*/__init__.py")}
    unknown = [n for n in names if n not in bound | submodules]
    assert not unknown, f"{package}.__all__ names what the package does not define: {unknown}"
    assert not [n for n in names if n.startswith("_")], f"{package}.__all__ lists private names"
