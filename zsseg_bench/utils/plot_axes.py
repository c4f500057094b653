"""Readable log axes for matplotlib plots (speed scaling, the demo's picture)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def plain_log_axis(axis: Any, ticks: Iterable[float] | None = None,
                   span: tuple[float, float] | None = None) -> None:
    """Log-axis ticks as plain numbers (``20``, ``0.5``), without the crowded labels of minor
    ticks: at ``ticks`` if given; else at 1, 2, 5 x 10^k, or, over a ``span`` of less than 3x,
    at four values spread over it (3 significant digits)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    if ticks is None and span is not None and 0 < span[0] and span[1] < 3 * span[0]:
        ticks = {float(f"{v:.3g}") for v in np.geomspace(span[0], span[1], 4)}
    if ticks is not None:
        axis.set_major_locator(FixedLocator(sorted(set(ticks))))
    else:
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def error_below(mean: float, std: float) -> list[list[float]] | None:
    """An error bar of ``mean ± std`` that stops at 0 (FPS, IoU cannot be negative), as
    matplotlib's ``[[below], [above]]``; None without a std."""
    if std is None or not np.isfinite(std) or mean is None or not np.isfinite(mean):
        return None
    return [[min(std, max(mean, 0.0))], [std]]
