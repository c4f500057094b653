"""How cost grows with the work: every method timed while one factor grows, the rest at the
paper setting (512x512, VOC's 20 classes, each config's inference mode and proposal count).

Factors (:data:`FULL_GRID`; ``--quick``: :data:`QUICK_GRID`):

- ``vocabulary``: number of classes, 20 / 59 / 171 / 847 (VOC, Context-59, COCO-Stuff,
  ADE-847 sizes). The test vocabulary is a metadata-only dataset of K generic class names
  (:func:`register_vocabulary`; with random weights the names do not change the cost).
  ZegCLIP's decoder and every method's classification over the cached text embeddings grow
  with K.
- ``input``: input side 512 / 640 / 768 / 1024, in whole-image and sliding-window inference
  (the config's ``TEST.SLIDE`` windows).
- ``proposals``: the number of mask proposals (the two-stage model's queries = CLIP crops),
  25 / 50 / 100 / 200; only for methods that name the config key of that number
  (``Method.speed.proposals_key``, :class:`~zsseg_bench.config.projects.SpeedKnobs`).

Each point is one :func:`~zsseg_bench.speed.harness.benchmark_model` record reduced to FPS,
latency, GFLOPs and parameters; ``scaling.json`` holds them (written after every point, so a
re-run resumes) and ``speed_scaling.png`` plots FPS and GFLOPs per factor, one line per method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zsseg_bench.utils.plot_axes import plain_log_axis

PAPER_VOCABULARY = 20
PAPER_INPUT = 512
#: The proposal count of the reference configs (MaskFormer's 100 queries).
PAPER_PROPOSALS = 100
#: One prompt template: the text embeddings are computed and cached before timing, so the
#: number of templates averaged changes no timed cost, only the set-up (847 classes x 15
#: templates through a ViT-B/16 text tower take minutes on a CPU).
TEXT_OPTS = ("MODEL.CLIP.TEMPLATES", "single")


@dataclasses.dataclass(frozen=True)
class ScalingGrid:
    """The values of each factor, and the setting the other factors stay at."""

    vocabulary: tuple[int, ...]
    input: tuple[int, ...]
    proposals: tuple[int, ...]
    base_input: int = PAPER_INPUT
    base_vocabulary: int = PAPER_VOCABULARY

    def factors(self) -> dict[str, tuple[int, ...]]:
        return {"vocabulary": self.vocabulary, "input": self.input,
                "proposals": self.proposals}


FULL_GRID = ScalingGrid(vocabulary=(20, 59, 171, 847), input=(512, 640, 768, 1024),
                        proposals=(25, 50, 100, 200))
#: The reduced grid of ``--quick``: every factor in two points, and a model with proposals
#: scaled in proposals only (CPU: a two-stage call at 512 px takes ~1.5 min on 2 cores).
QUICK_GRID = ScalingGrid(vocabulary=(20, 847), input=(512, 1024), proposals=(25, 100))
MODES = ("whole", "slide")
VOCABULARY_DATASET = "scaling_vocabulary_{}"
#: Fields of a speed record kept per point.
POINT_FIELDS = ("fps", "gflops", "cpu_time_ms")


@dataclasses.dataclass(frozen=True)
class ScalingPoint:
    """One measurement: a method with one factor at one value (the rest at the paper setting).

    Attributes:
        method: the method's name (its config is ``configs/voc/<method>.yaml``).
        factor: ``vocabulary``, ``input`` or ``proposals``.
        value: the factor's value (classes, input side, proposals).
        mode: ``whole``/``slide`` for the input factor, else None (the config's mode).
    """

    method: str
    factor: str
    value: int
    mode: str | None = None

    @property
    def key(self) -> str:
        """A stable id of the point (the key of ``scaling.json``'s ``points``)."""
        return f"{self.method}/{self.factor}={self.value}" + (f"/{self.mode}" if self.mode
                                                              else "")

    def speed_options(self, grid: ScalingGrid = FULL_GRID, proposals_key: str | None = None
                      ) -> dict[str, Any]:
        """``input_size``, ``mode``, ``dataset`` and config ``opts`` of this point.

        Args:
            grid: the factors' values.
            proposals_key: the method's config key of its proposal count (a ``proposals``
                point sets it).
        """
        size = self.value if self.factor == "input" else grid.base_input
        classes = self.value if self.factor == "vocabulary" else grid.base_vocabulary
        opts = list(TEXT_OPTS)
        if self.factor == "proposals":
            if proposals_key is None:
                raise ValueError(f"{self.key}: the method names no proposals key")
            opts += [proposals_key, str(self.value)]
        return {"input_size": (size, size), "mode": self.mode,
                "dataset": VOCABULARY_DATASET.format(classes), "opts": opts}


def scaling_points(methods: dict[str, bool], grid: ScalingGrid, quick: bool = False
                   ) -> list[ScalingPoint]:
    """Every point of the grid.

    Args:
        methods: method name -> whether it has proposals to scale (a proposals key).
        grid: the factors' values.
        quick: a model with proposals is scaled in proposals only.
    """
    points = []
    for method, has_proposals in methods.items():
        for factor, values in grid.factors().items():
            if factor == "proposals" and not has_proposals:
                continue
            if quick and has_proposals and factor != "proposals":
                continue
            for value in values:
                modes = MODES if factor == "input" else (None,)
                points += [ScalingPoint(method, factor, value, mode) for mode in modes]
    return points


def register_vocabulary(classes: int) -> str:
    """Registers (once) a metadata-only dataset of ``classes`` generic class names, three in
    four seen; returns its name."""
    from zsseg_bench.data.catalog import MetadataCatalog

    name = VOCABULARY_DATASET.format(classes)
    if name not in MetadataCatalog.list():
        seen = list(range((3 * classes) // 4))
        MetadataCatalog.get(name).set(
            stuff_classes=[f"class {i}" for i in range(classes)], seen_classes=seen,
            unseen_classes=list(range(len(seen), classes)), ignore_label=255)
    return name


def point_record(point: ScalingPoint, record: dict[str, Any]) -> dict[str, Any]:
    """What ``scaling.json`` keeps of a speed record."""
    return {**dataclasses.asdict(point), **{k: record.get(k) for k in POINT_FIELDS},
            "latency_ms": record["latency_ms"]["mean"],
            "params_total": record["params"]["total"],
            "vocabulary_size": record["protocol"]["vocabulary_size"],
            "input_size": record["protocol"]["input_size"],
            "inference_mode": record["protocol"]["mode"]}


def series(points: Iterable[dict[str, Any]], factor: str) -> dict[str, list[dict[str, Any]]]:
    """Points of one factor as lines: ``<method>`` or ``<method> (<mode>)`` -> points sorted
    by value."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        if p["factor"] == factor:
            name = p["method"] + (f" ({p['mode']})" if p.get("mode") else "")
            lines.setdefault(name, []).append(p)
    return {k: sorted(v, key=lambda p: p["value"]) for k, v in lines.items()}


_AXIS_LABELS = {"vocabulary": "vocabulary size (classes)", "input": "input side (px)",
                "proposals": "two-stage proposals (queries)"}
_TITLES = {"vocabulary": "Vocabulary grows", "input": "Input size grows",
           "proposals": "Two-stage proposals grow"}


def plot_scaling(points: list[dict[str, Any]], path: str | Path, title: str,
                 labels: dict[str, str] | None = None) -> Path:
    """``speed_scaling.png``: FPS (top) and GFLOPs (bottom) per factor (columns, titled), one
    line per method (one colour; solid: whole-image inference, dashed: sliding windows) under
    its display name (``labels``: method -> name), log axes with plain-number ticks, one
    legend below."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from zsseg_bench.utils.file_io import atomic_write_bytes

    labels = labels or {}
    factors = [f for f in FULL_GRID.factors() if any(p["factor"] == f for p in points)]
    fig = Figure(figsize=(5.0 * max(len(factors), 1), 8), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, max(len(factors), 1), squeeze=False)
    methods = sorted({p["method"] for p in points})
    colours = {m: f"C{k % 10}" for k, m in enumerate(methods)}  # a method's lines: one colour
    handles: dict[str, Any] = {}
    for col, factor in enumerate(factors):
        xs_all: set[float] = set()
        values: list[list[float]] = [[], []]
        for name, line in series(points, factor).items():
            method, _, mode = name.partition(" (")
            slide = mode.startswith("slide")
            label = labels.get(method, method) + (" (sliding windows)" if slide else "")
            xs = [p["value"] for p in line]
            xs_all.update(xs)
            style = dict(marker="s" if slide else "o", linestyle="--" if slide else "-",
                         label=label, color=colours[method])
            fps = [p["fps"] for p in line]
            handles.setdefault(label, axes[0][col].plot(xs, fps, **style)[0])
            values[0] += fps
            gflops = [p["gflops"] for p in line]
            if all(g is not None for g in gflops):
                axes[1][col].plot(xs, gflops, **style)
                values[1] += gflops
        for row, ylabel in enumerate(("FPS (images / s)", "GFLOPs")):
            ax = axes[row][col]
            ax.set_xscale("log")
            ax.set_yscale("log")
            plain_log_axis(ax.xaxis, xs_all)
            positive = [v for v in values[row] if v and v > 0]
            plain_log_axis(ax.yaxis, span=(min(positive), max(positive)) if positive
                            else None)
            ax.set_xlabel(_AXIS_LABELS[factor])
            ax.set_ylabel(ylabel)
            ax.set_title(f"{_TITLES[factor]}: {ylabel.split(' (')[0]}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    if handles:  # one legend under the panels: it hides no line
        fig.legend(handles=list(handles.values()), loc="lower center", frameon=False,
                   ncol=min(len(handles), 4), fontsize=8)
    fig.tight_layout(rect=(0, 0.06 + 0.025 * ((len(handles) - 1) // 4), 1, 0.96))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
