"""Installs the ``zsseg_bench`` core and maps ``projects/*`` into ``zsseg_bench.projects``.

Detectron2 maps its ``projects/`` folder into the ``detectron2.projects`` namespace the same way:
the method plug-ins ship with the core but the core never imports them; the CLI discovers them
through the ``zsseg_bench.projects`` entry-point group.
"""

from pathlib import Path

from setuptools import find_packages, setup

PROJECTS = {"zegclip": "add_zegclip_config", "two_stage": "add_two_stage_config",
            "alignzeg": "add_alignzeg_config"}


def project_packages() -> dict[str, str]:
    """Maps every package under ``projects/`` to ``zsseg_bench.projects.<...>``."""
    mapping = {"zsseg_bench.projects": "projects"}
    for pkg in find_packages("projects"):
        mapping[f"zsseg_bench.projects.{pkg}"] = str(Path("projects", *pkg.split(".")))
    return mapping


PACKAGE_DIR = project_packages()

setup(
    name="zsseg-bench",
    version="0.1.0",
    description="Benchmark suite for CLIP-based zero-shot semantic segmentation "
    "(two-stage vs one-stage), accuracy and speed under one protocol.",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["zsseg_bench", "zsseg_bench.*"]) + list(PACKAGE_DIR),
    package_dir=PACKAGE_DIR,
    package_data={"zsseg_bench": ["model_zoo/**/*", "configs/**/*.yaml",
                                  "speed/presets/*.yaml"]},
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
        "dev": ["pytest>=7", "ruff"],
        "tensorboard": ["tensorboard"],
        # detectron2 is not on PyPI: install it from source to register our model/datasets into it.
        "detectron2": [],
    },
    entry_points={
        "console_scripts": ["zsseg-bench = zsseg_bench.cli:main"],
        "zsseg_bench.projects": [
            f"{name} = zsseg_bench.projects.{name}:{fn}" for name, fn in PROJECTS.items()
        ],
    },
)
