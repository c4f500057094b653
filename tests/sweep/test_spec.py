"""Sweep specs: grid expansion, override order, stable run ids, validation errors."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.sweep.helpers import write_fake_world, write_spec
from zsseg_bench.config.projects import get_method, list_methods
from zsseg_bench.sweep.runner import build_stage_command
from zsseg_bench.sweep.spec import SweepSpecError, load_sweep_spec

REPO = Path(__file__).resolve().parents[2]


def test_grid_expands_methods_datasets_settings_variants_seeds(tmp_path):
    spec = load_sweep_spec(write_spec(
        tmp_path, settings=["inductive", "transductive"], seeds=[0, 1, 2],
        grid={"SOLVER.BASE_LR": [0.001, 0.0001]}))
    cells = spec.expand()
    assert len(cells) == 2 * 1 * 2 * 2 * 3
    assert len({c.run_id for c in cells}) == len(cells)
    combos = {(c.method, c.setting, c.variant, c.seed) for c in cells}
    assert ("zegclip", "transductive", "SOLVER.BASE_LR=0.0001", 2) in combos
    assert {c.stages for c in cells} == {("train", "speed")}


def test_overrides_are_ordered_general_to_specific(tmp_path):
    spec = load_sweep_spec(write_spec(
        tmp_path,
        methods={"zegclip": {"overrides": {"A": 2}, "label": "ZegCLIP*"}}, baseline=None,
        overrides={"A": 1, "B": [1, 2]},
        settings={"transductive": {"overrides": {"C": True}}},
        variants={"small": {"A": 3}},
        speed={"overrides": {"TEST.MODE": "whole"}, "args": ["--input-size", 160, 160]},
        train={"args": ["--no-progress"]},
    ))
    (cell,) = spec.expand(extra_overrides=["D", "x"])
    train = cell.opts["train"]
    assert train == ["A", "1", "B", "[1, 2]", "A", "2", "ZERO_SHOT.SETTING", "transductive",
                     "C", "True", "A", "3", "D", "x", "SEED", "0"]
    assert cell.opts["speed"] == train + ["TEST.MODE", "whole"]
    assert cell.method_label == "ZegCLIP*" and cell.variant == "small"
    assert cell.run_id.startswith("zegclip-fakeworld-transductive-s0-small-")
    cmd = build_stage_command(cell, "train", tmp_path / "run")
    assert cmd[0] == sys.executable and cmd[-2:] == ["SEED", "0"]
    assert cmd[cmd.index("--output-dir") + 1] == str(tmp_path / "run" / "train")
    assert cmd[cmd.index("--output-dir") + 2] == "--no-progress"
    speed = build_stage_command(cell, "speed", tmp_path / "run")
    assert speed[speed.index("--output-dir") + 2:][:4] == ["--input-size", "160", "160", "A"]


def test_run_ids_are_stable_across_processes_and_change_with_the_config(tmp_path):
    path = write_spec(tmp_path, seeds=[0, 1])
    ids = [c.run_id for c in load_sweep_spec(path).expand()]
    code = ("import sys; from zsseg_bench.sweep.spec import load_sweep_spec; "
            "print(' '.join(c.run_id for c in load_sweep_spec(sys.argv[1]).expand()))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True, cwd=REPO,
                         env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin",
                              "PYTHONPATH": str(REPO)})
    assert out.stdout.split() == ids
    assert ids == [c.run_id for c in load_sweep_spec(path).expand()]
    # A different value anywhere (here inside a method's config file) changes only its ids.
    cfg = tmp_path / "configs" / "fakeworld" / "zegclip.yaml"
    cfg.write_text(cfg.read_text() + "# edited\n")
    new = [c.run_id for c in load_sweep_spec(path).expand()]
    assert new[:2] == ids[:2] and new[2:] != ids[2:]


def test_ids_hash_the_resolved_zsseg_config(tmp_path):
    """With resolve_configs, an override moved from the spec into the config keeps the id."""
    configs = tmp_path / "configs"
    (configs / "toy").mkdir(parents=True)
    (configs / "sweeps").mkdir()
    (configs / "toy" / "a.yaml").write_text("SOLVER:\n  MAX_ITER: 7\n")
    (configs / "toy" / "b.yaml").write_text("SOLVER:\n  MAX_ITER: 5\n")
    spec_a = configs / "sweeps" / "a.yaml"
    spec_a.write_text(yaml.safe_dump({"methods": {"m": {"config": "../toy/a.yaml"}},
                                      "datasets": ["toy"]}))
    spec_b = configs / "sweeps" / "b.yaml"
    spec_b.write_text(yaml.safe_dump({"methods": {"m": {"config": "../toy/b.yaml"}},
                                      "datasets": ["toy"], "overrides": {"SOLVER.MAX_ITER": 7}}))
    (a,) = load_sweep_spec(spec_a).expand(data=_same_data)
    (b,) = load_sweep_spec(spec_b).expand(data=_same_data)
    assert a.run_id == b.run_id
    (c,) = load_sweep_spec(spec_b).expand(extra_overrides=["SOLVER.MAX_ITER", "8"],
                                          data=_same_data)
    assert c.run_id != a.run_id
    with pytest.raises(SweepSpecError, match="SOLVER.MAX_ITRE"):
        load_sweep_spec(spec_b).expand(extra_overrides=["SOLVER.MAX_ITRE", "8"],
                                       data=_same_data)


def _same_data(config_file, opts):
    return {"synthetic_train": "f0", "synthetic_val": "f1"}


def _dry_run_ids(spec, datasets_root, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "zsseg_bench", "sweep", str(spec), "--output-dir",
         str(tmp_path / "sweep"), "--dry-run"], capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "ZSSEG_DATASETS": str(datasets_root), "PYTHONPATH": str(REPO)},
        timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return [line.split()[0] for line in out.stdout.splitlines() if line.endswith("[to run]")]


def test_ids_include_the_data_stable_for_the_same_files_under_another_root(tmp_path):
    from zsseg_bench.data.synthetic import prepare_synthetic

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "methods": {"zegclip": {"config": str(REPO / "configs/synthetic/zegclip.yaml")}},
        "datasets": ["synthetic"], "seeds": [0, 1]}))
    prepare_synthetic(str(tmp_path / "a"), num_train=6, num_val=3)
    shutil.copytree(tmp_path / "a", tmp_path / "copy")  # the same files under another root
    prepare_synthetic(str(tmp_path / "b"), num_train=6, num_val=4)  # other data
    ids = {root: _dry_run_ids(spec, tmp_path / root, tmp_path) for root in ("a", "copy", "b")}
    assert len(ids["a"]) == 2
    assert ids["copy"] == ids["a"]
    assert len(set(ids["b"]) & set(ids["a"])) == 0


def test_methods_star_is_every_installed_method_with_a_config_of_the_dataset(tmp_path):
    # alpha is a config file but no installed method; san is a method without a config here.
    write_fake_world(tmp_path, methods={"alpha": {}, "Base-fake": {}})
    spec = load_sweep_spec(write_spec(tmp_path, methods="*", labels={"zegclip": "Z"}))
    assert sorted({c.method for c in spec.expand()}) == ["two_stage", "zegclip"]
    # Labels: the spec's where it gives one, else the method's own (Method.label).
    assert {m.name: m.label for m in spec.methods} == {
        "two_stage": get_method("two_stage").label, "zegclip": "Z"}


def test_demo_spec_covers_the_installed_methods_with_toy_configs():
    toy = {m.name for m in list_methods() if m.toy_config is not None}
    assert {"two_stage", "zegclip"} <= toy
    spec = load_sweep_spec(REPO / "configs" / "sweeps" / "toy_comparison.yaml")
    assert {m.name: m.label for m in spec.methods} == {
        m.name: m.label for m in list_methods() if m.name in toy}
    assert list(spec.settings) == ["inductive"] and spec.seeds == [0]
    assert spec.baseline == "two_stage" and get_method("two_stage").reference


@pytest.mark.parametrize("fields, match", [
    ({"methodz": ["a"]}, "unknown key methodz; did you mean methods"),
    ({"methods": ["nope"], "baseline": None}, "nope.yaml of method 'nope'.*does not exist"),
    ({"seeds": [0, 0]}, "duplicates"),
    ({"description": ["a"]}, "description must be text"),
    ({"seeds": "0"}, "seeds must be a non-empty list"),
    ({"settings": ["semi"]}, "setting 'semi' is not one of"),
    ({"baseline": "x"}, "baseline 'x' is not one of the methods"),
    ({"grid": {"A": []}}, "grid.A must be a non-empty list"),
    ({"speed": {"enable": True}}, "unknown key speed.enable"),
    ({"seed": [1]}, "unknown key seed; did you mean seeds?"),
    ({"launcher": {"default": "pbs"}}, "launcher.default must be one of local, slurm"),
    ({"launcher": {"local": {"jobs": 0}}}, "launcher.local.jobs must be an integer >= 1"),
    ({"launcher": {"local": {"job": 2}}},
     "unknown key launcher.local.job; did you mean launcher.local.jobs"),
    ({"launcher": {"local": {"first": ["nope"]}}}, "launcher.local.first must list methods"),
    ({"launcher": {"slurm": 4}}, "launcher.slurm must be a mapping"),
])
def test_bad_specs_name_the_file_and_the_key(tmp_path, fields, match):
    path = write_spec(tmp_path, **fields)
    with pytest.raises(SweepSpecError, match=match) as info:
        load_sweep_spec(path).expand()
    assert str(path) in str(info.value)


def test_missing_and_invalid_spec_files(tmp_path):
    with pytest.raises(SweepSpecError, match="not found"):
        load_sweep_spec(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("methods: [a\n")
    with pytest.raises(SweepSpecError, match="not valid YAML"):
        load_sweep_spec(bad)


def test_every_launcher_a_spec_may_name_exists():
    from zsseg_bench.sweep.launchers import LAUNCHERS
    from zsseg_bench.sweep.spec import LAUNCHER_NAMES

    assert tuple(LAUNCHERS) == LAUNCHER_NAMES
    assert all(hasattr(cls, m) for cls in LAUNCHERS.values()
               for m in ("from_spec", "prepare", "launch"))
