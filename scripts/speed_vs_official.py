"""Speed of the suite beside the official implementation: same weights' shapes, same input, same
threads, same machine, one run.

    export ZSSEG_ORACLE_ZEGCLIP_PYTHON=$PWD/.oracle/zegclip/bin/python   # tests/oracle/README.md
    python scripts/speed_vs_official.py --method zegclip --family voc --threads 1
    python scripts/speed_vs_official.py --method zegclip --family voc --device cuda

The official model runs in its own environment (the oracle of ``tests/oracle``), as a timing
server (``tests/oracle/<method>_official.py`` in ``serve`` mode); this process builds the suite's
model from the paper config. Both get a random CLIP of the real architecture in OpenAI's file
format and the same text embeddings. The calls alternate, suite then official then official
then suite ..., so that both see the same machine load; each call is timed with the device
synchronised around it, after ``--warmup`` untimed calls of each.

- inference: one image of ``--size`` (default 512 x 683, a VOC val image at the test scale:
  two 512 windows of the paper's slide inference). Suite: ``model([{"image": uint8}])``
  (normalisation and the resize to the image size included). Official: ``slide_inference`` of
  the normalised image (its data pipeline normalises outside the model).
- training step (unless ``--no-train``): a 512 x 512 crop with labels, forward, backward and
  one AdamW step, dropout on as in training.

Printed: the median (and min) wall seconds of each side and the speed ratio suite / official
(= official time / suite time: above 1 the suite is faster), and the same for the CPU seconds
of each process (steadier on a shared machine; equal to wall time on an idle one with one
thread). ``--json FILE`` keeps them.

A method plugs in with an entry of :data:`METHODS`: its oracle's name, its official-side script
(which must answer the ``serve`` protocol: print ``ready``, then one JSON line
``{"infer": seconds}`` / ``{"train": seconds}`` per ``infer`` / ``train`` line on stdin, stop
at ``quit``) and per family the official and the suite config.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class Method:
    oracle: str  # ZSSEG_ORACLE_<ORACLE>_PYTHON
    script: str  # under tests/oracle/
    families: dict[str, tuple[str, str]]  # family -> (official config, suite config)


METHODS = {
    "zegclip": Method(
        "zegclip", "zegclip_official.py", {
            "voc": ("configs/voc12/vpt_seg_zero_vit-b_512x512_20k_12_10.py",
                    "configs/voc/zegclip_vitb16_512x512_20k_inductive.yaml"),
            "coco": ("configs/coco/vpt_seg_zero_vit-b_512x512_80k_12_100_multi.py",
                     "configs/coco_stuff/zegclip_vitb16_512x512_80k_inductive.yaml"),
        }),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=sorted(METHODS), default="zegclip")
    parser.add_argument("--family", default="voc", help="paper config family (voc, coco)")
    parser.add_argument("--size", type=int, nargs=2, default=(512, 683), metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of both sides")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-train", action="store_true", help="time inference only")
    parser.add_argument("--workdir", default=None, help="keep the files here (default: temp)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the figures here")
    return parser.parse_args(argv)


class Official:
    """The official model as a timing server in its own environment."""

    def __init__(self, python: str, script: Path, spec: dict, workdir: Path, threads: int):
        spec_file = workdir / "serve.json"
        spec_file.write_text(json.dumps(spec))
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        self.proc = subprocess.Popen([python, str(script), str(spec_file)], cwd=workdir, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     stderr=open(workdir / "official.log", "w"))  # noqa: SIM115
        for line in self.proc.stdout:
            if line.strip() == "ready":
                return
        raise SystemExit(f"the official side did not start: see {workdir / 'official.log'}")

    def time(self, call: str) -> tuple[float, float]:
        self.proc.stdin.write(call + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                answer = json.loads(line)
                return float(answer[call]), float(answer["cpu"])
        raise SystemExit("the official side stopped (see official.log in the work directory)")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


class Suite:
    """The suite's model of the paper config, timed the way ``zsseg-bench speed`` calls it."""

    def __init__(self, config: str, clip_file: Path, device: str):
        import zsseg_bench.data  # noqa: F401  (the datasets' metadata: the vocabulary)
        from zsseg_bench.config.command_line import setup_cfg
        from zsseg_bench.engine.checkpoint import build_model_with_weights

        self.cfg = setup_cfg(str(REPO / config), ["MODEL.CLIP.WEIGHTS", str(clip_file),
                                                  "MODEL.DEVICE", device])
        self.model, _ = build_model_with_weights(self.cfg, "")
        self.model.eval()
        self.device = device
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.01)

    def text_embeddings(self) -> torch.Tensor:
        return self.model.vocabulary(self.cfg.DATASETS.TEST[0], trainable_only=False).embeddings

    def prepare(self, inputs: dict) -> None:
        img = inputs["images"][0]
        self.batch = [{"image": img.permute(2, 0, 1).contiguous().to(self.device),
                       "height": img.shape[0], "width": img.shape[1]}]
        train = inputs["train_image"]
        label = inputs["train_label"].clone()
        unseen = self.model.vocabulary(self.cfg.DATASETS.TEST[0], trainable_only=False)
        label[torch.isin(label, unseen.class_ids[~unseen.is_seen.cpu()].cpu())] = 255
        self.train_batch = [{"image": train.permute(2, 0, 1).contiguous().to(self.device),
                             "sem_seg": label.to(self.device), "height": train.shape[0],
                             "width": train.shape[1]}]

    def _train_step(self) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        losses = self.model(self.train_batch)
        sum(losses.values()).backward()
        self.optimizer.step()
        self.model.eval()

    def time(self, call: str) -> tuple[float, float]:
        """(wall seconds, this process's CPU seconds) of one call."""
        sync = torch.cuda.synchronize if self.device.startswith("cuda") else (lambda: None)
        sync()
        start, cpu = time.perf_counter(), time.process_time()
        if call == "infer":
            with torch.no_grad():
                self.model(self.batch)
        else:
            self._train_step()
        sync()
        return time.perf_counter() - start, time.process_time() - cpu


