"""Speed presets: paper-scale comparisons, tabled beside the published figures.

A preset is a speed-only sweep spec (``configs/sweeps/paper_*.yaml``, ``train.enabled:
false``): the sweep machinery runs it (one ``zsseg-bench speed`` process per method, resumable;
:mod:`zsseg_bench.commands.speed_preset`). This module holds what is particular to speed: the
iterations per device type, the ``zsseg-bench speed`` options forwarded to every run, and the
comparison of the runs' ``speed.json`` records with each other and with
:mod:`zsseg_bench.evaluation.published`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from zsseg_bench.config.projects import list_methods
from zsseg_bench.config.suite_configs import configs_root
from zsseg_bench.evaluation.published import (
    PUBLISHED_EFFICIENCY,
    PUBLISHED_HARDWARE,
    PublishedEfficiency,
)
from zsseg_bench.speed.request import SpeedRequest
from zsseg_bench.utils.errors import cli_flag

#: Preset name -> its sweep spec, under the suite's configs
#: (:func:`~zsseg_bench.config.suite_configs.get_config_file`).
PRESET_SPECS = {"paper-voc": "sweeps/paper_voc.yaml", "paper-coco": "sweeps/paper_coco.yaml"}
#: Preset name -> the absolute path of its sweep spec.
PRESETS = {name: configs_root() / spec for name, spec in PRESET_SPECS.items()}
#: The dataset key of published efficiency rows of each preset's vocabulary.
PRESET_DATASET = {"paper-voc": "voc", "paper-coco": "coco_stuff"}
#: Iterations of paper-scale runs when the request gives no warmup/iters/repeats. CPU: one
#: ViT-B/16 two-stage call at 512x512 takes ~1.5 min (crops batched) to ~4 min (in a loop) on
#: 2 cores, so a single timed call and no warm-up (its one-time costs are small beside that).
PAPER_SCALE_ITERATIONS = {
    "cpu": {"warmup": 0, "iters": 1, "repeats": 1},
    "cuda": {"warmup": 10, "iters": 50, "repeats": 3},
}
#: The method of a preset that is the latency floor of one-stage methods.
FLOOR_METHOD = "clip_encoder"
#: Request fields given to every run's ``zsseg-bench speed`` as ``--<field> VALUE`` when set.
_FORWARDED_VALUES = ("device", "precision", "warmup", "iters", "repeats", "num_images",
                     "threads", "sdpa", "mode", "compile")
#: Request fields given as ``--<flag>`` when true (flag -> whether the request asks for it).
_FORWARDED_FLAGS: dict[str, Callable[[SpeedRequest], bool]] = {
    "channels_last": lambda r: r.channels_last, "cuda_graphs": lambda r: r.cuda_graphs,
    "no_flops": lambda r: not r.flops, "no_breakdown": lambda r: not r.breakdown}


def preset_speed_args(request: SpeedRequest, device: str) -> list[str]:
    """The ``zsseg-bench speed`` options every run of a preset gets (the runs are that
    command's processes): the request's speed options, the iterations of
    :data:`PAPER_SCALE_ITERATIONS` for the device type where the request gives none, and
    ``--input-size`` if given."""
    defaults = PAPER_SCALE_ITERATIONS["cuda" if device.startswith("cuda") else "cpu"]
    out: list[str] = []
    for key, value in defaults.items():
        if getattr(request, key) is None:
            out += [f"--{key}", str(value)]
    for field in _FORWARDED_VALUES:
        value = getattr(request, field)
        if value is not None:
            out += [cli_flag(field), str(value)]
    for flag, wanted in _FORWARDED_FLAGS.items():
        if wanted(request):
            out.append(cli_flag(flag))
    if request.input_size:
        out += ["--input-size", *map(str, request.input_size)]
    return out


@dataclass
class PresetRun:
    """One run of a preset: its sweep labels and its ``speed.json`` record."""

    method: str
    label: str
    config_file: str
    record: dict[str, Any]


def published_counterpart(method: str, dataset: str | None) -> PublishedEfficiency | None:
    """The published efficiency row a run of a preset compares to (None if none): that of the
    installed method (``Method.published``) whose name the run's name starts with
    (``two_stage_loop``: ``two_stage``), the longest such name."""
    owners = sorted((m for m in list_methods() if method.startswith(m.name)),
                    key=lambda m: len(m.name), reverse=True)
    if not owners or owners[0].published is None:
        return None
    return next((e for e in PUBLISHED_EFFICIENCY
                 if e.method == owners[0].published and e.dataset == dataset), None)


def _gflops(run: PresetRun, runs: Sequence[PresetRun]) -> tuple[float | None, str | None]:
    """The run's GFLOPs, or those of the first run of the same config and head that counted
    them (e.g. the two-stage loop run: the same network and crops as the batched run)."""
    if run.record.get("gflops") is not None:
        return run.record["gflops"], None
    for other in runs:
        if (other.config_file == run.config_file and other.record.get("gflops") is not None
                and other.record.get("method") == run.record.get("method")):
            return other.record["gflops"], other.method
    return None, None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def compare(runs: Sequence[PresetRun], baseline: str | None, dataset: str | None,
            name: str = "", description: str = "") -> dict[str, Any]:
    """Our figures beside the published ones, and the speed-ups over the baseline.

    Args:
        runs: the preset's runs (with their ``speed.json`` records), in spec order.
        baseline: the baseline method; speed-ups are over every run of its config file (the
            two-stage crops batched and in a loop).
        dataset: the published-dataset key of the vocabulary (``voc``, ``coco_stuff``).
        name, description: the preset's, for the table's heading.
    """
    base_config = next((r.config_file for r in runs if r.method == baseline), None)
    references = [r for r in runs if r.config_file == base_config]
    floor = next((r for r in runs if r.method == FLOOR_METHOD), None)
    rows = []
    for run in runs:
        r = run.record
        gflops, gflops_from = _gflops(run, runs)
        pub = published_counterpart(run.method, dataset)
        rows.append({
            "name": run.method, "label": run.label, "fps": r["fps"],
            "fps_repeats": r.get("repeats", []), "latency_ms": r["latency_ms"]["mean"],
            "cpu_time_ms": r.get("cpu_time_ms"), "gflops": gflops, "gflops_from": gflops_from,
            "flops_uncounted_ops": r.get("flops_uncounted_ops", {}),
            "learnable_params_m": r["params"]["learnable"] / 1e6,
            "total_params_m": r["params"]["total"] / 1e6,
            "peak_memory_mb": r.get("peak_memory_mb"), "memory_kind": r.get("memory_kind"),
            "breakdown_ms": r.get("breakdown_ms", {}),
            "published": {"label": pub.method if pub else None, "fps": pub.fps if pub else None,
                          "gflops": pub.gflops if pub else None,
                          "learnable_params_m": pub.learnable_params_m if pub else None,
                          "source": pub.source if pub else None},
            "gflops_vs_published": (gflops / pub.gflops - 1 if gflops and pub else None),
            "latency_over_floor": (_ratio(r["latency_ms"]["mean"],
                                          floor.record["latency_ms"]["mean"])
                                   if floor is not None and run is not floor else None),
        })
    by_name = {row["name"]: row for row in rows}
    ratios = []
    for row in rows:
        if row["name"] == FLOOR_METHOD:
            continue
        for ref in references:
            slow = by_name[ref.method]
            if slow is row:
                continue
            pf, ps = row["published"], slow["published"]
            ratios.append({
                "label": f"{row['label']} / {slow['label']}",
                "fast": row["name"], "slow": slow["name"],
                "fps_ratio": _ratio(row["fps"], slow["fps"]),
                "fps_ratio_published": _ratio(pf["fps"], ps["fps"]),
                "cpu_time_ratio": _ratio(slow["cpu_time_ms"], row["cpu_time_ms"]),
                "gflops_ratio": _ratio(slow["gflops"], row["gflops"]),
                "gflops_ratio_published": _ratio(ps["gflops"], pf["gflops"]),
            })
    first = runs[0].record["protocol"]
    sources = sorted({row["published"]["source"] for row in rows if row["published"]["source"]})
    return {
        "preset": name, "description": description, "device": first["device"],
        "device_name": first.get("device_name", first["device"]),
        "precision": first["precision"],
        "input_size": first["input_size"], "vocabulary_size": first.get("vocabulary_size"),
        "iterations": {k: first.get(k) for k in ("warmup", "iters", "repeats")},
        "published_hardware": PUBLISHED_HARDWARE, "published_sources": sources,
        "rows": rows, "ratios": ratios,
    }


def _num(value: float | None, fmt: str = ".1f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{suffix}"


def format_comparison(comparison: dict[str, Any]) -> str:
    """The comparison as Markdown tables (ours beside published)."""
    hw = comparison["published_hardware"]
    size = "x".join(str(s) for s in comparison["input_size"])
    it = comparison["iterations"]
    lines = [
        f"Speed preset {comparison['preset']}: ours on {comparison['device_name']} "
        f"({comparison['precision']}, {size}, batch 1, {comparison['vocabulary_size']} classes, "
        f"warm-up {it['warmup']}, {it['repeats']} x {it['iters']} timed calls); published on "
        f"{hw}.",
        "",
        f"| method | FPS ours | FPS {hw} | latency ms | GFLOPs ours | GFLOPs published | "
        "learnable params M (ours / published) | total params M | peak memory MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in comparison["rows"]:
        pub = row["published"]
        published_as = f" ({pub['label']})" if pub["label"] else ""
        lines.append(
            f"| {row['label']} | {_num(row['fps'], '.3g')} | {_num(pub['fps'])}{published_as} | "
            f"{_num(row['latency_ms'], '.0f')} | {_num(row['gflops'])}"
            f"{' (as ' + row['gflops_from'] + ')' if row['gflops_from'] else ''} | "
            f"{_num(pub['gflops'])} | {_num(row['learnable_params_m'])} / "
            f"{_num(pub['learnable_params_m'])} | {_num(row['total_params_m'])} | "
            f"{_num(row['peak_memory_mb'], '.0f')} ({row['memory_kind']}) |")
    lines += ["", "| speed-up | FPS ours | FPS published | CPU-time ours | GFLOPs ours | "
              "GFLOPs published |", "|---|---|---|---|---|---|"]
    for r in comparison["ratios"]:
        lines.append(
            f"| {r['label']} | {_num(r['fps_ratio'], '.1f', 'x')} | "
            f"{_num(r['fps_ratio_published'], '.1f', 'x')} | "
            f"{_num(r['cpu_time_ratio'], '.1f', 'x')} | {_num(r['gflops_ratio'], '.1f', 'x')} | "
            f"{_num(r['gflops_ratio_published'], '.1f', 'x')} |")
    floors = [f"{row['label']} {row['latency_over_floor']:.2f}x" for row in comparison["rows"]
              if row["latency_over_floor"] is not None]
    if floors:
        lines += ["", "Latency over the encoder-alone floor: " + ", ".join(floors) + "."]
    lines += ["", "Time per stage (ms per image):"]
    for row in comparison["rows"]:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in row["breakdown_ms"].items())
        lines.append(f"- {row['label']}: {stages or 'no stages marked'}")
    lines += ["", "Speed-up A / B: FPS of A / FPS of B (= latency of B / latency of A); GFLOPs "
              "of B / of A; CPU time per image of B / of A (less disturbed by other load on a "
              "shared CPU).", "Published: " + "; ".join(comparison["published_sources"]) + "."]
    return "\n".join(lines)
