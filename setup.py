"""Installs the ``zsseg_bench`` core, maps ``projects/*`` into ``zsseg_bench.projects`` and
``configs/`` into ``zsseg_bench.configs`` (package data).

Detectron2 maps its ``projects/`` folder into the ``detectron2.projects`` namespace the same way:
the method plug-ins ship with the core but the core never imports them; the CLI discovers them
through the ``zsseg_bench.projects`` entry-point group. Each package ``projects/<name>/`` is
one method; its ``__init__.py`` binds ``METHOD`` (its ``zsseg_bench.config.projects.Method``),
which becomes its entry point (the packages are the one list of methods; see
projects/README.md). The configs stay in the repository's top-level ``configs/`` and are
installed as ``zsseg_bench/configs/**`` (as detectron2 ships its model-zoo configs), where
``zsseg_bench.config.suite_configs`` finds them in a wheel or non-editable install.
"""

import ast
from pathlib import Path

from setuptools import find_packages, setup


def project_packages() -> dict[str, str]:
    """Maps every package under ``projects/`` to ``zsseg_bench.projects.<...>``."""
    mapping = {"zsseg_bench.projects": "projects"}
    for pkg in find_packages("projects"):
        mapping[f"zsseg_bench.projects.{pkg}"] = str(Path("projects", *pkg.split(".")))
    return mapping


def _bound_names(init: Path) -> set[str]:
    """Names bound at the top level of ``init`` (imports, functions, assignments)."""
    names = set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def project_entry_points() -> list[str]:
    """``<name> = zsseg_bench.projects.<name>:METHOD`` per method package."""
    eps = []
    for init in sorted(Path("projects").glob("*/__init__.py")):
        name = init.parent.name
        if "METHOD" not in _bound_names(init):
            raise SystemExit(f"{init}: a method package must bind METHOD (its "
                             "zsseg_bench.config.projects.Method) at the top level; see "
                             "projects/README.md")
        eps.append(f"{name} = zsseg_bench.projects.{name}:METHOD")
    return eps


def config_packages() -> dict[str, str]:
    """Maps ``configs/`` and every folder under it to ``zsseg_bench.configs.<...>``: data-only
    packages whose YAML files (and READMEs) are installed as package data."""
    folders = [Path("configs"), *sorted(p for p in Path("configs").rglob("*") if p.is_dir()
                                        and p.name != "__pycache__")]
    return {".".join(("zsseg_bench", *folder.parts)): str(folder) for folder in folders}


PACKAGE_DIR = project_packages()
CONFIG_DIR = config_packages()

setup(
    name="zsseg-bench",
    version="0.1.0",
    description="Benchmark suite for CLIP-based zero-shot semantic segmentation "
    "(two-stage vs one-stage), accuracy and speed under one protocol.",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["zsseg_bench", "zsseg_bench.*"]) + list(PACKAGE_DIR)
    + list(CONFIG_DIR),
    package_dir={**PACKAGE_DIR, **CONFIG_DIR},
    package_data={"zsseg_bench": ["model_zoo/**/*"],
                  **{package: ["*.yaml", "*.md"] for package in CONFIG_DIR}},
    include_package_data=True,
    install_requires=[
        "torch>=2.2",  # never pin 2.13.0: its local CPU wheel has no matching torchvision
        "torchvision",
        "open_clip_torch>=2.24",
        "fvcore>=0.1.5.post20221221",
        "iopath",
        "pycocotools",
        "numpy",
        "scipy",
        "opencv-python-headless",
        "pandas",
        "matplotlib",
        "tqdm",
        "pyyaml",
        "safetensors",
        "submitit",
    ],
    extras_require={
        "dev": ["pytest>=7.3", "ruff"],
        "tensorboard": ["tensorboard"],
        # detectron2 is not on PyPI: build it from source first (README, "Using it from
        # detectron2"; tested: detectron2 0.6 at commit 02b5c4e2, torch 2.14, Python 3.11). The
        # integration needs nothing else, so the extra only documents the combination.
        "detectron2": [],
    },
    entry_points={
        "console_scripts": ["zsseg-bench = zsseg_bench.cli:main"],
        "zsseg_bench.projects": project_entry_points(),
    },
)
