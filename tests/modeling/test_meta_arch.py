"""The meta-architecture contract, proven with a test-only head (tests.contract_head.py)."""

import pytest
import torch

from tests.contract_head import FakeTextCLIP
from zsseg_bench.config import get_cfg
from zsseg_bench.data.catalog import MetadataCatalog
from zsseg_bench.modeling import HEAD_REGISTRY, build_head
from zsseg_bench.modeling.head import ZeroShotHead
from zsseg_bench.modeling.meta_arch import ZeroShotSegmentor
from zsseg_bench.utils.errors import UserError

DATASET = "_test_meta_arch_dataset"
CLASSES = ["background", "red circle", "blue square", "green star", "red star"]
SEEN, UNSEEN = [0, 1, 2, 3], [4]


@pytest.fixture(scope="module", autouse=True)
def _metadata():
    if DATASET not in MetadataCatalog.list():
        MetadataCatalog.get(DATASET).set(stuff_classes=CLASSES, seen_classes=SEEN,
                                         unseen_classes=UNSEEN, ignore_label=255)


def _model(setting: str = "inductive", **kw) -> ZeroShotSegmentor:
    torch.manual_seed(0)
    clip = FakeTextCLIP()
    head = HEAD_REGISTRY.get("PixelContractHead")(embed_dim=clip.embed_dim)
    return ZeroShotSegmentor(head=head, clip=clip, train_dataset=DATASET, test_dataset=DATASET,
                             setting=setting, templates="single", pixel_mean=[128.0] * 3,
                             pixel_std=[64.0] * 3, size_divisibility=32, **kw)


def _inputs(sizes, with_labels, label_fn=lambda h, w: torch.randint(0, 4, (h, w))):
    g = torch.Generator().manual_seed(0)
    out = []
    for h, w in sizes:
        item = {"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8),
                "height": h, "width": w}
        if with_labels:
            item["sem_seg"] = label_fn(h, w)
        out.append(item)
    return out


def test_training_returns_loss_dict_with_gradients():
    model = _model().train()
    losses = model(_inputs([(40, 56), (64, 30)], with_labels=True))
    assert set(losses) == {"loss_ce"} and losses["loss_ce"].ndim == 0
    sum(losses.values()).backward()
    assert model.head.proj.weight.grad is not None


def test_inference_returns_full_size_scores_over_full_vocabulary():
    model = _model().eval()
    sizes = [(40, 56), (64, 30)]
    inputs = _inputs(sizes, with_labels=False)
    inputs[1]["height"], inputs[1]["width"] = 128, 60  # original size differs from input size
    with torch.no_grad():
        out = model(inputs)
    assert [tuple(o["sem_seg"].shape) for o in out] == [(5, 40, 56), (5, 128, 60)]


def test_inductive_vocabulary_excludes_unseen_and_caches_text():
    model = _model()
    train_vocab = model.vocabulary(DATASET, trainable_only=True)
    assert train_vocab.names == CLASSES[:4] and bool(train_vocab.is_seen.all())
    test_vocab = model.vocabulary(DATASET, trainable_only=False)
    assert test_vocab.names == CLASSES and test_vocab.is_seen.tolist() == [1, 1, 1, 1, 0]
    calls = model.clip.calls
    model.vocabulary(DATASET, trainable_only=True)
    assert model.clip.calls == calls  # cached


def test_inductive_training_rejects_unseen_labels():
    model = _model().train()
    leak = _inputs([(32, 32)], with_labels=True, label_fn=lambda h, w: torch.full((h, w), 4))
    with pytest.raises(RuntimeError, match="outside the training vocabulary"):
        model(leak)


def test_transductive_keeps_unlabelled_pixels():
    model = _model("transductive")
    targets = torch.tensor([[0, 4, 254, 255]])
    vocab = model.vocabulary(DATASET, trainable_only=True)
    assert len(vocab) == 5
    assert model.to_vocabulary_ids(targets, vocab).tolist() == [[0, 4, 254, 255]]


