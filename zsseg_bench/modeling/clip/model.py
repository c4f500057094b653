"""The shared CLIP layer: dense patch features, crop classification and text embeddings.

:class:`CLIPModel` wraps an open_clip model with a ``VisionTransformer`` image tower and runs its
own forward loop over the tower's residual blocks, so that

- any input size works (positional embeddings interpolated, bicubic by default, cached per grid
  size),
- deep prompts (ZegCLIP / VPT-deep) can be inserted after ``[CLS]`` and replaced at every layer,
- intermediate layers can be returned,
- the tower can run in parts, on extra tokens, with an additive attention mask
  (:meth:`CLIPModel.embed_tokens`, :meth:`CLIPModel.run_blocks`, :meth:`CLIPModel.project_tokens`;
  SAN's recognition of masks by attention-biased query tokens). Unused, it changes nothing.

The residual blocks are open_clip's; their attention runs as one
``scaled_dot_product_attention`` call on batch-first projections (:func:`residual_block`).

The model is frozen by default (every parameter ``requires_grad=False``); a method that fine-tunes
parts of CLIP unfreezes them itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from zsseg_bench.config.allowed import check_value
from zsseg_bench.modeling.stage_timer import stage
from zsseg_bench.utils.errors import UserError

from .templates import get_templates

logger = logging.getLogger(__name__)



def residual_block(block: nn.Module, x: torch.Tensor,
                   attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """open_clip's ``ResidualAttentionBlock`` on batch-first ``x`` (B x N x C), computed as the
    block computes it, with the attention as one ``scaled_dot_product_attention`` call on the
    batch-first projections.

    Calling the block itself runs ``nn.MultiheadAttention(batch_first=True)``, which in
    inference takes its fast path (``torch._native_multi_head_attention``: on the CPU, separate
    matrix-product and softmax kernels instead of the fused attention kernel) and otherwise
    projects a transposed, non-contiguous view (batched matrix products on the CPU). Measured
    on ViT-B/16, a 512 x 683 image (two 512 windows), one CPU thread
    (scripts/speed_vs_official.py): this is what made the suite slower than the official
    ZegCLIP, whose sequence-first attention reaches the fused kernel. Blocks of another kind
    (cross-attention, extra key/value biases, separate projection weights) run as they are.
    Without autograd the residual additions and QuickGELU run in place in temporaries.
    """
    attn = block.attn
    if (type(block) is not open_clip.transformer.ResidualAttentionBlock
            or not isinstance(attn, nn.MultiheadAttention) or not attn.batch_first
            or not attn._qkv_same_embed_dim or attn.bias_k is not None
            or attn.in_proj_bias is None or hasattr(block, "ln_1_kv")
            or not hasattr(block.mlp, "c_fc")):
        return block(x, attn_mask=attn_mask)
    b, n, c = x.shape
    heads = attn.num_heads
    qkv = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.view(b, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
    mask = None
    if attn_mask is not None:  # N x N, or (B * heads) x N x N as nn.MultiheadAttention takes
        mask = attn_mask.to(q.dtype)
        if mask.ndim == 3:
            mask = mask.view(b, heads, n, n)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                         dropout_p=attn.dropout if attn.training else 0.0)
    out = F.linear(out.transpose(1, 2).reshape(b, n, c), attn.out_proj.weight,
                   attn.out_proj.bias)
    if torch.is_grad_enabled():
        x = x + block.ls_1(out)
        return x + block.ls_2(block.mlp(block.ln_2(x)))
    # Without autograd, the same operations in the buffers of temporaries: on the CPU every
    # new large tensor costs an allocation and page faults (e.g. 25 MB per MLP activation).
    x = block.ls_1(out).add_(x)
    mlp = block.mlp
    hidden = F.linear(block.ln_2(x), mlp.c_fc.weight, mlp.c_fc.bias)
    if isinstance(mlp.gelu, open_clip.transformer.QuickGELU):  # x * sigmoid(1.702 * x)
        hidden.mul_(torch.mul(hidden, 1.702).sigmoid_())
    else:
        hidden = mlp.gelu(hidden)
    return block.ls_2(F.linear(hidden, mlp.c_proj.weight, mlp.c_proj.bias)).add_(x)


@dataclass
class DenseFeatures:
    """Output of :meth:`CLIPModel.encode_dense`.

    Attributes:
        patch_embeddings: B x D x h x w, patch tokens projected to the joint space, L2-normalised.
        cls_embedding: B x D, the image embedding exactly as open_clip pools it (``[CLS]`` token
            or mean of patch tokens, per the model's ``pool_type``), projected, L2-normalised.
        patch_tokens: B x (h*w) x width, last-layer patch tokens after ``ln_post``, before the
            projection.
        intermediate: block index -> B x (1+h*w) x width, the output of that residual block
            (0-based; prompts removed) for the requested layers.
    """

    patch_embeddings: torch.Tensor
    cls_embedding: torch.Tensor
    patch_tokens: torch.Tensor
    intermediate: dict[int, torch.Tensor] = field(default_factory=dict)


class CLIPModel(nn.Module):
    """An open_clip ViT CLIP with dense, crop and text encoders (see module docstring).

    Args:
        model: an open_clip ``CLIP``/``CustomTextCLIP`` whose ``visual`` is a
            ``VisionTransformer`` (attentional pooling not supported).
        tokenizer: the model's open_clip tokenizer.
        name: architecture name (for logs and cache keys).
        weights: weights path (for cache keys).
        frozen: set ``requires_grad=False`` on every parameter.
        pos_interpolation: how the pretrained positional grid is resized to another grid,
            ``"bicubic"`` (default, as open_clip's ``resize_pos_embed``) or ``"bilinear"`` (as
            ZegCLIP's ``models/backbone/img_encoder.py``).
        double_cls_embedding: the input ``[CLS]`` token is ``2 * class_embedding + pos[0]``
            instead of CLIP's ``class_embedding + pos[0]``: ZegCLIP's image encoder (inherited
            from DenseCLIP) adds ``class_embedding`` to the positional term of a token that
            already is ``class_embedding``. Off = plain CLIP.

    Attributes:
        embed_dim: joint image-text embedding size D.
        width: visual transformer width.
        num_layers: number of visual residual blocks.
        num_heads: attention heads of the visual blocks.
        patch_size: patch side in pixels.
        grid_size: pretraining patch grid (h, w).
        image_size: pretraining input size (H, W) = grid_size * patch_size.
        image_mean, image_std: CLIP normalisation constants (0-1 scale).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, name: str = "", weights: str = "",
                 frozen: bool = True, pos_interpolation: str = "bicubic",
                 double_cls_embedding: bool = False):
        super().__init__()
        check_value("MODEL.CLIP.POS_EMBED_INTERPOLATION", pos_interpolation)
        visual = model.visual
        if not isinstance(visual, open_clip.transformer.VisionTransformer):
            raise UserError("the CLIP layer supports open_clip VisionTransformer image towers")
        if visual.attn_pool is not None or visual.pool_type not in ("tok", "avg"):
            raise UserError("the CLIP layer supports ViT towers pooled by [CLS] token or mean "
                            "('tok'/'avg'), not attentional or no pooling")
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.weights = weights
        self.pos_interpolation = pos_interpolation
        self.double_cls_embedding = bool(double_cls_embedding)
        self.embed_dim: int = int(visual.output_dim)
        self.width: int = int(visual.conv1.out_channels)
        self.num_layers: int = len(visual.transformer.resblocks)
        self.num_heads: int = int(visual.transformer.resblocks[0].attn.num_heads)
        self.patch_size: int = int(visual.patch_size[0])
        self.grid_size: tuple[int, int] = tuple(int(g) for g in visual.grid_size)
        #: Pretraining input size (H, W): the natural crop size for encode_crops.
        self.image_size: tuple[int, int] = (self.grid_size[0] * self.patch_size,
                                            self.grid_size[1] * self.patch_size)
        pp = getattr(visual, "preprocess_cfg", None) or {}
        self.image_mean: tuple[float, ...] = tuple(
            pp.get("mean", open_clip.constants.OPENAI_DATASET_MEAN))
        self.image_std: tuple[float, ...] = tuple(
            pp.get("std", open_clip.constants.OPENAI_DATASET_STD))
        self._pos_cache: dict[tuple, torch.Tensor] = {}
        self._text_cache: dict[tuple, torch.Tensor] = {}
        self._class_text_cache: dict[tuple, torch.Tensor] = {}
        if frozen:
            for p in self.parameters():
                p.requires_grad_(False)
        self.model.eval()

    # ------------------------------------------------------------------------------ helpers
    @property
    def visual(self) -> nn.Module:
        return self.model.visual

    @property
    def device(self) -> torch.device:
        return self.visual.conv1.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str,
                              *args: Any, **kwargs: Any) -> None:
        # New CLIP weights invalidate the caches; a state dict without them (a checkpoint of a
        # head's trainable weights, loaded into the whole model) keeps them.
        if any(k.startswith(prefix) for k in state_dict):
            self._pos_cache.clear()
            self._text_cache.clear()
            self._class_text_cache.clear()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def positional_embedding(self, h: int, w: int,
                             table: torch.Tensor | None = None) -> torch.Tensor:
        """Positional embedding for an h x w patch grid, (1 + h*w) x width.

        The pretrained grid is resized with ``pos_interpolation`` (``align_corners=False``); the
        pretrained grid size itself is returned unchanged. Results are cached per (h, w) unless
        the embedding requires grad.

        Args:
            h, w: the patch grid.
            table: a (1 + gh*gw) x width table on the pretraining grid to use instead of the
                model's own (a method's trainable copy of it); resized the same way, never cached.
        """
        pos = self.visual.positional_embedding if table is None else table
        gh, gw = self.grid_size
        if (h, w) == (gh, gw):
            return pos
        cacheable = table is None and not pos.requires_grad
        key = (h, w, pos.dtype, pos.device, pos._version)
        if cacheable and key in self._pos_cache:
            return self._pos_cache[key]
        grid = pos[1:].reshape(1, gh, gw, -1).permute(0, 3, 1, 2).float()
        grid = F.interpolate(grid, size=(h, w), mode=self.pos_interpolation,
                             align_corners=False)
        grid = grid.permute(0, 2, 3, 1).reshape(h * w, -1).to(pos.dtype)
        out = torch.cat([pos[:1], grid], dim=0)
        if cacheable:
            self._pos_cache = {k: v for k, v in self._pos_cache.items() if k[4] == pos._version}
            self._pos_cache[key] = out
        return out

    # ------------------------------------------------------------------------------ images
    def encode_dense(
        self,
        images: torch.Tensor,
        deep_prompts: torch.Tensor | None = None,
        layers: Sequence[int] | None = None,
        final_norm: nn.Module | None = None,
    ) -> DenseFeatures:
        """Dense CLIP features of CLIP-normalised images of any size.

        Args:
            images: float B x 3 x H x W, CLIP-normalised, H and W multiples of ``patch_size``.
            deep_prompts: optional L x N x width or B x L x N x width prompt tokens, L <=
                ``num_layers``. Before block ``i < L`` the N tokens after ``[CLS]`` are replaced
                by ``deep_prompts[i]`` (inserted before block 0); after block ``L-1`` they are
                carried on. Prompt tokens never enter the pooled embedding or the outputs.
            layers: 0-based block indices whose outputs to return in ``intermediate``
                (negative indices count from the end).
            final_norm: optional module applied to the last block's tokens before ``ln_post``
                (ZegCLIP's learnable ``prompt_norm``); ``patch_tokens`` include it.

        Returns:
            :class:`DenseFeatures`.
        """
        v = self.visual
        x, (h, w) = self.embed_tokens(images)
        bsz = x.shape[0]

        prompts = self._check_prompts(deep_prompts, bsz)
        n_prompt = 0 if prompts is None else prompts.shape[2]
        wanted = {(i % self.num_layers) for i in (layers or [])}
        intermediate: dict[int, torch.Tensor] = {}
        for i, blk in enumerate(v.transformer.resblocks):
            if prompts is not None and i < prompts.shape[1]:
                pr = prompts[:, i].to(x.dtype)
                rest = x[:, 1:] if i == 0 else x[:, 1 + n_prompt:]
                x = torch.cat([x[:, :1], pr, rest], dim=1)
            x = residual_block(blk, x)
            if i in wanted:
                intermediate[i] = self._strip(x, n_prompt)
        x = self._strip(x, n_prompt)
        if final_norm is not None:
            x = final_norm(x)

        if v.final_ln_after_pool:
            pooled = v.ln_post(v._global_pool(x)[0])
            patch_tokens = v.ln_post(x[:, 1:])
        else:
            xn = v.ln_post(x)
            pooled, patch_tokens = v._global_pool(xn)[0], xn[:, 1:]
        cls_emb = pooled @ v.proj
        patch_emb = F.normalize(patch_tokens @ v.proj, dim=-1)
        patch_emb = patch_emb.transpose(1, 2).reshape(bsz, -1, h, w)
        return DenseFeatures(
            patch_embeddings=patch_emb,
            cls_embedding=F.normalize(cls_emb, dim=-1),
            patch_tokens=patch_tokens,
            intermediate={i: intermediate[i] for i in sorted(intermediate)},
        )

    def embed_tokens(self, images: torch.Tensor, positional_embedding: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, tuple[int, int]]:
        """The token sequence that enters the first residual block, and the patch grid.

        Patch embedding, ``[CLS]`` first, positional embedding (:meth:`positional_embedding`),
        ``ln_pre`` -- the start of :meth:`encode_dense`. With :meth:`run_blocks` and
        :meth:`project_tokens` a method runs the tower in parts (SAN reads intermediate layers,
        then runs the last ones on extra tokens with an attention bias).

        Args:
            images: float B x 3 x H x W, CLIP-normalised, H and W multiples of ``patch_size``.
            positional_embedding: a table to use instead of the model's own (see
                :meth:`positional_embedding`); None = the model's.

        Returns:
            (B x (1 + h*w) x width tokens, patches row-major; (h, w)).
        """
        v = self.visual
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be B x 3 x H x W, got {tuple(images.shape)}")
        bsz, _, img_h, img_w = images.shape
        p = self.patch_size
        if img_h % p or img_w % p:
            raise ValueError(f"image size {img_h}x{img_w} is not a multiple of the patch size "
                             f"{p}")
        h, w = img_h // p, img_w // p
        x = v.conv1(images.to(self.dtype)).flatten(2).transpose(1, 2)  # B x hw x width
        pos = self.positional_embedding(h, w, positional_embedding).to(x.dtype)
        cls = v.class_embedding.to(x.dtype)
        # ZegCLIP: the [CLS] token (class_embedding) plus the positional term pos[0] + class_emb.
        cls = cls + (cls + pos[0]) if self.double_cls_embedding else cls + pos[0]
        cls = cls.view(1, 1, -1).expand(bsz, 1, -1)
        x = torch.cat([cls, x + pos[1:]], dim=1)
        return v.ln_pre(x), (h, w)

    def run_blocks(self, tokens: torch.Tensor, start: int = 0, stop: int | None = None,
                   attn_mask: torch.Tensor | None = None, keep: Sequence[int] = ()
                   ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Runs the visual residual blocks ``start .. stop - 1`` on any token sequence.

        Args:
            tokens: B x N x width (batch first), e.g. from :meth:`embed_tokens`, with any extra
                tokens a method adds.
            start, stop: 0-based block range (``stop`` None: to the last block).
            attn_mask: optional float mask *added* to the attention logits (q.k / sqrt(d)) of
                every block run, as ``nn.MultiheadAttention``'s ``attn_mask``: N x N, or
                (B * num_heads) x N x N with row ``b * num_heads + h`` for image b and head h.
                Row = query token, column = key token; a large negative value blocks a key.
                None (default): the plain CLIP forward.
            keep: 0-based indices of blocks (in the range) whose outputs to return.

        Returns:
            (the tokens after the last block run, {block index: its output}).
        """
        blocks = self.visual.transformer.resblocks
        stop = len(blocks) if stop is None else stop
        if not 0 <= start <= stop <= len(blocks):
            raise ValueError(f"block range {start}..{stop} outside 0..{len(blocks)}")
        if tokens.ndim != 3 or tokens.shape[-1] != self.width:
            raise ValueError(f"tokens must be B x N x {self.width}, got {tuple(tokens.shape)}")
        if attn_mask is not None:
            bsz, n = tokens.shape[:2]
            if not attn_mask.is_floating_point():
                raise ValueError("attn_mask must be a float (additive) mask")
            if attn_mask.shape not in ((n, n), (bsz * self.num_heads, n, n)):
                raise ValueError(f"attn_mask must be {n} x {n} or {bsz * self.num_heads} x {n} x "
                                 f"{n} (batch x heads, queries, keys), got "
                                 f"{tuple(attn_mask.shape)}")
            attn_mask = attn_mask.to(tokens.dtype)
        outputs: dict[int, torch.Tensor] = {}
        x = tokens
        for i in range(start, stop):
            x = residual_block(blocks[i], x, attn_mask=attn_mask)
            if i in keep:
                outputs[i] = x
        return x, outputs

    def project_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``ln_post`` and the projection to the joint space (not normalised) of tokens
        B x N x width: what CLIP does to its ``[CLS]`` token, applied to any tokens."""
        return self.visual.ln_post(tokens) @ self.visual.proj

    @staticmethod
    def _strip(x: torch.Tensor, n_prompt: int) -> torch.Tensor:
        return x if n_prompt == 0 else torch.cat([x[:, :1], x[:, 1 + n_prompt:]], dim=1)

    def _check_prompts(self, prompts: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if prompts is None:
            return None
        if prompts.ndim == 3:
            prompts = prompts.unsqueeze(0).expand(batch, -1, -1, -1)
        if prompts.ndim != 4 or prompts.shape[0] != batch or prompts.shape[-1] != self.width:
            raise ValueError(
                f"deep_prompts must be L x N x {self.width} or {batch} x L x N x {self.width}, "
                f"got {tuple(prompts.shape)}")
        if prompts.shape[1] > self.num_layers:
            raise ValueError(f"deep_prompts has {prompts.shape[1]} layers, the model "
                             f"{self.num_layers}")
        return prompts

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised image embeddings B x D (open_clip's pooling) of images of any size."""
        return self.encode_dense(images).cls_embedding

    # ------------------------------------------------------------------------------ crops
    def encode_crops(
        self,
        images: torch.Tensor,
        masks_or_boxes: Sequence[torch.Tensor],
        size: int | None = None,
        mode: str = "batched",
        crop: str = "bbox",
        chunk_size: int = 64,
        square: bool = False,
    ) -> torch.Tensor:
        """CLIP embeddings of image regions (two-stage methods' region classification).

        Each region is cut out along its bounding box and resized to ``size`` x ``size``
        (bilinear). With ``crop="masked"`` the pixels outside the region's mask are set to the
        CLIP mean (0 after normalisation) first, as zsseg does; with ``crop="bbox"`` only the box
        is cut. An empty mask takes the whole image as its box (and is all background when
        masked). The box is stretched to the square crop (zsseg, ZegFormer), unless ``square``:
        then it first grows to a square about its centre, so the region keeps its aspect ratio
        (what lies outside the image is set to the CLIP mean).

        Args:
            images: float B x 3 x H x W, CLIP-normalised.
            masks_or_boxes: per image, bool M_i x H x W masks or float M_i x 4 boxes
                (x0, y0, x1, y1 in pixels; a box is its own mask).
            size: crop side fed to CLIP; ``None`` = the model's pretraining input size
                (224 for ViT-B/16, 64 for the toy CLIP).
            mode: ``"batched"`` (crops encoded ``chunk_size`` at a time) or ``"loop"`` (one CLIP
                pass per crop); both give the same result.
            crop: ``"bbox"`` or ``"masked"``.
            chunk_size: crops per CLIP pass in batched mode.
            square: grow every box to a square before resizing (aspect ratio kept).

        Cutting and resizing run inside a ``crop_preparation`` stage (speed harness; nested in
        the caller's ``clip_crops`` stage).

        Returns:
            float N x D normalised embeddings, N = sum M_i, in input order.
        """
        if mode not in ("batched", "loop"):
            raise ValueError(f"mode must be 'batched' or 'loop', got {mode!r}")
        if crop not in ("bbox", "masked"):
            raise ValueError(f"crop must be 'bbox' or 'masked', got {crop!r}")
        if len(masks_or_boxes) != images.shape[0]:
            raise ValueError("masks_or_boxes needs one entry per image")
        size = self.image_size[0] if size is None else size
        if size % self.patch_size:
            raise ValueError(f"crop size {size} is not a multiple of the patch size")
        if mode == "loop":
            out = []
            for img, regions in zip(images, masks_or_boxes):
                for j in range(regions.shape[0]):
                    with stage("crop_preparation"):
                        c = self._cut(img, regions[j:j + 1], size, crop, square)
                    out.append(self.encode_image(c))
            return torch.cat(out, dim=0) if out else images.new_zeros((0, self.embed_dim))
        with stage("crop_preparation"):
            crops = [self._cut(img, regions, size, crop, square)
                     for img, regions in zip(images, masks_or_boxes) if regions.shape[0]]
        if not crops:
            return images.new_zeros((0, self.embed_dim))
        allc = torch.cat(crops, dim=0)
        return torch.cat([self.encode_image(allc[s:s + chunk_size])
                          for s in range(0, allc.shape[0], chunk_size)], dim=0)

    @staticmethod
    def _boxes_of(regions: torch.Tensor, img_h: int,
                  img_w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(boxes M x 4 float xyxy, masks M x H x W bool) of masks or boxes."""
        if regions.ndim == 2 and regions.shape[1] == 4:
            boxes = regions.float().clone()
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, img_w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, img_h)
            ys = torch.arange(img_h, device=regions.device).view(1, img_h, 1) + 0.5
            xs = torch.arange(img_w, device=regions.device).view(1, 1, img_w) + 0.5
            b = boxes.view(-1, 4, 1, 1)
            masks = (xs >= b[:, 0]) & (xs < b[:, 2]) & (ys >= b[:, 1]) & (ys < b[:, 3])
            return boxes, masks
        if regions.ndim != 3 or regions.shape[-2:] != (img_h, img_w):
            raise ValueError(f"masks must be M x {img_h} x {img_w}, got {tuple(regions.shape)}")
        masks = regions.bool()
        rows, cols = masks.any(2), masks.any(1)  # M x H, M x W
        ar_h = torch.arange(img_h, device=masks.device)
        ar_w = torch.arange(img_w, device=masks.device)
        big = max(img_h, img_w) + 1
        y0 = torch.where(rows, ar_h, big).min(1).values
        y1 = torch.where(rows, ar_h, -1).max(1).values + 1
        x0 = torch.where(cols, ar_w, big).min(1).values
        x1 = torch.where(cols, ar_w, -1).max(1).values + 1
        empty = ~rows.any(1)
        boxes = torch.stack([x0, y0, x1, y1], 1).float()
        boxes[empty] = torch.tensor([0.0, 0.0, img_w, img_h], device=masks.device)
        return boxes, masks

    def _cut(self, img: torch.Tensor, regions: torch.Tensor, size: int, crop: str,
             square: bool = False) -> torch.Tensor:
        """Crops M x 3 x size x size of one image (same math for one or many regions)."""
        _, img_h, img_w = img.shape
        boxes, masks = self._boxes_of(regions, img_h, img_w)
        if square:
            centre = (boxes[:, :2] + boxes[:, 2:]) / 2
            half = (boxes[:, 2:] - boxes[:, :2]).amax(1, keepdim=True) / 2
            boxes = torch.cat([centre - half, centre + half], 1)
        n = boxes.shape[0]
        # Affine sampling grid mapping the output square onto each box (pixel-centre aligned).
        t = (torch.arange(size, device=img.device, dtype=torch.float32) + 0.5) / size
        x0, y0, x1, y1 = boxes.unbind(1)
        gx = (x0[:, None] + t[None] * (x1 - x0)[:, None]) / img_w * 2 - 1  # n x size
        gy = (y0[:, None] + t[None] * (y1 - y0)[:, None]) / img_h * 2 - 1
        grid = torch.stack([gx[:, None, :].expand(n, size, size),
                            gy[:, :, None].expand(n, size, size)], dim=-1)
        src = img.float().unsqueeze(0).expand(n, -1, -1, -1)
        out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
        if crop == "masked":
            m = F.grid_sample(masks.float().unsqueeze(1), grid, mode="bilinear",
                              padding_mode="zeros", align_corners=False)
            out = out * (m > 0.5)
        elif square:
            inside = F.grid_sample(img.new_ones((n, 1, img_h, img_w), dtype=torch.float32), grid,
                                   mode="bilinear", padding_mode="zeros", align_corners=False)
            out = out * (inside > 0.5)
        return out.to(img.dtype)

    # ------------------------------------------------------------------------------ text
    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids N x context_length for ``texts``."""
        return self.tokenizer(list(texts)).to(self.device)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Normalised text embeddings N x D of token ids.

        A causal text tower pooled at the end-of-text token (OpenAI's CLIP and the open_clip
        models built like it) runs on the tokens up to the batch's last end-of-text only: with
        a causal mask no output there depends on the padding after it, so the embeddings are
        those of the full context (float noise apart), computed 4-7x faster for short prompts
        (``context_length`` 77). Other towers run as open_clip runs them.
        """
        m = self.model
        if not self._truncatable_text():
            return F.normalize(m.encode_text(tokens).float(), dim=-1)
        length = int(tokens.argmax(dim=-1).max()) + 1
        tokens = tokens[:, :length]
        cast_dtype = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast_dtype)
        x = x + m.positional_embedding[:length].to(cast_dtype)
        mask = m.attn_mask[:length, :length]
        if getattr(m.transformer, "batch_first", True):
            for block in m.transformer.resblocks:
                x = residual_block(block, x, attn_mask=mask)
        else:
            x = m.transformer(x, attn_mask=mask)
        x = m.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        proj = m.text_projection
        x = proj(x) if isinstance(proj, nn.Linear) else x if proj is None else x @ proj
        return F.normalize(x.float(), dim=-1)

    def _truncatable_text(self) -> bool:
        """Whether the text tower is causal and pooled at the argmax (end-of-text) token, with
        learned absolute positions: the case :meth:`encode_text` may shorten."""
        m = self.model
        mask = getattr(m, "attn_mask", None)
        return (isinstance(getattr(m, "token_embedding", None), nn.Embedding)
                and getattr(m, "text_pool_type", None) == "argmax"
                and isinstance(mask, torch.Tensor) and mask.dim() == 2
                and isinstance(getattr(m, "positional_embedding", None), torch.Tensor))

    def encode_token_embeddings(self, embeddings: torch.Tensor,
                                eot_indices: torch.Tensor) -> torch.Tensor:
        """Normalised text embeddings N x D of input token *embeddings* N x L x width (L the
        context length), read at the end-of-text positions ``eot_indices`` (N): the text tower
        of :meth:`encode_text` after the token lookup, for learned prompts (CoOp; zsseg's
        ``LearnablePromptExtractor``), which build the input embeddings themselves."""
        m = self.model
        cast = m.transformer.get_cast_dtype()
        x = embeddings.to(cast) + m.positional_embedding.to(cast)
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask))
        x = x[torch.arange(x.shape[0], device=x.device), eot_indices.to(x.device)]
        proj = m.text_projection
        x = proj(x) if isinstance(proj, nn.Linear) else x @ proj
        return F.normalize(x.float(), dim=-1)

    def embed_texts(self, class_names: Sequence[str],
                    templates: str | Sequence[str] = "single") -> torch.Tensor:
        """Prompt-ensembled, normalised text embeddings K x D of class names.

        Each class's prompts (one per template) are encoded as one batch of their own and
        normalised, averaged, and the mean normalised again: a class's embedding does not depend
        on which other names are embedded with it or before it (matrix kernels need not give
        bit-equal rows for batches of other sizes), so a vocabulary's seen rows are bit-equal to
        the full vocabulary's, and a checkpoint evaluated afresh scores as in its run. Results
        are cached per (class names, templates) for this model, and each class's embedding per
        (class name, templates), so a list that shares names with an earlier one (a dataset's
        seen classes, then all of them) encodes only the new names; the caches are dropped when
        weights are loaded. Computed without gradient.

        Args:
            class_names: K class names.
            templates: a template-set name (``single``, ``imagenet_80``, ``vild_14``) or a list
                of templates with one ``{}`` each.
        """
        tmpl = get_templates(templates)
        names = tuple(class_names)
        key = (names, tmpl, str(self.device))
        if key not in self._text_cache:
            per_class = self._class_text_cache
            todo = list(dict.fromkeys(n for n in names if (n, tmpl, key[2]) not in per_class))
            with torch.no_grad():
                for name in todo:
                    feats = self.encode_text(self.tokenize([t.format(name) for t in tmpl]))
                    per_class[(name, tmpl, key[2])] = F.normalize(feats.mean(0), dim=-1)
            self._text_cache[key] = torch.stack([per_class[(n, tmpl, key[2])] for n in names])
        return self._text_cache[key]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised image embeddings (same as :meth:`encode_image`)."""
        return self.encode_image(images)
