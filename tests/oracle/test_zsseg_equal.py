"""The two-stage model is zsseg.baseline: the official code and the suite, given the same random
weights, compute the same thing, stage by stage.

The official side (MendelXu/zsseg.baseline @ d77c3af) runs in its own virtual environment
(``tests/oracle/setup_zsseg_env.sh PREFIX``; its python named by ``ZSSEG_ORACLE_ZSSEG_PYTHON``)
as ``tests/oracle/zsseg_official.py``: it builds the paper config's model with random weights
(about 8 non-empty proposals per image: each is a ViT-B/16 crop), saves them in its checkpoint
format and records every stage on two images, a square one and a non-square one, batched (so
both are padded, to 128 x 160), and the training losses on their labels. The suite builds the
same config from ``configs/<dataset>/two_stage.yaml``, loads the official checkpoint through
the zsseg converter (``projects/two_stage/convert.py``) and the same CLIP file, and must agree:
final scores within 1e-4 relative, arg-max identical, every training loss within 1e-5.

Without the oracle environment the tests skip; with ``ZSSEG_REQUIRE_ORACLE=1`` (CI) they fail.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from zsseg_bench.data.catalog import DatasetCatalog, MetadataCatalog, class_split
from zsseg_bench.projects.two_stage.convert import rename

from .oracle import oracle_python as shared_oracle_python
from .zsseg_suite import (
    FINAL_RTOL,
    LOSS_RTOL,
    OracleError,
    SuiteRun,
    build_suite_model,
    failures,
    finish,
    print_table,
    rel,
    run_suite,
    stage_table,
    start_official,
    wait_for,
    write_clip,
    write_inputs,
)

#: A COCO-Stuff class subset (text of 171 classes x 14 ViLD prompts would dominate the run):
#: seen and unseen things and stuff, indices into the 171 classes (zsseg's order = the suite's).
COCO_CLASSES = [0, 2, 19, 20, 24, 33, 95, 105, 123, 140, 148, 168]
pytestmark = pytest.mark.slow


def oracle_python() -> str:
    return shared_oracle_python("zsseg")


# ------------------------------------------------------------------------------ fixtures
@dataclass
class Comparison:
    official: dict[str, Any]
    ours: SuiteRun
    inputs: dict[str, Any]
    model: Any
    dataset: str


def compare_config(tmp: Path, clip: Path, config: str, official: str, dataset: str,
                   classes: list[int], label_ids: list[int], train: bool) -> Comparison:
    """Runs ``configs/<config>`` against the official config ``official`` (zsseg_official.py's
    CONFIGS) on the same inputs; the official side in a subprocess on the other core."""
    python = oracle_python()
    inputs_file = tmp / "inputs.pt"
    inputs = write_inputs(inputs_file, classes, label_ids)
    proc = start_official(python, official, clip, inputs_file, tmp,
                          [] if train else ["--no-train"])
    try:
        wait_for(proc, tmp / "official_model.pth")
    except OracleError as e:
        pytest.fail(str(e), pytrace=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the official side runs on the other core
    try:
        model = build_suite_model(config, clip, tmp / "official_model.pth",
                                  ["DATASETS.TRAIN", f"('{dataset}',)",
                                   "DATASETS.TEST", f"('{dataset}',)"])
        ours = run_suite(model, inputs, dataset, train)
    finally:
        torch.set_num_threads(threads)
    try:
        official = finish(proc, tmp / "official.pt")
    except OracleError as e:
        pytest.fail(str(e), pytrace=False)
    return Comparison(official, ours, inputs, model, dataset)


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    oracle_python()
    path = tmp_path_factory.mktemp("clip") / "clip.pth"
    write_clip(path)
    return path


@pytest.fixture(scope="module")
def voc(tmp_path_factory: pytest.TempPathFactory, clip_file: Path) -> Comparison:
    # classes: zsseg's 20 VOC classes; labels: aeroplane, bottle, person and sheep (unseen)
    return compare_config(tmp_path_factory.mktemp("voc"), clip_file, "voc/two_stage.yaml", "voc",
                          "voc_zs_val", list(range(20)), [0, 4, 14, 16], train=True)


def coco_subset() -> str:
    """A metadata-only dataset of the COCO-Stuff classes :data:`COCO_CLASSES` (the suite's
    names and split of them)."""
    names, seen, _ = class_split("coco_stuff_zs_val")
    sub = [names[i] for i in COCO_CLASSES]
    name = "zsseg_oracle_coco_subset"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, list)
        MetadataCatalog.get(name).set(
            stuff_classes=sub, ignore_label=255,
            seen_classes=[j for j, i in enumerate(COCO_CLASSES) if i in seen],
            unseen_classes=[j for j, i in enumerate(COCO_CLASSES) if i not in seen])
    return name


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory, clip_file: Path) -> Comparison:
    return compare_config(tmp_path_factory.mktemp("coco"), clip_file, "coco_stuff/two_stage.yaml",
                          "coco", coco_subset(), COCO_CLASSES, [0, 2], train=False)


@pytest.fixture(scope="module", params=["coco", "voc"])
def learned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            clip_file: Path) -> Comparison:
    """Learned prompts (random): COCO-Stuff's for both classifiers (the released zero-shot
    model's config), VOC's for the CLIP crops only (a separate adapter)."""
    family = request.param
    dataset, classes = (coco_subset(), COCO_CLASSES) if family == "coco" else (
        "voc_zs_val", list(range(20)))
    config = "coco_stuff" if family == "coco" else "voc"
    return compare_config(tmp_path_factory.mktemp(f"{family}_learned"), clip_file,
                          f"{config}/two_stage_learned_prompts.yaml", f"{family}_learned",
                          dataset, classes, [0, 2], train=False)


# ------------------------------------------------------------------------------ tests
def test_voc_same_classes_and_text(voc: Comparison):
    assert voc.ours.names == voc.official["names"]
    assert voc.ours.seen == voc.official["seen"]
    assert voc.official["cfg"]["templates"] == ["a sculpture of a {}."]
    print(f"\nVOC class texts: {rel(voc.ours.text, voc.official['text'][:-1]):.2e} relative")
    assert rel(voc.ours.text, voc.official["text"][:-1]) < FINAL_RTOL


def test_voc_every_stage_equal(voc: Comparison):
    rows = stage_table(voc.official, voc.ours)
    print_table("two-stage vs zsseg.baseline, VOC config (relative difference)", rows)
    assert not failures(rows), failures(rows)


def test_voc_training_losses_equal(voc: Comparison):
    official, ours = voc.official["losses"], voc.ours.losses
    assert set(official) == set(ours)
    bad = {k: (official[k], ours[k]) for k in official
           if abs(official[k] - ours[k]) > LOSS_RTOL * abs(official[k])}
    worst = max(abs(official[k] - ours[k]) / abs(official[k]) for k in official)
    print(f"\nVOC training: {len(official)} losses, worst relative difference {worst:.2e}")
    assert not bad, bad
    # the same assignment in every one of the 6 matcher calls (final layer first, as both run)
    assert len(voc.ours.matches) == len(voc.official["matches"]) == 6
    for mine, theirs in zip(voc.ours.matches, voc.official["matches"]):
        for (qi, ti), (oq, ot) in zip(mine, theirs):
            assert torch.equal(qi, oq) and torch.equal(ti, ot)
    # gradients of the decoder and of the last backbone block
    grads = voc.ours.grads
    for name, norm in voc.official["grad_norm"].items():
        mine = rename(name)
        assert mine in grads, name
        assert abs(float(grads[mine].norm()) - norm) <= 1e-4 * norm + 1e-8, name


def test_coco_final_scores_equal(coco: Comparison):
    assert coco.ours.names == coco.official["names"]
    assert coco.ours.seen == coco.official["seen"]
    assert coco.official["cfg"]["prompt_learner"] == "vild"
    assert coco.official["cfg"]["ensemble_weight"] == 0.8
    print(f"\nCOCO-Stuff class texts: {rel(coco.ours.text, coco.official['text'][:-1]):.2e}")
    assert rel(coco.ours.text, coco.official["text"][:-1]) < FINAL_RTOL
    rows = stage_table(coco.official, coco.ours)
    print_table("two-stage vs zsseg.baseline, COCO-Stuff config (relative difference)", rows)
    assert not failures(rows), failures(rows)


def test_learned_prompts_equal(learned: Comparison):
    query_text, crop_text = learned.ours.texts
    assert learned.official["cfg"]["prompt_learner"] in ("learnable", "predefined")
    diffs = (rel(query_text, learned.official["text"][:-1]),
             rel(crop_text, learned.official["crop_text"][:-1]))
    print(f"\nlearned prompts: query texts {diffs[0]:.2e}, crop texts {diffs[1]:.2e}")
    assert max(diffs) < FINAL_RTOL
    rows = stage_table(learned.official, learned.ours)
    print_table("two-stage vs zsseg.baseline, learned prompts (relative difference)", rows)
    assert not failures(rows), failures(rows)


def test_a_flipped_option_is_detected(voc: Comparison):
    """The comparison cannot pass vacuously: the suite's earlier crops (``CLIP_ENSEMBLE.CUT
    grid``: the padded batch, bilinear sampling) against the same official run fail it."""
    classifier = voc.model.head.crop_classifier
    classifier.cut = "grid"
    try:
        flipped = run_suite(voc.model, voc.inputs, voc.dataset, train=False)
    finally:
        classifier.cut = "zsseg"
    rows = stage_table(voc.official, flipped)
    print_table("the same with CLIP_ENSEMBLE.CUT grid (must fail)", rows)
    failed = failures(rows)
    assert any(f.startswith("final scores") for f in failed), rows
    assert not any(f.startswith(("backbone", "decoder")) for f in failed), failed


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-s", "-q"]))
