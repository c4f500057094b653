"""Imports point downward through the layers (README.md, "Layout").

Every module of ``zsseg_bench/`` and ``projects/`` is parsed (imports inside functions and
``TYPE_CHECKING`` blocks included) and each imported ``zsseg_bench`` module is mapped to its
layer. A module may import its own layer's package and any layer below; peers (``speed``,
``sweep``, ``report``) import none of each other, the core never imports a project, and a
project never imports another (what methods share is a block of ``zsseg_bench/modeling/``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Layer of each top-level subpackage of ``zsseg_bench`` (higher may import lower).
LAYERS = {
    "utils": 0, "config": 1, "data": 2, "modeling": 3, "evaluation": 4, "engine": 5,
    "projects": 5.5, "speed": 6, "sweep": 6, "report": 6, "integrations": 6.5,
    "commands": 7, "cli": 8, "__main__": 9,
}
#: Layers whose packages are peers: one may not import another of the same rank.
PEERS = {"speed", "sweep", "report"}


def module_name(path: Path) -> str:
    """``zsseg_bench/a/b.py`` -> ``zsseg_bench.a.b``; ``projects/x/y.py`` ->
    ``zsseg_bench.projects.x.y`` (how setup.py installs it)."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "projects":
        parts = ["zsseg_bench", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_of(name: str) -> str | None:
    """The layer package of a ``zsseg_bench`` module name (None: the root package itself)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def project_of(name: str) -> str | None:
    """The method package of a ``zsseg_bench.projects.<name>...`` module name (else None)."""
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "projects" else None


def imported_modules(path: Path, name: str) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every ``zsseg_bench`` import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                drop = node.level - 1 if is_package else node.level
                base = base[:len(base) - drop]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from zsseg_bench import speed`` imports the subpackage speed
            if target == "zsseg_bench":
                out += [(node.lineno, f"zsseg_bench.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, target))
    return [(line, m) for line, m in out if m == "zsseg_bench" or m.startswith("zsseg_bench.")]


def violations() -> list[str]:
    """One line per import that points upward or sideways: ``file:line: a (layer) -> b``."""
    files = sorted((ROOT / "zsseg_bench").rglob("*.py")) + sorted((ROOT / "projects").rglob("*.py"))
    found = []
    for path in files:
        name = module_name(path)
        src = package_of(name)
        if src is None:  # zsseg_bench/__init__.py
            continue
        for line, target in imported_modules(path, name):
            dst = package_of(target)
            where = f"{path.relative_to(ROOT)}:{line}"
            if dst == src == "projects":
                a, b = project_of(name), project_of(target)
                if a and b and a != b:
                    found.append(f"{where}: project {a} imports another project ({target}); "
                                 "share the block through zsseg_bench/modeling/")
                continue
            if dst is None or dst == src:
                continue
            if dst not in LAYERS:
                found.append(f"{where}: imports {target}, a package with no layer (add it to "
                             "LAYERS and to the README's layer picture)")
            elif dst == "projects" and src != "projects":
                found.append(f"{where}: the core ({src}) imports a project ({target})")
            elif LAYERS[dst] > LAYERS[src] or (LAYERS[dst] == LAYERS[src] and src in PEERS):
                kind = "a peer" if LAYERS[dst] == LAYERS[src] else "an upper layer"
                found.append(f"{where}: {src} (layer {LAYERS[src]}) imports {kind}, "
                             f"{dst} (layer {LAYERS[dst]}): {target}")
    return found


def test_every_package_has_a_layer():
    packages = {p.name for p in (ROOT / "zsseg_bench").iterdir()
                if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in (ROOT / "zsseg_bench").glob("*.py") if p.stem != "__init__"}
    assert packages - set(LAYERS) == set(), "give every package of zsseg_bench/ a layer"


def test_imports_point_downward():
    found = violations()
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_the_checker_sees_upward_imports(tmp_path, monkeypatch):
    """The checker itself: an upward import inside a function and a relative one are caught."""
    pkg = tmp_path / "zsseg_bench"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("from ..engine import hooks\n")
    (pkg / "data" / "x.py").write_text("def f():\n    from zsseg_bench.sweep import spec\n")
    (tmp_path / "projects" / "m1").mkdir(parents=True)
    (tmp_path / "projects" / "m1" / "head.py").write_text(
        "from zsseg_bench.projects.m2.backbone import B\nfrom .config import C\n"
        "from zsseg_bench.modeling.mlp import MLP\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    found = violations()
    assert found == [
        "zsseg_bench/data/__init__.py:1: data (layer 2) imports an upper layer, engine "
        "(layer 5): zsseg_bench.engine",
        "zsseg_bench/data/x.py:2: data (layer 2) imports an upper layer, sweep (layer 6): "
        "zsseg_bench.sweep",
        "projects/m1/head.py:1: project m1 imports another project "
        "(zsseg_bench.projects.m2.backbone); share the block through zsseg_bench/modeling/",
    ]