def test_slide_mode_matches_output_contract():
    model = _model(test_mode="slide", slide_crop=(32, 32), slide_stride=(24, 24)).eval()
    with torch.no_grad():
        out = model(_inputs([(50, 70)], with_labels=False))
    assert tuple(out[0]["sem_seg"].shape) == (5, 50, 70)


def test_registry_errors_name_the_choices():
    cfg = get_cfg()
    cfg.MODEL.HEAD.NAME = "NoSuchHead"
    with pytest.raises(UserError) as e:
        build_head(cfg, FakeTextCLIP())
    assert "NoSuchHead" in str(e.value) and "PixelContractHead" in str(e.value)
    assert "MODEL.HEAD.NAME" in str(e.value)


class _SizeRecordingHead(ZeroShotHead):
    """Takes ``image_sizes`` (``takes_image_sizes``): records what each call gets, and returns
    scores that reveal padding (1 inside every image's unpadded size, 0 outside)."""

    takes_image_sizes = True

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.calls = []

    def losses(self, images, targets, clip, image_sizes=None):  # noqa: ANN001, ANN201
        self.calls.append((tuple(images.shape[-2:]), image_sizes, True))
        return {"loss": self.weight * 0 + images.mean()}

    def scores(self, images, vocab, clip, image_sizes=None):  # noqa: ANN001, ANN201
        self.calls.append((tuple(images.shape[-2:]), image_sizes, False))
        out = images.new_zeros((images.shape[0], len(vocab), *images.shape[-2:]))
        for o, (h, w) in zip(out, image_sizes):
            o[:, :h, :w] = 1.0
        return out + self.weight


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_heads_that_take_image_sizes_get_the_unpadded_sizes(mode):
    # detectron2's ImageList.image_sizes: the size of each image (or window) without the batch
    # padding; heads without takes_image_sizes are called as before (the tests above)
    head = _SizeRecordingHead()
    model = ZeroShotSegmentor(head=head, clip=FakeTextCLIP(), train_dataset=DATASET,
                              test_dataset=DATASET, setting="inductive", templates="single",
                              pixel_mean=[128.0] * 3, pixel_std=[64.0] * 3, size_divisibility=32,
                              test_mode=mode, slide_crop=(48, 48), slide_stride=(32, 32))
    assert model.head_takes_image_sizes
    sizes = [(40, 56), (30, 20)]
    model.eval()
    with torch.no_grad():
        out = model(_inputs(sizes, with_labels=False))
    for o in out:  # never a score from the padding: every pixel of every image is 1
        torch.testing.assert_close(o["sem_seg"], torch.ones_like(o["sem_seg"]))
    if mode == "whole":
        assert head.calls == [((64, 64), [(40, 56), (30, 20)], False)]
    else:  # windows of 48 (or the whole image when smaller) every 32, each batch padded to 32
        assert head.calls[0] == ((64, 64), [(40, 48), (40, 48)], False)
        assert head.calls[-1] == ((32, 32), [(30, 20)], False)
    head.calls.clear()
    model.train()
    model(_inputs(sizes, with_labels=True))
    assert head.calls == [((64, 64), [(40, 56), (30, 20)], True)]


def test_templates_may_be_a_list_of_their_own():
    # MODEL.CLIP.TEMPLATES names a set or gives templates (zsseg VOC: "a sculpture of a {}.");
    # the vocabulary cache is keyed by them
    class RecordingCLIP(FakeTextCLIP):
        def embed_texts(self, names, templates):  # noqa: ANN001, ANN201
            self.templates = templates
            return super().embed_texts(names, templates)

    clip = RecordingCLIP()
    model = ZeroShotSegmentor(head=HEAD_REGISTRY.get("PixelContractHead")(embed_dim=16),
                              clip=clip, train_dataset=DATASET, test_dataset=DATASET,
                              setting="inductive", templates=["a sculpture of a {}."],
                              pixel_mean=[128.0] * 3, pixel_std=[64.0] * 3, size_divisibility=32)
    model.vocabulary(DATASET, trainable_only=False)
    assert clip.templates == ("a sculpture of a {}.",)
