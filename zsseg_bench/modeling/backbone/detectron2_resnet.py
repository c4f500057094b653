"""A ResNet with detectron2's layout and parameter names: zsseg's and MaskFormer's backbone.

detectron2's ``build_resnet_backbone`` and ``build_resnet_deeplab_backbone``
(facebookresearch/detectron2, ``modeling/backbone/resnet.py`` and
``projects/DeepLab/deeplab/resnet.py``): a stem (``basic``: one 7x7 conv; ``deeplab``: three 3x3
convs, the "R-101c" of MaskFormer and zsseg) and the stages ``res2..res5`` of bottleneck blocks,
the stride in the 3x3 conv (``stride_in_1x1=False``) and, in ``res5``, the dilations of the
multi-grid (``res5_multi_grid`` x ``res5_dilation``, DeepLab's (1, 2, 4)). Every conv is
bias-free and followed by its norm, named as detectron2 names them (``stem.conv1.weight``,
``stem.conv1.norm.running_mean``, ``res2.0.shortcut.weight``, ``res5.2.conv3.norm.bias``), so a
zsseg checkpoint's ``backbone.*`` tensors and detectron2's ImageNet files (``R-103.pkl``,
``R-50.pkl``; :func:`read_detectron2_weights`) load as they are.

The block takes keyword arguments only (no config); a method builds it from its config keys
with :func:`~zsseg_bench.modeling.backbone.build_backbone`.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from zsseg_bench.utils.errors import UserError
from zsseg_bench.utils.state_dict import state_dict_mismatch

logger = logging.getLogger(__name__)

#: Bottleneck blocks per stage (detectron2 ``build_resnet_backbone``; He et al. 2016, Table 1).
BLOCKS_PER_STAGE = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
STEM_TYPES = ("basic", "deeplab")
NORMS = ("BN", "FrozenBN")


class ConvNorm(nn.Conv2d):
    """A bias-free conv followed by its norm (``.norm``), detectron2's ``Conv2d(norm=...)``.

    A frozen norm is folded into the conv (its scale into the weights, its shift into the bias):
    the same affine map, computed without two passes over the feature map (faster, forward and
    backward; equal to conv-then-norm up to float rounding).
    """

    def __init__(self, cin: int, cout: int, kernel: int, *, norm: str, stride: int = 1,
                 dilation: int = 1):
        super().__init__(cin, cout, kernel, stride=stride, padding=dilation * (kernel // 2),
                         dilation=dilation, bias=False)
        self.norm = FrozenBatchNorm2d(cout) if norm == "FrozenBN" else nn.BatchNorm2d(cout)
        # detectron2 c2_msra_fill
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.norm
        if not isinstance(norm, FrozenBatchNorm2d):
            return norm(super().forward(x))
        scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
        shift = norm.bias - norm.running_mean * scale
        return F.conv2d(x, self.weight * scale.view(-1, 1, 1, 1), shift, self.stride,
                        self.padding, self.dilation)


class Stem(nn.Module):
    """``basic`` (7x7 conv, stride 2) or ``deeplab`` (3x3 convs: stride 2, 1, 1; the first two
    with half the channels), then ReLU after each conv and a 3x3 max-pool of stride 2."""

    def __init__(self, stem_type: str, out_channels: int, norm: str):
        super().__init__()
        if stem_type == "basic":
            self.convs = ("conv1",)
            self.conv1 = ConvNorm(3, out_channels, 7, stride=2, norm=norm)
        else:
            half = out_channels // 2
            self.convs = ("conv1", "conv2", "conv3")
            self.conv1 = ConvNorm(3, half, 3, stride=2, norm=norm)
            self.conv2 = ConvNorm(half, half, 3, norm=norm)
            self.conv3 = ConvNorm(half, out_channels, 3, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.convs:
            x = F.relu_(getattr(self, name)(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class Bottleneck(nn.Module):
    """detectron2's ``BottleneckBlock`` (1x1, 3x3 with stride and dilation, 1x1; a projection
    shortcut when the channels change)."""

    def __init__(self, cin: int, cout: int, bottleneck: int, *, stride: int, dilation: int,
                 norm: str, stride_in_1x1: bool):
        super().__init__()
        self.shortcut = (ConvNorm(cin, cout, 1, stride=stride, norm=norm) if cin != cout
                         else None)
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = ConvNorm(cin, bottleneck, 1, stride=s1, norm=norm)
        self.conv2 = ConvNorm(bottleneck, bottleneck, 3, stride=s3, dilation=dilation, norm=norm)
        self.conv3 = ConvNorm(bottleneck, cout, 1, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu_(out)


class Detectron2ResNet(nn.Module):
    """``forward(images) -> {"res2": ..., "res5": ...}`` (strides 4, 8, 16, 32).

    Attributes:
        out_channels: channels of each output feature, by name.
    """

    def __init__(self, *, depth: int = 101, stem_type: str = "deeplab",
                 stem_out_channels: int = 128, res2_out_channels: int = 256,
                 stride_in_1x1: bool = False, res5_dilation: int = 1,
                 res5_multi_grid: Sequence[int] = (1, 2, 4), norm: str = "FrozenBN",
                 renormalize: tuple[Sequence[float], ...] | None = None,
                 prefix: str = "BACKBONE"):
        """
        Args:
            depth: 50, 101 or 152.
            stem_type: ``basic`` or ``deeplab``.
            stem_out_channels: channels of the stem (64 basic, 128 deeplab).
            res2_out_channels: output channels of ``res2`` (doubled per stage; bottleneck
                width is a quarter of them).
            stride_in_1x1: put a block's stride in its first 1x1 conv (MSRA) instead of the 3x3.
            res5_dilation: 1 (stride 32) or 2 / 4 (``res5`` keeps stride 16, dilated).
            res5_multi_grid: per ``res5`` block, the factor of its 3x3 conv's dilation.
            norm: ``FrozenBN`` (detectron2's default ``MODEL.RESNETS.NORM``) or ``BN``.
            renormalize: ``(input_mean, input_std, mean, std)`` (0-255 scale): inputs normalised
                with the first pair are mapped to the second before the stem; None: inputs are
                normalised as the weights expect.
            prefix: the config node of these arguments (``MODEL.<METHOD>.BACKBONE``), named by
                the errors (``<prefix>.DEPTH``, ``<prefix>.WEIGHTS``, ...).
        """
        super().__init__()
        self.prefix = prefix
        if depth not in BLOCKS_PER_STAGE:
            raise UserError(f"{prefix}.DEPTH = {depth}: the detectron2 ResNet "
                            f"has depth {', '.join(map(str, BLOCKS_PER_STAGE))}")
        if stem_type not in STEM_TYPES or norm not in NORMS:
            raise UserError(f"detectron2 ResNet: stem {stem_type!r} / norm {norm!r} is not one "
                            f"of {STEM_TYPES} / {NORMS}")
        blocks = BLOCKS_PER_STAGE[depth]
        if len(res5_multi_grid) != blocks[3]:
            raise UserError(f"{prefix}.RES5_MULTI_GRID = {list(res5_multi_grid)} "
                            f"needs one factor per res5 block ({blocks[3]})")
        if res5_dilation not in (1, 2, 4):
            raise UserError(f"{prefix}.RES5_DILATION = {res5_dilation} is not "
                            "one of 1, 2, 4")
        self.depth = depth
        self.stem = Stem(stem_type, stem_out_channels, norm)
        cin, cout = stem_out_channels, res2_out_channels
        self.out_channels: dict[str, int] = {}
        for i, n in enumerate(blocks):
            name = f"res{i + 2}"
            if i == 3:
                dilations = [res5_dilation * g for g in res5_multi_grid]
                first_stride = 1 if res5_dilation > 1 else 2
            else:
                dilations = [1] * n
                first_stride = 1 if i == 0 else 2
            stage = nn.Sequential(*[
                Bottleneck(cin if j == 0 else cout, cout, cout // 4,
                           stride=first_stride if j == 0 else 1, dilation=dilations[j],
                           norm=norm, stride_in_1x1=stride_in_1x1) for j in range(n)])
            self.add_module(name, stage)
            self.out_channels[name] = cout
            cin, cout = cout, cout * 2
        self.renormalize = renormalize is not None
        if renormalize is not None:
            scale, shift = renormalization(*renormalize)
            self.register_buffer("in_scale", scale, persistent=False)
            self.register_buffer("in_shift", shift, persistent=False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images * self.in_scale + self.in_shift if self.renormalize else images
        x = self.stem(x)
        out = {}
        for name in self.out_channels:
            x = getattr(self, name)(x)
            out[name] = x
        return out

    def load_weights(self, path: str) -> None:
        """Loads a detectron2-layout ResNet state dict from ``path`` (strict; see
        :func:`read_detectron2_weights` for the formats)."""
        key = f"{self.prefix}.WEIGHTS"
        state = read_detectron2_weights(path, key)
        target = self.state_dict()
        # Classifier and BN step counters: in ImageNet files, not in the backbone.
        state = {k: v for k, v in state.items()
                 if k in target or not (k.startswith(("fc.", "linear.", "stem.fc."))
                                        or k.endswith("num_batches_tracked"))}
        required = [k for k in target if not k.endswith("num_batches_tracked")]
        problems = state_dict_mismatch(state, target, required=required)
        if problems:
            raise UserError(f"{key} {path} does not match a detectron2 ResNet-{self.depth} "
                            f"with this stem (check {self.prefix}.DEPTH / STEM_TYPE / "
                            f"STEM_OUT_CHANNELS): {problems}")
        self.load_state_dict(state, strict=False)
        logger.info("%s: loaded %s", self.prefix, path)


def renormalization(input_mean: Sequence[float], input_std: Sequence[float],
                    mean: Sequence[float], std: Sequence[float]) -> tuple[torch.Tensor, ...]:
    """(scale, shift), 1 x 3 x 1 x 1 each: ``x * scale + shift`` maps an image normalised with
    ``input_mean/std`` to one normalised with ``mean/std`` (all 0-255 scale)."""
    in_mean, in_std = torch.tensor(input_mean), torch.tensor(input_std)
    out_mean, out_std = torch.tensor(mean), torch.tensor(std)
    scale, shift = in_std / out_std, (in_mean - out_mean) / out_std
    return scale.view(1, -1, 1, 1), shift.view(1, -1, 1, 1)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays (detectron2's model-zoo ``.pkl`` files) and nothing that
    could run code: any other class is refused."""

    _ALLOWED = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
                for n in ("_reconstruct", "scalar")} | {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights file")
        return super().find_class(module, name)


def read_detectron2_weights(path: str, key: str) -> dict[str, torch.Tensor]:
    """A detectron2-layout ResNet state dict read from ``path``.

    Formats: detectron2's model-zoo pickles (``R-103.pkl``: ``{"model": {name: ndarray}, ...}``,
    as ``tools/convert-torchvision-to-d2.py`` writes them), a torch file holding such a dict or a
    plain state dict, or a whole detectron2 checkpoint of MaskFormer / zsseg (its
    ``backbone.*`` tensors are taken). Never downloaded.

    Raises:
        UserError: missing file, unreadable file, no state dict inside.
    """
    if not os.path.isfile(path):
        raise UserError(f"{key}: file not found: {path} (weights are never downloaded; or set "
                        f"{key.rsplit('.', 1)[0]}.RANDOM_INIT True and WEIGHTS '')")
    try:
        if path.endswith(".pkl"):
            with open(path, "rb") as f:
                obj: Any = _ArrayUnpickler(f, encoding="latin1").load()
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise UserError(f"{key}: cannot read {path}: {str(e).splitlines()[0]} (expected "
                        "detectron2's R-103.pkl format or a torch state dict)") from e
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        raise UserError(f"{key}: {path} holds no state dict")
    if any(k.startswith("backbone.") for k in obj):
        obj = {k[len("backbone."):]: v for k, v in obj.items() if k.startswith("backbone.")}
    out = {}
    for k, v in obj.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(np.ascontiguousarray(v))
        if not isinstance(v, torch.Tensor):
            raise UserError(f"{key}: {path}: entry {k!r} is not a tensor")
        out[k.removeprefix("module.")] = v
    return out
