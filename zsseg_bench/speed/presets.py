"""Preset comparisons: several speed runs under one protocol, tabled beside published figures.

A preset is a YAML file in ``zsseg_bench/speed/presets/`` (see ``paper_voc.yaml``): the
runs (config + overrides), the arguments they share, default iterations per device type, the
published rows with their source, and the ratios to report. ``zsseg-bench speed --preset NAME``
(or ``scripts/reproduce_speedup.py``) runs each run as its own ``zsseg-bench speed`` process
(fresh memory peak, no state shared between methods), then writes ``comparison.json`` and
``comparison.md`` into the output directory and prints the table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from zsseg_bench.utils.errors import UserError

PRESET_DIR = Path(__file__).resolve().parent / "presets"
PRESETS = {"paper-voc": PRESET_DIR / "paper_voc.yaml"}
_REPO_ROOT = Path(__file__).resolve().parents[2]
_TOP_KEYS = {"name", "description", "input_size", "args", "iterations", "published", "runs",
             "ratios"}
_RUN_KEYS = {"name", "label", "published", "config", "opts", "flops_from"}


def load_preset(path: str | Path) -> dict[str, Any]:
    """Reads and checks a preset file; raises :class:`UserError` naming the bad key."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"cannot read speed preset {path}: {e}") from e
    if not isinstance(spec, dict):
        raise UserError(f"speed preset {path} must be a mapping")
    unknown = set(spec) - _TOP_KEYS
    if unknown:
        raise UserError(f"speed preset {path}: unknown keys {sorted(unknown)}; valid: "
                        f"{sorted(_TOP_KEYS)}")
    names = set()
    for run in spec.get("runs", []):
        bad = set(run) - _RUN_KEYS
        if bad or "name" not in run or "config" not in run:
            raise UserError(f"speed preset {path}: run {run} needs name and config and may have "
                            f"only {sorted(_RUN_KEYS)}")
        names.add(run["name"])
    published = spec.get("published", {}).get("rows", {})
    for run in spec.get("runs", []):
        if run.get("published") and run["published"] not in published:
            raise UserError(f"speed preset {path}: run {run['name']} refers to unknown "
                            f"published row {run['published']!r}")
        if run.get("flops_from") and run["flops_from"] not in names:
            raise UserError(f"speed preset {path}: run {run['name']}: flops_from "
                            f"{run['flops_from']!r} is not a run")
    for ratio in spec.get("ratios", []):
        if ratio.get("fast") not in names or ratio.get("slow") not in names:
            raise UserError(f"speed preset {path}: ratio {ratio} must name two runs")
    return spec


