"""The fourth method: a plug-in written outside the repository joins the whole suite.

What a third party writes, and nothing else (no file of the suite changes): a package with its
head (``scores`` / ``losses`` on :class:`~zsseg_bench.modeling.head.ZeroShotHead`), its config
keys, one toy config (and, for the paper-scale speed table, one VOC config), and the entry point
``fourth = fourth_method:METHOD`` in the ``zsseg_bench.projects`` group; here the files a pip
install would put in site-packages are put on ``PYTHONPATH`` of the CLI's subprocesses.

The head writes no zero-shot rule: it reads its loss labels from ``targets.labels(scores)``.
Trained in the transductive setting, the labels it gets are checked to follow the rules (seen
classes only and no unlabelled value before self-training; pseudo-labelled unseen classes
after), and the method trains, evaluates, appears in the toy comparison, the demo's paper-scale
speed table and the report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import REPO, cli_env

NAME, LABEL = "fourth", "Fourth (plug-in)"

PLUGIN_INIT = '''\
"""A minimal fourth method: per-pixel features matched to the class text embeddings."""

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.config import configurable
from zsseg_bench.config.config import CfgNode as CN
from zsseg_bench.config.projects import Method
from zsseg_bench.modeling import HEAD_REGISTRY
from zsseg_bench.modeling.head import ZeroShotHead
from zsseg_bench.modeling.stage_timer import stage


def add_fourth_config(cfg):
    if "FOURTH" not in cfg.MODEL:
        cfg.MODEL.FOURTH = CN()
        cfg.MODEL.FOURTH.STRIDE = 4


@HEAD_REGISTRY.register()
class FourthHead(ZeroShotHead):
    @configurable
    def __init__(self, *, embed_dim, stride):
        super().__init__()
        self.stride = stride
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=1)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))

    @classmethod
    def from_config(cls, cfg, clip):
        return {"embed_dim": clip.embed_dim, "stride": cfg.MODEL.FOURTH.STRIDE}

    def scores(self, images, vocab, clip, **kwargs):
        with stage("decoder"):
            feats = F.normalize(self.proj(F.avg_pool2d(images, self.stride)), dim=1)
            text = vocab.embeddings.to(feats.dtype)
            return torch.einsum("bdhw,kd->bkhw", feats, text) * self.logit_scale.exp()

    def losses(self, images, targets, clip, **kwargs):
        logits = F.interpolate(self.scores(images, targets.vocab, clip), size=targets.size,
                               mode="bilinear", align_corners=False)
        labels = targets.labels(logits.detach())
        if os.environ.get("FOURTH_LABEL_LOG"):  # what the test checks, not part of a method
            with open(os.environ["FOURTH_LABEL_LOG"], "a") as f:
                f.write(json.dumps({"phase": targets.phase.name,
                                    "classes": list(targets.vocab.names),
                                    "labels": sorted(set(labels.unique().tolist()))}) + "\\n")
        return {"loss_ce": F.cross_entropy(logits, labels, ignore_index=255)}


METHOD = Method(name="fourth", label="Fourth (plug-in)", add_config=add_fourth_config,
                head="FourthHead", configs=Path(__file__).parent / "configs")
'''

TOY_CONFIG = """\
MODEL:
  HEAD:
    NAME: FourthHead
  CLIP:
    NAME: ToyCLIP-ViT-P8
    WEIGHTS: zsseg_bench://toy_clip/toy_clip.pt
    TEMPLATES: single
  SIZE_DIVISIBILITY: 8
DATASETS:
  TRAIN: ("synthetic_train",)
  TEST: ("synthetic_val",)
DATALOADER:
  NUM_WORKERS: 0
INPUT:
  CROP:
    ENABLED: True
    SIZE: (64, 64)
  TEST_SCALE: (768, 192)
SOLVER:
  OPTIMIZER: ADAMW
  BASE_LR: 0.01
  MAX_ITER: 20
  IMS_PER_BATCH: 4
  CHECKPOINT_PERIOD: 1000000
  LOG_PERIOD: 5
TEST:
  MODE: whole
  IMS_PER_BATCH: 4
"""

#: Its paper-scale config (the speed table runs every method at 512 with the VOC vocabulary).
VOC_CONFIG = """\
MODEL:
  HEAD:
    NAME: FourthHead
  CLIP:
    NAME: ViT-B-16
    RANDOM_INIT: True
DATASETS:
  TEST: ("voc_val",)
INPUT:
  CROP:
    SIZE: (512, 512)
TEST:
  MODE: whole