def make_inputs(size: tuple[int, int], num_classes: int) -> dict:
    """A random image of ``size``, a 512 x 512 training crop with blocks of random labels."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    grid = torch.randint(0, num_classes, (1, 1, 8, 8), generator=g).float()
    return {
        "images": [torch.randint(0, 256, (*size, 3), dtype=torch.uint8, generator=g)],
        "train_image": torch.randint(0, 256, (512, 512, 3), dtype=torch.uint8, generator=g),
        "train_label": F.interpolate(grid, size=(512, 512), mode="nearest")[0, 0].long(),
    }


def alternate(suite: Suite, official: Official, call: str, warmup: int,
              repeats: int) -> dict[str, list[tuple[float, float]]]:
    """``warmup`` untimed then ``repeats`` timed calls of each side, alternating (ABBA)."""
    for _ in range(warmup):
        suite.time(call)
        official.time(call)
    times: dict[str, list[tuple[float, float]]] = {"suite": [], "official": []}
    for r in range(repeats):
        order = [("suite", suite), ("official", official)]
        for name, side in order if r % 2 == 0 else order[::-1]:
            times[name].append(side.time(call))
    return times


def summary(times: dict[str, list[tuple[float, float]]]) -> dict[str, float]:
    """Medians of wall and CPU seconds per side and their ratios official / suite (the speed
    ratio suite / official). On a shared machine the CPU seconds of a one-thread run are the
    steadier figure: a descheduled process loses wall time, not CPU time."""
    out: dict[str, float] = {}
    for side in ("suite", "official"):
        wall = [w for w, _ in times[side]]
        out[f"{side}_median_s"] = statistics.median(wall)
        out[f"{side}_min_s"] = min(wall)
        out[f"{side}_cpu_median_s"] = statistics.median(c for _, c in times[side])
    out["speed_ratio"] = out["official_median_s"] / out["suite_median_s"]
    out["cpu_speed_ratio"] = out["official_cpu_median_s"] / out["suite_cpu_median_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from tests.oracle.clip_file import write_random_openai_clip
    from tests.oracle.oracle import oracle_env_var

    args = parse_args(argv)
    method = METHODS[args.method]
    if args.family not in method.families:
        raise SystemExit(f"--family {args.family}: {args.method} has {sorted(method.families)}")
    python = os.environ.get(oracle_env_var(method.oracle), "")
    if not python:
        raise SystemExit(f"set {oracle_env_var(method.oracle)} to the official environment's "
                         "python (tests/oracle/README.md)")
    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="speed_vs_official_"))
    workdir.mkdir(parents=True, exist_ok=True)
    clip_file = workdir / "ViT-B-16.pt"
    if not clip_file.exists():
        write_random_openai_clip(clip_file)
    official_config, suite_config = method.families[args.family]
    suite = Suite(suite_config, clip_file, args.device)
    text = suite.text_embeddings().cpu()
    np.save(workdir / "text_embedding.npy", text.numpy())
    inputs = make_inputs(tuple(args.size), len(text))
    torch.save(inputs, workdir / "inputs.pt")
    suite.prepare(inputs)
    official = Official(python, REPO / "tests" / "oracle" / method.script, {
        "mode": "serve", "config": official_config, "clip": str(clip_file),
        "text_embedding": str(workdir / "text_embedding.npy"), "inputs": str(workdir / "inputs.pt"),
        "threads": args.threads, "device": args.device, "seed": 0}, workdir, args.threads)
    try:
        results = {"inference": summary(alternate(suite, official, "infer", args.warmup,
                                                   args.repeats))}
        if not args.no_train:
            results["train_step"] = summary(alternate(suite, official, "train", args.warmup,
                                                      args.repeats))
    finally:
        official.close()
    record = {"method": args.method, "family": args.family, "size": list(args.size),
              "threads": args.threads, "device": args.device, "repeats": args.repeats,
              "torch": torch.__version__, **results}
    print(f"{args.method} {args.family}, {args.size[0]}x{args.size[1]}, {args.device}, "
          f"{args.threads} thread(s), median of {args.repeats} alternating calls:")
    for name, r in results.items():
        print(f"  {name:<10} wall: suite {r['suite_median_s']:.3f} s (min "
              f"{r['suite_min_s']:.3f}), official {r['official_median_s']:.3f} s (min "
              f"{r['official_min_s']:.3f}), speed ratio suite/official {r['speed_ratio']:.3f}")
        print(f"  {'':<10} CPU:  suite {r['suite_cpu_median_s']:.3f} s, official "
              f"{r['official_cpu_median_s']:.3f} s, speed ratio suite/official "
              f"{r['cpu_speed_ratio']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
