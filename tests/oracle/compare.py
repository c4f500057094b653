"""Comparison helpers of the oracle tests: a table of stages, each with its relative error and
tolerance, printed whole when any stage fails."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest
import torch


def relative_error(ours: torch.Tensor, official: torch.Tensor, floor: float = 0.0) -> float:
    """``max |ours - official| / max(max |official|, floor)``: relative to the official
    tensor's own scale, or to ``floor`` where that is smaller (a tensor that is 0 up to float
    noise, e.g. a gradient that cancels, compared on the scale of its neighbours). Shapes must
    be equal."""
    if tuple(ours.shape) != tuple(official.shape):
        raise AssertionError(f"shape {tuple(ours.shape)} vs official {tuple(official.shape)}")
    ours, official = ours.detach().double(), official.detach().double()
    scale = max(float(official.abs().max()) if official.numel() else 0.0, floor)
    diff = float((ours - official).abs().max()) if official.numel() else 0.0
    return diff / scale if scale > 0 else diff


def argmax_mismatches(ours: torch.Tensor, official: torch.Tensor, dim: int = 0,
                      margin: float = 0.0) -> int:
    """Positions where the class argmax of two score maps (``K x H x W``) differs, counting
    only those where the official best score leads the second by more than ``margin``.

    Where two classes' scores cross (a boundary in a bilinearly upsampled map), some pixels
    hold a near-tie; float noise of ~1e-7 may break such a tie either way in any two
    implementations, so an exact argmax comparison counts ties (``margin`` 0), a faithful one
    counts the pixels decided by more than the noise.
    """
    differs = ours.argmax(dim) != official.argmax(dim)
    if margin > 0:
        top2 = official.topk(2, dim=dim).values
        lead = top2.select(dim, 0) - top2.select(dim, 1)
        differs &= lead > margin
    return int(differs.sum())


@dataclass
class Row:
    stage: str
    value: float
    limit: float
    what: str = "rel. error"

    @property
    def ok(self) -> bool:
        return self.value <= self.limit


@dataclass
class StageTable:
    """Stage-by-stage agreement of the suite with an official implementation.

    ``close`` adds a tensor comparison (relative error against a tolerance), ``count`` a count
    that must stay within a limit (0: equal). :meth:`check` fails the test with the whole
    table when a row is out of bounds; :meth:`failures` lists those rows.
    """

    title: str
    rows: list[Row] = field(default_factory=list)

    def close(self, stage: str, ours: torch.Tensor, official: torch.Tensor,
              tol: float) -> float:
        err = relative_error(ours, official)
        self.rows.append(Row(stage, err, tol))
        return err

    def close_all(self, stage: str, ours: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
                  official: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
                  tol: float, floor: float = 0.0) -> float:
        """One row for many tensors (the worst relative error, each tensor on its own scale
        or ``floor``); mappings must share keys."""
        if isinstance(ours, Mapping) and isinstance(official, Mapping):
            if set(ours) != set(official):
                raise AssertionError(f"{stage}: keys differ: only ours "
                                     f"{sorted(set(ours) - set(official))[:5]}, only official "
                                     f"{sorted(set(official) - set(ours))[:5]}")
            pairs = [(ours[k], official[k]) for k in sorted(official)]
        else:
            if len(ours) != len(official):
                raise AssertionError(f"{stage}: {len(ours)} tensors vs {len(official)} official")
            pairs = list(zip(ours, official))
        err = max((relative_error(a, b, floor) for a, b in pairs), default=0.0)
        self.rows.append(Row(f"{stage} ({len(pairs)})", err, tol))
        return err

    def count(self, stage: str, value: int, limit: int = 0, what: str = "count") -> int:
        self.rows.append(Row(stage, float(value), float(limit), what))
        return value

    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    def __str__(self) -> str:
        width = max([len(r.stage) for r in self.rows] + [5])
        lines = [self.title, f"  {'stage':<{width}}  {'value':>10}  {'limit':>8}  ok"]
        for r in self.rows:
            fmt = ".0f" if r.what == "count" else ".2e"
            lines.append(f"  {r.stage:<{width}}  {r.value:>10{fmt}}  {r.limit:>8{fmt}}  "
                         f"{'yes' if r.ok else 'NO'}")
        return "\n".join(lines)

    def check(self) -> None:
        """Prints the table; fails the test (with the table) if any row is out of bounds."""
        print(self)
        if self.failures():
            pytest.fail(f"the suite differs from the official code:\n{self}", pytrace=False)