def resolve_config(path: str) -> Path:
    """A run's config file: as given (absolute or relative to the working directory), else
    relative to the suite's checkout."""
    for candidate in (Path(path), _REPO_ROOT / path):
        if candidate.is_file():
            return candidate
    raise UserError(f"config file of the speed preset not found: {path} (looked in the working "
                    f"directory and in {_REPO_ROOT}); run from the suite's checkout")


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The speed options of the command line that every run of the preset gets."""
    out: list[str] = []
    for flag in ("device", "precision", "warmup", "iters", "repeats", "num_images", "threads",
                 "sdpa", "mode", "dataset", "compile"):
        value = getattr(args, flag, None)
        if value is not None:
            out += [f"--{flag.replace('_', '-')}", str(value)]
    for flag in ("channels_last", "cuda_graphs", "no_flops", "no_breakdown"):
        if getattr(args, flag, False):
            out.append(f"--{flag.replace('_', '-')}")
    return out


def run_commands(spec: dict[str, Any], args: argparse.Namespace, output_dir: Path
                 ) -> dict[str, list[str]]:
    """The ``zsseg-bench speed`` command line of every run (name -> argv)."""
    from zsseg_bench.modeling.build import resolve_device

    device = args.device or resolve_device("auto")
    iterations = spec.get("iterations", {}).get("cuda" if device.startswith("cuda") else "cpu", {})
    size = args.input_size or spec.get("input_size")
    commands = {}
    for run in spec["runs"]:
        cmd = [sys.executable, "-m", "zsseg_bench", "speed",
               "--config-file", str(resolve_config(run["config"])),
               "--output-dir", str(output_dir / run["name"]), *map(str, spec.get("args", []))]
        if size:
            cmd += ["--input-size", str(size[0]), str(size[1])]
        for key in ("warmup", "iters", "repeats"):
            if getattr(args, key, None) is None and key in iterations:
                cmd += [f"--{key}", str(iterations[key])]
        cmd += _forwarded(args)
        if run.get("flops_from") and "--no-flops" not in cmd:
            cmd.append("--no-flops")
        cmd += [str(x) for x in run.get("opts", [])] + list(args.opts or [])
        commands[run["name"]] = cmd
    return commands


def compare(spec: dict[str, Any], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Our figures beside the published ones, and the ratios the preset asks for.

    Args:
        spec: the preset.
        results: run name -> its ``speed.json`` record.
    """
    published = spec.get("published", {}).get("rows", {})
    rows = []
    for run in spec["runs"]:
        r = results[run["name"]]
        flops_source = results[run["flops_from"]] if run.get("flops_from") else r
        pub = published.get(run.get("published"), {})
        gflops = flops_source.get("gflops")
        rows.append({
            "name": run["name"],
            "label": run.get("label", run["name"]),
            "fps": r["fps"],
            "fps_repeats": r["repeats"],
            "latency_ms": r["latency_ms"]["mean"],
            "cpu_time_ms": r.get("cpu_time_ms"),
            "gflops": gflops,
            "gflops_from": run.get("flops_from"),
            "flops_uncounted_ops": flops_source.get("flops_uncounted_ops", {}),
            "learnable_params_m": r["params"]["learnable"] / 1e6,
            "total_params_m": r["params"]["total"] / 1e6,
            "peak_memory_mb": r["peak_memory_mb"],
            "memory_kind": r["memory_kind"],
            "breakdown_ms": r.get("breakdown_ms", {}),
            "published": {"label": pub.get("label"), "fps": pub.get("fps"),
                          "gflops": pub.get("gflops"),
                          "learnable_params_m": pub.get("learnable_params_m")},
            "gflops_vs_published": (gflops / pub["gflops"] - 1
                                    if gflops is not None and pub.get("gflops") else None),
        })
    by_name = {row["name"]: row for row in rows}
    ratios = []
    for ratio in spec.get("ratios", []):
        fast, slow = by_name[ratio["fast"]], by_name[ratio["slow"]]
        pf, ps = fast["published"], slow["published"]
        ratios.append({
            "label": ratio.get("label", f"{ratio['fast']} / {ratio['slow']}"),
            "fps_ratio": fast["fps"] / slow["fps"],
            "fps_ratio_published": (pf["fps"] / ps["fps"] if pf["fps"] and ps["fps"] else None),
            "cpu_time_ratio": (slow["cpu_time_ms"] / fast["cpu_time_ms"]
                               if fast["cpu_time_ms"] and slow["cpu_time_ms"] else None),
            "gflops_ratio": (slow["gflops"] / fast["gflops"]
                             if fast["gflops"] and slow["gflops"] else None),
            "gflops_ratio_published": (ps["gflops"] / pf["gflops"]
                                       if pf["gflops"] and ps["gflops"] else None),
        })
    first = results[spec["runs"][0]["name"]]["protocol"]
    return {
        "preset": spec.get("name"),
        "description": spec.get("description"),
        "device": first["device"],
        "device_name": first["device_name"],
        "precision": first["precision"],
        "input_size": first["input_size"],
        "published_hardware": spec.get("published", {}).get("hardware"),
        "rows": rows,
        "ratios": ratios,
    }


