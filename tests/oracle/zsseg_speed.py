"""Speed of the suite's two-stage model beside the official zsseg.baseline code: the same model
(the VOC paper config, random weights shared through the official checkpoint), the same inputs,
the same number of threads, in one run.

    python -m tests.oracle.zsseg_speed --python PREFIX/bin/python [--size 512 512] [--images 2]
        [--proposals 20] [--threads 1] [--rounds 3] [--steps 3]

Each round runs the official script (a fresh process) and then the suite, one after the other;
each side times ``--steps`` warm inferences of the batch (proposals, crops, CLIP, fusion; the
class texts cached) and ``--steps`` warm training steps (forward and backward of the losses, no
optimizer step). Printed: the median wall and CPU seconds of each side over all rounds and the
ratio official / suite (above 1: the suite is faster). CPU time (``time.process_time``) is the
steadier figure on a shared machine. The number of CLIP crops is set by ``--proposals``
(non-empty proposals per image; ``zsseg_official.py``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from .zsseg_suite import (
    build_suite_model,
    finish,
    run_suite,
    start_official,
    write_clip,
    write_inputs,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--python", required=True, help="the zsseg oracle environment's python")
    p.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--proposals", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    times: dict[str, dict[str, list[tuple[float, float]]]] = {
        side: {"inference": [], "train_step": []} for side in ("official", "suite")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_clip(work / "clip.pth")
        shapes = (tuple(args.size),) * args.images
        inputs = write_inputs(work / "inputs.pt", list(range(20)), [0, 4, 14, 16], shapes, shapes)
        model = None
        for _ in range(args.rounds):
            proc = start_official(args.python, "voc", work / "clip.pth", work / "inputs.pt", work,
                                  ["--time", str(args.steps), "--proposals", str(args.proposals)],
                                  threads=args.threads)
            for key, values in finish(proc, work / "official.pt")["time_s"].items():
                if key in times["official"]:
                    times["official"][key] += values
            if model is None:
                model = build_suite_model("voc/two_stage.yaml", work / "clip.pth",
                                          work / "official_model.pth", [])
            run = run_suite(model, inputs, "voc_zs_val", train=True, timed=args.steps)
            for key, values in run.time_s.items():
                times["suite"][key] += values
    print(f"two-stage, VOC config, {args.images} x {args.size[0]}x{args.size[1]}, about "
          f"{args.proposals} crops per image, {args.threads} thread(s), "
          f"{args.rounds} x {args.steps} steps per side (medians)")
    print(f"{'':<11} {'suite wall':>10} {'official':>9} {'ratio':>6}   "
          f"{'suite CPU':>9} {'official':>9} {'ratio':>6}")
    for key in ("inference", "train_step"):
        row = [statistics.median(t[i] for t in times[side][key])
               for i in (0, 1) for side in ("suite", "official")]
        print(f"{key:<11} {row[0]:10.2f} {row[1]:9.2f} {row[1] / row[0]:6.2f}   "
              f"{row[2]:9.2f} {row[3]:9.2f} {row[3] / row[2]:6.2f}")


if __name__ == "__main__":
    main()
