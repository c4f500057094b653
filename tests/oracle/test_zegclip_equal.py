"""ZegCLIP equals the official code (ZiqinZhou66/ZegCLIP @ 9ba4bb5), stage by stage.

For each paper config family (VOC: ``configs/voc12/vpt_seg_zero_vit-b_512x512_20k_12_10.py``;
COCO-Stuff: ``configs/coco/vpt_seg_zero_vit-b_512x512_80k_12_100_multi.py``; the official code
has no PASCAL Context config) the official model is built in its own environment with random
weights (a random CLIP ViT-B/16 in OpenAI's file format, read by both sides), saved as mmseg
saves it, converted with ``zsseg-bench convert --from zegclip`` and loaded by the suite the way
``eval --weights`` loads it. Compared: text embeddings, per slide window the CLIP patch and
[CLS] embeddings and every decoder layer's mask logits, the final scores of a 512 x 512 image
(one window) and of a 512 x 640 one (two overlapping windows, averaged), their argmax, one
training loss (dropout off on both sides) and every gradient. A last test flips a known option
of the suite (the doubled [CLS] embedding) and checks that the same comparison then fails.

Runs when ``ZSSEG_ORACLE_ZEGCLIP_PYTHON`` is set (tests/oracle/README.md); 200 s of CPU (7 min
wall on a shared 2-core machine at load average 7).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from tests.cli_helpers import REPO, run_cli
from tests.oracle.clip_file import write_random_openai_clip
from tests.oracle.compare import StageTable, argmax_mismatches
from tests.oracle.oracle import oracle_python, run_oracle

PYTHON = oracle_python("zegclip")

#: family -> (official config, suite config)
FAMILIES = {
    "voc": ("configs/voc12/vpt_seg_zero_vit-b_512x512_20k_12_10.py",
            "configs/voc/zegclip_vitb16_512x512_20k_inductive.yaml"),
    "coco": ("configs/coco/vpt_seg_zero_vit-b_512x512_80k_12_100_multi.py",
             "configs/coco_stuff/zegclip_vitb16_512x512_80k_inductive.yaml"),
}
#: Tolerances (relative to the official tensor's largest magnitude): every stage agrees to
#: float noise (~1e-6); the targets of issue 28 are 1e-4 for the final scores.
STAGE_TOL, SCORE_TOL, LOSS_TOL, GRAD_TOL = 1e-4, 1e-4, 1e-5, 1e-4
#: Argmax must agree wherever the official best class leads by more than this (a near-tie
#: of two classes can fall either way under float noise; those pixels are counted apart).
TIE_MARGIN = 1e-5
IMAGE_SIZES = ((512, 512), (512, 640))
#: Classes whose text embeddings the official side computes the way the official notebook
#: (get_embedding.ipynb) does, with the official text encoder: all of VOC; for COCO-Stuff (15
#: templates x 171 classes: minutes on a CPU) seen and unseen ones (19: cow, 23: giraffe).
#: The official model reads the suite's embeddings of all classes, as the official configs
#: read the notebook's from an .npy file.
TEXT_CLASSES = {"voc": list(range(20)), "coco": [0, 1, 19, 23, 170]}


def _label(generator: torch.Generator, h: int, w: int, num_classes: int) -> torch.Tensor:
    """Blocks of random classes (64 px), the top rows ignored."""
    grid = torch.randint(0, num_classes, (1, 1, h // 64, w // 64), generator=generator)
    label = F.interpolate(grid.float(), size=(h, w), mode="nearest")[0, 0].long()
    label[:16] = 255
    return label


def _inputs(num_classes: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    return {
        "images": [torch.randint(0, 256, (h, w, 3), dtype=torch.uint8, generator=g)
                   for h, w in IMAGE_SIZES],
        "train_image": torch.randint(0, 256, (512, 512, 3), dtype=torch.uint8, generator=g),
        "train_label": _label(g, 512, 512, num_classes),
    }


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory) -> Path:
    return write_random_openai_clip(tmp_path_factory.mktemp("clip") / "ViT-B-16.pt")


class SuiteRun:
    """The suite's model of one family, built as ``eval`` builds it (seeded, from the config),
    with the stages of its inference recorded per window. The converted weights are loaded
    later (:meth:`load`): the test needs the model's text embeddings first, for the official
    side."""

    def __init__(self, config: str, clip_file: Path):
        from zsseg_bench.config.command_line import setup_cfg
        from zsseg_bench.engine.checkpoint import build_model_with_weights

        self.cfg = setup_cfg(str(REPO / config), ["MODEL.CLIP.WEIGHTS", str(clip_file),
                                                  "MODEL.DEVICE", "cpu"])
        self.model, _ = build_model_with_weights(self.cfg, "")
        self.model.eval()
        self.windows: list[dict[str, Any]] = []
        self._record()

    def load(self, weights: Path) -> None:
        """The converted checkpoint, loaded as ``eval --weights`` loads it."""
        from zsseg_bench.engine.checkpoint import load_model_weights

        load_model_weights(self.model, str(weights), self.cfg.MODEL.HEAD.NAME)

    def _record(self) -> None:
        clip, head = self.model.clip, self.model.head
        encode_dense = clip.encode_dense

        def recording_encode_dense(*args, **kwargs):
            out = encode_dense(*args, **kwargs)
            for i in range(out.cls_embedding.shape[0]):
                self.windows.append({"patch_embeddings": out.patch_embeddings[i:i + 1],
                                     "cls_embedding": out.cls_embedding[i:i + 1]})
            return out

        def on_decoder(_module, _inputs, masks):
            first = len(self.windows) - masks[0].shape[0]
            for i in range(masks[0].shape[0]):
                self.windows[first + i]["layer_masks"] = [m[i:i + 1] for m in masks]

        clip.encode_dense = recording_encode_dense
        head.decoder.register_forward_hook(on_decoder)

    def vocabulary(self):
        return self.model.vocabulary(self.cfg.DATASETS.TEST[0], trainable_only=False)

    @torch.no_grad()
    def infer(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[:2]
        batch = [{"image": image.permute(2, 0, 1).contiguous(), "height": h, "width": w}]
        return self.model(batch)[0]["sem_seg"]

    def train_loss(self, image: torch.Tensor, label: torch.Tensor, unseen: list[int]):
        """Losses and gradients (official names via the converter's mapping) of one step."""
        model = self.model
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        model.zero_grad(set_to_none=True)
        label = label.clone()
        label[torch.isin(label, torch.tensor(unseen))] = 255  # the mapper's inductive rule
        batch = [{"image": image.permute(2, 0, 1).contiguous(), "sem_seg": label,
                  "height": 512, "width": 512}]
        losses = model(batch)
        sum(losses.values()).backward()
        grads = {n[len("head."):]: p.grad.detach().clone() for n, p in model.named_parameters()
                 if p.requires_grad and p.grad is not None}
        model.eval()
        return {k: float(v) for k, v in losses.items()}, grads


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, clip_file, tmp_path_factory) -> dict[str, Any]:
    """Both sides of one family: the official outputs and the suite's, same weights."""
    import numpy as np

    name = request.param
    official_config, suite_config = FAMILIES[name]
    work = tmp_path_factory.mktemp(f"zegclip_{name}")
    suite = SuiteRun(suite_config, clip_file)
    text = suite.vocabulary().embeddings
    np.save(work / "text_embedding.npy", text.numpy())
    inputs = _inputs(len(text))
    torch.save(inputs, work / "inputs.pt")
    run_oracle(PYTHON, "zegclip_official.py", {
        "mode": "compare", "config": official_config, "clip": str(clip_file),
        "text_embedding": str(work / "text_embedding.npy"), "text_classes": TEXT_CLASSES[name],
        "inputs": str(work / "inputs.pt"), "checkpoint": str(work / "official.pth"),
        "output": str(work / "official.pt"), "seed": 0}, work)
    official = torch.load(work / "official.pt", weights_only=False)
    proc = run_cli("convert", "--from", "zegclip", str(work / "official.pth"),
                   "--output", str(work / "suite.pth"), "--config-file", suite_config,
                   "MODEL.CLIP.WEIGHTS", str(clip_file), datasets_root=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    suite.load(work / "suite.pth")
    scores = [suite.infer(image) for image in inputs["images"]]
    return {"name": name, "official": official, "suite": suite, "scores": scores,
            "windows": list(suite.windows), "inputs": inputs}


def test_inference_equals_the_official_stage_by_stage(family):
    official, suite = family["official"], family["suite"]
    table = StageTable(f"ZegCLIP {family['name']}: suite vs official, inference")
    vocab = suite.vocabulary()
    assert vocab.names == official["names"]
    assert vocab.is_seen.nonzero().flatten().tolist() == official["seen"]
    classes = TEXT_CLASSES[family["name"]]
    table.close(f"text embeddings ({len(classes)} classes, official notebook way)",
                vocab.embeddings[classes], official["text"], STAGE_TOL)
    ours_w, theirs_w = family["windows"], official["windows"]
    table.count("slide windows", abs(len(ours_w) - len(theirs_w)))
    for key in ("patch_embeddings", "cls_embedding"):
        table.close_all(f"CLIP {key} per window", [w[key] for w in ours_w],
                        [w[key] for w in theirs_w], STAGE_TOL)
    layers = len(theirs_w[0]["layer_masks"])
    for layer in range(layers):
        # official: B x K x N attention logits; suite: B x K x h x w
        table.close_all(f"decoder layer {layer} mask logits",
                        [w["layer_masks"][layer].flatten(2) for w in ours_w],
                        [w["layer_masks"][layer] for w in theirs_w], STAGE_TOL)
    for (h, w), ours, theirs in zip(IMAGE_SIZES, family["scores"], official["scores"]):
        table.close(f"final scores {h}x{w}", ours, theirs, SCORE_TOL)
        ties = argmax_mismatches(ours, theirs)
        decided = argmax_mismatches(ours, theirs, margin=TIE_MARGIN)
        table.count(f"argmax differences {h}x{w} (lead > {TIE_MARGIN:g})", decided)
        table.count(f"  ... at near-ties (of {h * w} pixels)", ties - decided,
                    limit=h * w // 10000)
    table.check()


def test_training_loss_and_gradients_equal_the_official(family):
    from zsseg_bench.projects.zegclip.convert import map_trainable

    official, suite, inputs = family["official"], family["suite"], family["inputs"]
    unseen = [i for i in range(len(official["names"])) if i not in official["seen"]]
    losses, grads = suite.train_loss(inputs["train_image"], inputs["train_label"], unseen)
    official_grads, _ = map_trainable(official["grads"])
    table = StageTable(f"ZegCLIP {family['name']}: suite vs official, one training step")
    table.close("focal loss (x100)", torch.tensor(losses["loss_focal"]),
                torch.tensor(official["losses"]["decode.loss_mask"]), LOSS_TOL)
    table.close("dice loss", torch.tensor(losses["loss_dice"]),
                torch.tensor(official["losses"]["decode.loss_dice"]), LOSS_TOL)
    # Gradients that cancel to 0 (the key biases of the decoder layers whose logits only feed a
    # softmax over keys) are float noise: they are compared on 1e-4 of the largest gradient.
    largest = max(float(g.abs().max()) for g in official_grads.values())
    table.close_all("gradients", grads, official_grads, GRAD_TOL, floor=1e-4 * largest)
    table.check()


def test_a_flipped_option_is_caught(family):
    """The comparison is not vacuous: the plain CLIP [CLS] token (DOUBLE_CLS_EMBEDDING False)
    moves the final scores of the square image beyond the tolerance."""
    if family["name"] != "voc":
        pytest.skip("one family is enough to show the check has teeth")
    suite, official = family["suite"], family["official"]
    clip = suite.model.clip
    assert clip.double_cls_embedding
    clip.double_cls_embedding = False
    try:
        flipped = suite.infer(family["inputs"]["images"][0])
    finally:
        clip.double_cls_embedding = True
    table = StageTable("flipped DOUBLE_CLS_EMBEDDING")
    table.close("final scores 512x512", flipped, official["scores"][0], SCORE_TOL)
    assert table.failures(), f"flipping the option went unnoticed:\n{table}"
