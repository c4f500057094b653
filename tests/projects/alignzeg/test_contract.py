"""The meta-architecture contract (the one tests/contract_head.py proves with a test-only head)
with AlignZegHead: loss dict with gradients, full-size scores over the full vocabulary, whole
and slide inference (the zero-shot rules: tests/projects/test_head_contract.py, every head)."""

import pytest
import torch

from tests.projects.conftest import register_tiny_split
from zsseg_bench.modeling.meta_arch import ZeroShotSegmentor

from .conftest import tiny_head

pytestmark = pytest.mark.usefixtures("one_thread")
DATASET = "_test_alignzeg_dataset"


@pytest.fixture(scope="module", autouse=True)
def _metadata():
    register_tiny_split(DATASET)


def _model(clip, setting: str = "inductive", **kw) -> ZeroShotSegmentor:
    return ZeroShotSegmentor(head=tiny_head(clip), clip=clip, train_dataset=DATASET,
                             test_dataset=DATASET, setting=setting, templates="single",
                             pixel_mean=[128.0] * 3, pixel_std=[64.0] * 3,
                             size_divisibility=32, **kw)


def _inputs(sizes, labels=None):
    g = torch.Generator().manual_seed(0)
    out = []
    for h, w in sizes:
        item = {"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8),
                "height": h, "width": w}
        if labels is not None:
            item["sem_seg"] = labels(h, w)
        out.append(item)
    return out


def _seen_labels(h, w):
    lab = torch.zeros(h, w, dtype=torch.long)
    lab[: h // 2, : w // 2], lab[h // 2:, w // 2:] = 1, 2
    return lab


def test_training_returns_a_loss_dict_with_gradients(clip):
    model = _model(clip).train()
    losses = model(_inputs([(40, 56), (64, 30)], _seen_labels))
    assert {"loss_ce", "loss_mask", "loss_dice", "loss_bc"} <= set(losses)
    sum(losses.values()).backward()
    assert model.head.decoder.query_feat.weight.grad is not None


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_inference_gives_full_size_scores_over_the_full_vocabulary(clip, mode):
    model = _model(clip, test_mode=mode, slide_crop=(32, 32), slide_stride=(16, 16)).eval()
    inputs = _inputs([(40, 56), (64, 30)])
    inputs[1]["height"], inputs[1]["width"] = 128, 60
    with torch.no_grad():
        out = model(inputs)
    assert [tuple(o["sem_seg"].shape) for o in out] == [(5, 40, 56), (5, 128, 60)]
