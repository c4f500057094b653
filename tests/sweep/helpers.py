"""Test helpers: a fake world of configs and specs whose stages run ``fake_stage.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

FAKE_STAGE = Path(__file__).with_name("fake_stage.py")
FAKE_COMMANDS = {
    stage: ["{python}", str(FAKE_STAGE), stage, "--config-file", "{config_file}",
            "--output-dir", "{output_dir}", "{args}", "{opts}"]
    for stage in ("train", "speed")
}
#: Method configs of the fake world: name -> FAKE keys.
FAKE_METHODS = {"two_stage": {"QUALITY": 40.0, "FPS": 2.0},
                "zegclip": {"QUALITY": 60.0, "FPS": 10.0}}


def write_fake_world(root: Path, methods: dict[str, dict[str, Any]] | None = None,
                     dataset: str = "fakeworld") -> Path:
    """Writes ``root/configs/<dataset>/<method>.yaml``; returns ``root/configs/sweeps``."""
    for name, keys in (methods or FAKE_METHODS).items():
        path = root / "configs" / dataset / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"FAKE": keys}))
    sweeps = root / "configs" / "sweeps"
    sweeps.mkdir(parents=True, exist_ok=True)
    return sweeps


def write_spec(root: Path, name: str = "fake.yaml", **fields: Any) -> Path:
    """A spec over the fake world with the fake commands; ``fields`` override its keys."""
    sweeps = write_fake_world(root)
    spec = {
        "name": "fake",
        "methods": ["two_stage", "zegclip"],
        "datasets": ["fakeworld"],
        "settings": ["inductive"],
        "seeds": [0],
        "baseline": "two_stage",
        "labels": {"two_stage": "Two-stage", "zegclip": "ZegCLIP"},
        "commands": FAKE_COMMANDS,
        "resolve_configs": False,
    }
    spec.update(fields)
    path = sweeps / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def counter_lines(path: Path) -> list[str]:
    """The calls recorded by ``FAKE.COUNTER``."""
    return path.read_text().splitlines() if path.exists() else []
