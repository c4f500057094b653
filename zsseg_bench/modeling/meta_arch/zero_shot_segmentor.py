"""``ZeroShotSegmentor``: what every method shares around its head (the head contract is in the
class docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from zsseg_bench.config.configurable import configurable
from zsseg_bench.config.setting import Setting
from zsseg_bench.data.catalog import class_split, dataset_class_names
from zsseg_bench.data.transfer import is_transfer, labelled_mask
from zsseg_bench.data.zero_shot import IGNORE_LABEL, UNLABELLED_LABEL
from zsseg_bench.modeling.build import META_ARCH_REGISTRY, build_head
from zsseg_bench.modeling.head import ZeroShotHead
from zsseg_bench.modeling.inference_modes import (
    pad_to_batch,
    resize_scores,
    slide_inference,
    whole_inference,
)
from zsseg_bench.modeling.training_phase import TrainingPhase
from zsseg_bench.modeling.training_targets import TrainingTargets
from zsseg_bench.modeling.vocabulary import ClassVocabulary
from zsseg_bench.utils.errors import UserError

_NOT_IN_VOCABULARY = 253  # internal marker of a label id outside the training vocabulary


@META_ARCH_REGISTRY.register()
class ZeroShotSegmentor(nn.Module):
    """Normalisation, padding, vocabulary, the zero-shot rules, whole/slide inference and
    post-processing.

    A method is a head (``HEAD_REGISTRY``, a :class:`~zsseg_bench.modeling.head.ZeroShotHead`)
    called as ``head(images, vocab, clip, targets)``: in training ``targets`` is the
    :class:`~zsseg_bench.modeling.training_targets.TrainingTargets` this module builds (the
    active vocabulary, passed as ``vocab`` too, the labels in its index space, the phase) and
    the head returns a dict of losses; in inference (``head(images, vocab, clip)``) it returns
    ``B x K x h x w`` class scores
    that this module upsamples, crops of their padding and resizes to each image's original size.
    ``images`` are normalised (``MODEL.PIXEL_MEAN/STD``) and padded with 0 at the bottom and right
    to a common size (a multiple of ``MODEL.SIZE_DIVISIBILITY``; detectron2's
    ``ImageList.from_tensors``). A head whose class attribute ``takes_image_sizes`` is True also
    gets ``image_sizes=[(h, w), ...]``, each image's size without the padding (detectron2's
    ``ImageList.image_sizes``).

    Vocabulary: in training, the training dataset's classes that are trainable in the current
    setting — seen classes only (inductive) or all classes (transductive, fully); label ids are
    remapped to that vocabulary's index space, and :class:`TrainingTargets` narrows it to the
    seen classes until self-training starts (transductive). In inference, the full class list
    of the test dataset (:meth:`set_test_dataset`). In the fully supervised setting every class
    is seen (it has training labels); the dataset's split then only groups the metrics.
    """

    @configurable
    def __init__(self, *, head: nn.Module, clip: nn.Module, train_dataset: str | None,
                 test_dataset: str | None, setting: str, templates: str | Sequence[str],
                 pixel_mean: list[float], pixel_std: list[float], size_divisibility: int,
                 test_mode: str = "whole", slide_crop: tuple[int, int] = (512, 512),
                 slide_stride: tuple[int, int] = (426, 426)):
        super().__init__()
        if not isinstance(head, ZeroShotHead):
            raise TypeError(f"{type(head).__name__} is not a ZeroShotHead: a method's head "
                            "subclasses zsseg_bench.modeling.head.ZeroShotHead")
        self.head = head
        self.clip = clip
        self.train_dataset = train_dataset
        self.test_dataset = test_dataset
        self.setting = Setting(setting)
        # a set name or a tuple of templates (hashable: a key of the vocabulary cache)
        self.templates = templates if isinstance(templates, str) else tuple(templates)
        self.size_divisibility = size_divisibility
        self.test_mode = test_mode
        self.slide_crop = tuple(slide_crop)
        self.slide_stride = tuple(slide_stride)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self._vocab_cache: dict[tuple, ClassVocabulary] = {}

    @property
    def head_takes_image_sizes(self) -> bool:
        """Whether the head is called with ``image_sizes`` (its ``takes_image_sizes``)."""
        return bool(getattr(self.head, "takes_image_sizes", False))

    @property
    def ddp_find_unused_parameters(self) -> bool:
        """Whether some learnable parameters get no gradient in a training step (the head's
        ``ddp_find_unused_parameters`` attribute, default False): DDP must then look for them."""
        return bool(getattr(self.head, "ddp_find_unused_parameters", False))

    @classmethod
    def from_config(cls, cfg: Any) -> dict[str, Any]:
        """Builds the CLIP layer and the head named in ``cfg``."""
        from zsseg_bench.modeling.clip import build_clip
        from zsseg_bench.modeling.clip.templates import get_templates

        get_templates(cfg.MODEL.CLIP.TEMPLATES)  # a bad name or template: an error before building
        clip = build_clip(cfg)
        return {
            "head": build_head(cfg, clip),
            "clip": clip,
            "train_dataset": cfg.DATASETS.TRAIN[0] if cfg.DATASETS.TRAIN else None,
            "test_dataset": cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else None,
            "setting": Setting.of(cfg),
            "templates": cfg.MODEL.CLIP.TEMPLATES,
            "pixel_mean": list(cfg.MODEL.PIXEL_MEAN),
            "pixel_std": list(cfg.MODEL.PIXEL_STD),
            "size_divisibility": cfg.MODEL.SIZE_DIVISIBILITY,
            "test_mode": cfg.TEST.MODE,
            "slide_crop": tuple(cfg.TEST.SLIDE.CROP),
            "slide_stride": tuple(cfg.TEST.SLIDE.STRIDE),
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ----------------------------------------------------------------------------- vocabulary
    def set_test_dataset(self, name: str) -> None:
        """Selects the dataset whose full class list inference scores."""
        self.test_dataset = name

    def vocabulary(self, dataset: str | None, trainable_only: bool) -> ClassVocabulary:
        """The vocabulary of ``dataset``: its trainable classes in the current setting
        (``trainable_only``), or all its classes. A class is seen when the model has training
        labels for it (:mod:`zsseg_bench.data.transfer`; on another dataset than the training
        one, by name). Text embeddings are computed once and cached.
        """
        if dataset is None:
            raise UserError("no dataset given: set DATASETS.TRAIN / DATASETS.TEST")
        if not trainable_only and is_transfer(dataset, self.train_dataset):
            return self.vocabulary_from_names(dataset_class_names(dataset))
        names, seen_ids, _ = class_split(dataset)
        ids = list(range(len(names)))
        seen = set(ids) if self.setting is Setting.FULLY else set(seen_ids)
        if trainable_only and self.setting is Setting.INDUCTIVE:
            ids = [i for i in ids if i in seen]
        key = (dataset, tuple(ids), self.templates)
        if key not in self._vocab_cache:
            with torch.no_grad():
                embeddings = self.clip.embed_texts([names[i] for i in ids], self.templates)
            self._vocab_cache[key] = ClassVocabulary(
                names=[names[i] for i in ids],
                embeddings=embeddings.detach(),
                is_seen=torch.tensor([i in seen for i in ids], dtype=torch.bool),
                class_ids=torch.tensor(ids, dtype=torch.long),
            ).to(self.device)
        return self._vocab_cache[key]

    def inference_protocol(self) -> dict[str, Any]:
        """How this model infers, as a speed record states it: ``mode`` (whole/slide), ``slide``
        windows (crop and stride, or None), the test ``dataset``, its ``vocabulary_size`` and
        whether the text embeddings are cached (computing the vocabulary caches them)."""
        vocab = (self.vocabulary(self.test_dataset, trainable_only=False)
                 if self.test_dataset is not None else None)
        return {
            "mode": self.test_mode,
            "slide": ({"crop": list(self.slide_crop), "stride": list(self.slide_stride)}
                      if self.test_mode == "slide" else None),
            "dataset": self.test_dataset,
            "vocabulary_size": len(vocab) if vocab is not None else None,
            "text_embeddings_cached": vocab is not None,
        }

    def vocabulary_from_names(self, names: Sequence[str]) -> ClassVocabulary:
        """A vocabulary of any class names (prediction with custom names, another dataset's
        classes): a name is seen when it names a class the model has training labels for
        (:func:`~zsseg_bench.data.transfer.labelled_mask`), unseen otherwise; ``class_ids`` are
        ``0..K-1``. Text embeddings are computed once per list of names and cached.
        """
        names = [str(n) for n in names]
        key = ("names", tuple(names), self.templates)
        if key not in self._vocab_cache:
            seen = labelled_mask(names, self.train_dataset, self.setting)
            with torch.no_grad():
                embeddings = self.clip.embed_texts(names, self.templates)
            self._vocab_cache[key] = ClassVocabulary(
                names=names, embeddings=embeddings.detach(),
                is_seen=torch.tensor(seen, dtype=torch.bool),
                class_ids=torch.arange(len(names), dtype=torch.long),
            ).to(self.device)
        return self._vocab_cache[key]

    # --------------------------------------------------------------------------------- forward
    def preprocess(self, batched_inputs: list[dict[str, Any]]) -> list[torch.Tensor]:
        """Normalised float images (``3 x H x W``) on the model's device."""
        return [(x["image"].to(self.device, non_blocking=True).float() - self.pixel_mean)
                / self.pixel_std for x in batched_inputs]

    def forward(self, batched_inputs: list[dict[str, Any]],
                phase: TrainingPhase = TrainingPhase.SUPERVISED) -> Any:
        """Losses (training) or ``[{"sem_seg": Tensor[C, height, width]}]`` (inference).

        Args:
            batched_inputs: the mapper's dicts (Detectron2's ``batched_inputs``).
            phase: the training phase (the trainer passes it; ignored in inference).
        """
        images = self.preprocess(batched_inputs)
        if self.training:
            return self._forward_train(images, batched_inputs, phase)
        return self.inference(images, batched_inputs)

    def _forward_train(self, images: list[torch.Tensor], batched_inputs: list[dict[str, Any]],
                       phase: TrainingPhase) -> dict[str, torch.Tensor]:
        vocab = self.vocabulary(self.train_dataset, trainable_only=True)
        batch = pad_to_batch(images, self.size_divisibility)
        labels = [x["sem_seg"].to(self.device) for x in batched_inputs]
        targets = pad_to_batch(labels, self.size_divisibility, pad_value=IGNORE_LABEL)
        sizes = ({"image_sizes": [tuple(img.shape[-2:]) for img in images]}
                 if self.head_takes_image_sizes else {})
        targets = TrainingTargets.build(self.to_vocabulary_ids(targets, vocab), vocab, phase)
        return self.head(batch, targets.vocab, self.clip, targets=targets, **sizes)

    def on_phase_change(self, phase: TrainingPhase) -> None:
        """Tells the head that the training phase changed (the engine's phase schedule)."""
        self.head.on_phase_change(phase)

    def to_vocabulary_ids(self, targets: torch.Tensor, vocab: ClassVocabulary) -> torch.Tensor:
        """Maps full-class-list label ids to ``vocab`` indices (255 and 254 stay as they are).

        A label id outside the training vocabulary (e.g. an unseen class in the inductive
        setting, which the mapper should have ignored) is an error, never a silent leak.
        """
        lut = torch.full((256,), _NOT_IN_VOCABULARY, dtype=torch.long, device=targets.device)
        lut[vocab.class_ids] = torch.arange(len(vocab), device=targets.device)
        lut[IGNORE_LABEL] = IGNORE_LABEL
        lut[UNLABELLED_LABEL] = UNLABELLED_LABEL if self.setting is Setting.TRANSDUCTIVE else \
            _NOT_IN_VOCABULARY
        mapped = lut[targets.long().clamp(0, 255)]
        outside = mapped == _NOT_IN_VOCABULARY
        if (outside | (targets > 255) | (targets < 0)).any():
            bad = sorted(set(targets[outside].unique().tolist()))
            raise RuntimeError(f"training labels contain ids {bad} outside the training "
                               f"vocabulary ({self.setting} setting, {len(vocab)} classes): "
                               "the mapper must ignore unseen pixels in the inductive setting")
        return mapped

    def _run_head(self, vocab: ClassVocabulary) -> Any:
        """The score function of the inference modes: the head over ``vocab`` (they resize its
        scores to the batch size), given the images' unpadded sizes if it takes them."""
        def run(batch: torch.Tensor, image_sizes: list[tuple[int, int]] | None = None
                ) -> torch.Tensor:
            sizes = {} if image_sizes is None else {"image_sizes": image_sizes}
            return self.head(batch, vocab, self.clip, **sizes)
        return run

    def inference(self, images: list[torch.Tensor], batched_inputs: list[dict[str, Any]],
                  vocab: ClassVocabulary | None = None) -> list[dict[str, torch.Tensor]]:
        """Scores over ``vocab`` (default: the test dataset's full class list), at each image's
        original size."""
        if vocab is None:
            vocab = self.vocabulary(self.test_dataset, trainable_only=False)
        run = self._run_head(vocab)
        sizes = self.head_takes_image_sizes
        if self.test_mode == "slide":
            scores = [slide_inference(run, img, self.slide_crop, self.slide_stride,
                                      self.size_divisibility, with_sizes=sizes) for img in images]
        else:
            scores = whole_inference(run, images, self.size_divisibility, with_sizes=sizes)
        return [{"sem_seg": resize_scores(s, (int(x.get("height", s.shape[-2])),
                                             int(x.get("width", s.shape[-1]))))}
                for s, x in zip(scores, batched_inputs)]