def _num(value: float | None, fmt: str = ".1f", suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{suffix}"


def format_comparison(comparison: dict[str, Any]) -> str:
    """The comparison as Markdown tables (ours beside published)."""
    hw = comparison["published_hardware"] or "published"
    size = "x".join(str(s) for s in comparison["input_size"])
    lines = [
        f"Speed preset {comparison['preset']}: ours on {comparison['device_name']} "
        f"({comparison['precision']}, {size}, batch 1); published on {hw}.",
        "",
        f"| method | FPS ours | FPS {hw} | latency ms | GFLOPs ours | GFLOPs published | "
        "learnable params M (ours / published) | total params M | peak memory MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in comparison["rows"]:
        pub = row["published"]
        lines.append(
            f"| {row['label']} | {_num(row['fps'], '.3g')} | {_num(pub['fps'])} | "
            f"{_num(row['latency_ms'], '.0f')} | {_num(row['gflops'])}"
            f"{' (same as ' + row['gflops_from'] + ')' if row['gflops_from'] else ''} | "
            f"{_num(pub['gflops'])} | {_num(row['learnable_params_m'])} / "
            f"{_num(pub['learnable_params_m'])} | {_num(row['total_params_m'])} | "
            f"{_num(row['peak_memory_mb'], '.0f')} ({row['memory_kind']}) |")
    lines += ["", "| ratio | FPS ours | FPS published | CPU-time ours | GFLOPs ours | "
              "GFLOPs published |", "|---|---|---|---|---|---|"]
    for r in comparison["ratios"]:
        lines.append(
            f"| {r['label']} | {_num(r['fps_ratio'], '.1f', 'x')} | "
            f"{_num(r['fps_ratio_published'], '.1f', 'x')} | "
            f"{_num(r['cpu_time_ratio'], '.1f', 'x')} | {_num(r['gflops_ratio'], '.1f', 'x')} | "
            f"{_num(r['gflops_ratio_published'], '.1f', 'x')} |")
    lines += ["", "Time per stage (ms per image):"]
    for row in comparison["rows"]:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in row["breakdown_ms"].items())
        lines.append(f"- {row['label']}: {stages or 'no stages marked'}")
    lines.append("")
    lines.append("Ratios A / B: FPS ratio = FPS of A / FPS of B (= latency of B / latency of A); "
                 "GFLOPs ratio = GFLOPs of B / GFLOPs of A; CPU-time ratio = process CPU time "
                 "per image of B / of A (less disturbed by other load on a shared CPU).")
    return "\n".join(lines)


def _subprocess_runner(cmd: list[str]) -> int:
    return subprocess.run(cmd, check=False).returncode


def run_preset_spec(spec: dict[str, Any], args: argparse.Namespace, output_dir: str | Path,
                    runner: Callable[[list[str]], int] | None = None) -> dict[str, Any]:
    """Runs every run of ``spec`` as a ``zsseg-bench speed`` process and compares them.

    Args:
        spec: the preset (:func:`load_preset`).
        args: the parsed ``zsseg-bench speed`` options forwarded to every run.
        output_dir: one sub-directory per run, plus ``comparison.json`` / ``comparison.md``.
        runner: runs one command line and returns its exit code (default: a subprocess;
            tests run the commands in-process).

    Returns:
        The comparison (also written to ``comparison.json`` / ``comparison.md``).
    """
    from zsseg_bench.utils.file_io import atomic_write_json, atomic_write_text
    from zsseg_bench.utils.run_dir import SPEED_FILE

    output_dir = Path(output_dir)
    commands = run_commands(spec, args, output_dir)
    results = {}
    for name, cmd in commands.items():
        print(f"== speed preset {spec.get('name')}: {name}\n   {' '.join(cmd)}", flush=True)
        code = (runner or _subprocess_runner)(cmd)
        if code != 0:
            raise UserError(f"speed preset run '{name}' failed (exit code {code}, "
                            f"its output is above); command: {' '.join(cmd)}")
        results[name] = json.loads((output_dir / name / SPEED_FILE).read_text())
    comparison = compare(spec, results)
    table = format_comparison(comparison)
    atomic_write_json(output_dir / "comparison.json", comparison)
    atomic_write_text(output_dir / "comparison.md", table + "\n")
    print(table)
    print(f"wrote {output_dir / 'comparison.json'} and comparison.md")
    return comparison


def run_preset(name: str, args: argparse.Namespace) -> int:
    """``zsseg-bench speed --preset NAME``; output in ``--output-dir`` (default
    ``./output/speed_<name>``)."""
    if name not in PRESETS:
        raise UserError(f"unknown speed preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    spec = load_preset(PRESETS[name])
    output_dir = args.output_dir or str(Path("output") / f"speed_{name.replace('-', '_')}")
    run_preset_spec(spec, args, output_dir)
    return 0
