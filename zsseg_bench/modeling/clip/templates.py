"""Prompt templates for turning class names into CLIP text prompts.

Each template contains one ``{}`` placeholder for the class name. A class's text embedding is the
L2-normalised mean of the normalised embeddings of its prompts (CLIP's prompt ensembling).

- ``SINGLE``: ``"a photo of a {}."`` (CLIP paper, Radford et al. 2021, Sec. 3.1.4).
- ``IMAGENET_80``: the 80 ImageNet templates of OpenAI CLIP's prompt-engineering notebook, taken
  from the installed ``open_clip.zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES``.
- ``VILD_14``: the 14 templates of ViLD (Gu et al. 2022), as used by zsseg (MendelXu/zsseg.baseline,
  ``PREDEFINED_TEMPLATES["vild"]``).
- ``ZEGCLIP_SINGLE`` / ``ZEGCLIP_15``: the prompts of ZegCLIP's precomputed text embeddings
  (ZiqinZhou66/ZegCLIP, ``configs/_base_/datasets/text_embedding/get_embedding.ipynb``):
  ``voc12_single.npy`` / ``coco_single.npy`` use ``"a photo of a {}"`` (no final period),
  ``coco_multi.npy`` (the COCO-Stuff config) the mean over its 15 templates.

``cfg.MODEL.CLIP.TEMPLATES`` names one set (case-insensitive): ``single``, ``imagenet_80``,
``vild_14``, ``zegclip_single``, ``zegclip_15``; or it gives its own list of templates, each with
one ``{}`` (e.g. zsseg's single-prompt configs: ``["a sculpture of a {}."]``).
"""

from __future__ import annotations

from collections.abc import Sequence

from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

from zsseg_bench.utils.errors import UserError

SINGLE: tuple[str, ...] = ("a photo of a {}.",)

IMAGENET_80: tuple[str, ...] = tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES)

VILD_14: tuple[str, ...] = (
    "a photo of a {}.",
    "This is a photo of a {}",
    "There is a {} in the scene",
    "There is the {} in the scene",
    "a photo of a {} in the scene",
    "a photo of a small {}.",
    "a photo of a medium {}.",
    "a photo of a large {}.",
    "This is a photo of a small {}.",
    "This is a photo of a medium {}.",
    "This is a photo of a large {}.",
    "There is a small {} in the scene.",
    "There is a medium {} in the scene.",
    "There is a large {} in the scene.",
)

ZEGCLIP_SINGLE: tuple[str, ...] = ("a photo of a {}",)

ZEGCLIP_15: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of a small {}.",
    "a photo of a medium {}.",
    "a photo of a large {}.",
    "This is a photo of a {}.",
    "This is a photo of a small {}.",
    "This is a photo of a medium {}.",
    "This is a photo of a large {}.",
    "a {} in the scene.",
    "a photo of a {} in the scene.",
    "There is a {} in the scene.",
    "There is the {} in the scene.",
    "This is a {} in the scene.",
    "This is the {} in the scene.",
    "This is one {} in the scene.",
)

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "single": SINGLE,
    "imagenet_80": IMAGENET_80,
    "vild_14": VILD_14,
    "zegclip_single": ZEGCLIP_SINGLE,
    "zegclip_15": ZEGCLIP_15,
}

assert len(IMAGENET_80) == 80 and len(VILD_14) == 14 and len(ZEGCLIP_15) == 15


def get_templates(templates: str | Sequence[str]) -> tuple[str, ...]:
    """Resolve a template-set name (or an explicit list of templates) to a tuple of templates.

    Args:
        templates: a name of :data:`TEMPLATE_SETS` (case-insensitive), or a sequence of
            template strings each containing one ``{}``.

    Raises:
        UserError: unknown set name, or a template without exactly one ``{}`` (both naming
            ``MODEL.CLIP.TEMPLATES``).
    """
    if isinstance(templates, str):
        key = templates.strip().lower()
        if key not in TEMPLATE_SETS:
            raise UserError(
                f"unknown prompt template set {templates!r} (MODEL.CLIP.TEMPLATES); "
                f"choose one of {sorted(TEMPLATE_SETS)}"
            )
        return TEMPLATE_SETS[key]
    out = tuple(templates)
    if not out:
        raise UserError("empty list of prompt templates (MODEL.CLIP.TEMPLATES)")
    for t in out:
        if not isinstance(t, str) or t.count("{}") != 1:
            raise UserError(f"prompt template {t!r} (MODEL.CLIP.TEMPLATES) must be a string "
                            "with exactly one '{}' where the class name goes")
    return out