"""


def write_plugin(site: Path) -> Path:
    """The files ``pip install fourth-method`` would put in ``site``."""
    pkg = site / "fourth_method"
    for sub, text in (("synthetic", TOY_CONFIG), ("voc", VOC_CONFIG)):
        (pkg / "configs" / sub).mkdir(parents=True)
        (pkg / "configs" / sub / f"{NAME}.yaml").write_text(text)
    (pkg / "__init__.py").write_text(PLUGIN_INIT)
    info = site / "fourth_method-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fourth-method\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[zsseg_bench.projects]\n{NAME} = fourth_method:METHOD\n")
    return pkg


def zsseg(*args: str, site: Path, datasets: Path, **env: str) -> subprocess.CompletedProcess:
    """``zsseg-bench ARGS`` with the plug-in installed (on ``PYTHONPATH``)."""
    environ = cli_env(datasets)
    environ["PYTHONPATH"] = f"{site}:{environ['PYTHONPATH']}"
    environ.update(env)
    proc = subprocess.run([sys.executable, "-m", "zsseg_bench", *args], capture_output=True,
                          text=True, cwd=REPO, env=environ, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, Path]:
    """(the plug-in's site-packages, a small toy world)."""
    from zsseg_bench.data.synthetic import prepare_synthetic

    root = tmp_path_factory.mktemp("fourth")
    prepare_synthetic(str(root / "datasets"), num_train=16, num_val=8)
    write_plugin(root / "site")
    return root / "site", root / "datasets"


@pytest.mark.slow
def test_transductive_training_follows_the_zero_shot_rules_it_never_wrote(world, tmp_path):
    site, datasets = world
    log = tmp_path / "labels.jsonl"
    config = site / "fourth_method" / "configs" / "synthetic" / f"{NAME}.yaml"
    zsseg("train", "--no-progress", "--config-file", str(config), "--output-dir",
          str(tmp_path / "run"), "ZERO_SHOT.SETTING", "transductive",
          "ZERO_SHOT.SELF_TRAIN_START_ITER", "10", site=site, datasets=datasets,
          FOURTH_LABEL_LOG=str(log))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["iteration"] == 20
    assert {"mIoU-seen", "mIoU-unseen", "hIoU"} <= set(metrics["metrics"])

    from zsseg_bench.data.synthetic import CLASS_NAMES, UNSEEN_CLASS_IDS

    unseen = {CLASS_NAMES[i] for i in UNSEEN_CLASS_IDS}
    steps = [json.loads(line) for line in log.read_text().splitlines()]
    supervised = [s for s in steps if s["phase"] == "SUPERVISED"]
    self_training = [s for s in steps if s["phase"] == "SELF_TRAINING"]
    assert len(supervised) == 10 and len(self_training) == 10
    for step in supervised:  # seen names only; labels index them (255 ignore), never 254
        assert not unseen & set(step["classes"])
        assert all(0 <= v < len(step["classes"]) or v == 255 for v in step["labels"])
    for step in self_training:  # every name; the unlabelled pixels pseudo-labelled
        assert unseen <= set(step["classes"])
        assert all(0 <= v < len(step["classes"]) or v == 255 for v in step["labels"])
    pseudo = {s["classes"][v] for s in self_training for v in s["labels"] if v != 255}
    assert pseudo & unseen, "no unlabelled pixel was pseudo-labelled with an unseen class"


@pytest.mark.slow
def test_it_joins_the_comparison_the_speed_table_and_the_report(world, tmp_path):
    site, datasets = world
    # The toy comparison (and so the demo) lists it beside the suite's methods.
    dry = zsseg("sweep", str(REPO / "configs" / "sweeps" / "toy_comparison.yaml"), "--dry-run",
                "--output-dir", str(tmp_path / "dry"), site=site, datasets=datasets).stdout
    assert f"method={NAME} " in dry and "method=zegclip " in dry
    # The demo's paper-scale speed table takes its own VOC config.
    code = ("import sys, yaml; from pathlib import Path; "
            "from zsseg_bench.commands.demo import default_speed_spec, speed_spec; "
            f"p = speed_spec(default_speed_spec(), {{'{NAME}': '{LABEL}'}}, Path(sys.argv[1])); "
            "print(yaml.safe_load(p.read_text())['methods']['fourth']['config'])")
    environ = cli_env(datasets)
    environ["PYTHONPATH"] = f"{site}:{environ['PYTHONPATH']}"
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, cwd=REPO, env=environ, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("fourth_method/configs/voc/fourth.yaml")
    # A real sweep of it (training, evaluation, timing), then the report tables it by its label.
    spec = tmp_path / "spec.yaml"
    config = site / "fourth_method" / "configs" / "synthetic" / f"{NAME}.yaml"
    spec.write_text(f"name: fourth_only\nmethods: {{{NAME}: {{config: {config}}}}}\n"
                    "datasets: [synthetic]\n"
                    "speed: {args: [--warmup, '1', --iters, '2', --repeats, '1', --no-flops]}\n")
    zsseg("sweep", str(spec), "--output-dir", str(tmp_path / "sweep"), site=site,
          datasets=datasets)
    zsseg("report", str(tmp_path / "sweep"), "--output", str(tmp_path / "report"),
          site=site, datasets=datasets)
    tables = "".join(p.read_text() for p in (tmp_path / "report").glob("*.md"))
    assert LABEL in tables
