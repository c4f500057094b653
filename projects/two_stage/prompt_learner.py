"""zsseg's learned prompts: class texts from learned context vectors instead of a template.

``LearnablePromptExtractor`` (MendelXu/zsseg.baseline @ d77c3af,
``mask_former/modeling/clip_adapter/text_prompt.py``): the text of class ``c`` is CLIP's text
tower on the token embeddings

    [SOT] p_1 .. p_P  <tokens of c>  s_1 .. s_S  "."  [EOT]  [pad] ...

where ``p`` (``PROMPT_SHAPE[0]``, 16 in zsseg's configs) and ``s`` (``PROMPT_SHAPE[1]``, 0) are
learned vectors of the text width (``PROMPT_DIM`` 512), initialised N(0, 0.02); ``[SOT]``, ``"."``,
``[EOT]`` and the padding are the token embeddings of ``"X."``'s tokenisation, the class tokens
its own (no gradient), and the feature is read at the ``[EOT]`` position. zsseg learns the vectors
in a separate stage (``configs/*/zero_shot_proposal_classification_learn_prompt_*.yaml``) and
loads them frozen into the segmentation model (``PROMPT_CHECKPOINT``); without that checkpoint
they are trained with the model.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from zsseg_bench.utils.errors import UserError


class LearnedPrompts(nn.Module):
    """``forward(clip, names) -> K x D`` normalised class texts (module docstring)."""

    def __init__(self, *, prefix_length: int = 16, suffix_length: int = 0, dim: int = 512,
                 weights: str = ""):
        """
        Args:
            prefix_length, suffix_length: learned vectors before / after the class tokens
                (zsseg ``PROMPT_SHAPE``).
            dim: their width (CLIP's text width; zsseg ``PROMPT_DIM``).
            weights: a zsseg checkpoint holding learned prompts (``PROMPT_CHECKPOINT``: its
                ``*prompt_learner.prefix_prompt`` / ``suffix_prompt`` tensors); loaded frozen.
        """
        super().__init__()
        self.prefix_prompt = self._init(prefix_length, dim)
        self.suffix_prompt = self._init(suffix_length, dim)
        self._cache: dict[tuple, torch.Tensor] = {}
        if weights:
            self.load_weights(weights)

    @staticmethod
    def _init(length: int, dim: int) -> nn.Parameter | None:
        if length == 0:
            return None
        return nn.Parameter(nn.init.normal_(torch.empty(length, dim), std=0.02))

    def load_weights(self, path: str, key: str = "MODEL.TWO_STAGE.PROMPT_LEARNER.WEIGHTS") -> None:
        """Loads zsseg's learned prompts from ``path`` and freezes them."""
        if not os.path.isfile(path):
            raise UserError(f"{key}: file not found: {path}")
        try:
            checkpoint: Any = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
            raise UserError(f"{key}: cannot read {path}: {str(e).splitlines()[0]}") from e
        state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else {}
        for name in ("prefix_prompt", "suffix_prompt"):
            mine = getattr(self, name)
            found = [v for k, v in state.items() if k.endswith(f"prompt_learner.{name}")]
            if mine is None:
                if found:
                    raise UserError(f"{key}: {path} holds a {name} but the config has none "
                                    "(MODEL.TWO_STAGE.PROMPT_LEARNER.*_LENGTH)")
                continue
            if len(found) != 1 or found[0].shape != mine.shape:
                raise UserError(f"{key}: {path} holds no prompt_learner.{name} of shape "
                                f"{tuple(mine.shape)} (found {[tuple(v.shape) for v in found]}); "
                                "expected a zsseg prompt-learning checkpoint")
            with torch.no_grad():
                mine.copy_(found[0])
        self.requires_grad_(False)
        self._cache.clear()

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def forward(self, clip: Any, names: Sequence[str]) -> torch.Tensor:
        trainable = any(p.requires_grad for p in self.parameters()) and torch.is_grad_enabled()
        params = tuple(p._version for p in self.parameters())
        key = (tuple(names), str(clip.device), params)
        if not trainable and key in self._cache:
            return self._cache[key]
        with torch.no_grad():
            special = clip.model.token_embedding(clip.tokenize(["X."]))[0]  # SOT x . EOT pad
            tokens = clip.tokenize(list(names))
            words = clip.model.token_embedding(tokens)
        start, dot, end, pad = special[0:1], special[2:3], special[3:4], special[4:5]
        prefix = [start] + ([self.prefix_prompt] if self.prefix_prompt is not None else [])
        suffix = ([self.suffix_prompt] if self.suffix_prompt is not None else []) + [dot, end]
        eot = tokens.argmax(-1)  # the end-of-text token has the highest id
        rows, ends = [], []
        for w, e in zip(words, eot.tolist()):
            row = torch.cat(prefix + [w[1:e]] + suffix)
            if len(row) > tokens.shape[1]:
                raise UserError(f"learned prompt of {len(row)} tokens exceeds CLIP's context "
                                f"length {tokens.shape[1]}")
            ends.append(len(row) - 1)
            rows.append(torch.cat([row, pad.expand(tokens.shape[1] - len(row), -1)]))
        text = clip.encode_token_embeddings(torch.stack(rows), torch.tensor(ends))
        if not trainable:
            text = text.detach()
            self._cache = {key: text}
        return text
