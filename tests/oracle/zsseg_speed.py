"""Speed of the suite's two-stage model beside the official zsseg.baseline code: the same model
(the VOC paper config, random weights shared through the official checkpoint), the same inputs,
the same number of threads, one after the other in one run.

    python -m tests.oracle.zsseg_speed --python PREFIX/bin/python [--size 512 512] [--images 2]
        [--proposals 20] [--threads 2]

Times one warm inference of the batch (proposals, crops, CLIP, fusion; the class texts cached)
and one warm training step (forward and backward of the losses, no optimizer step) on each side,
and prints them with the ratio official / suite (above 1: the suite is faster). The number of
CLIP crops is set by ``--proposals`` (non-empty proposals per image; ``zsseg_official.py``).
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_clip(work / "clip.pth")
        shapes = (tuple(args.size),) * args.images
        inputs = write_inputs(work / "inputs.pt", list(range(20)), [0, 4, 14, 16], shapes, shapes)
        proc = start_official(args.python, "voc", work / "clip.pth", work / "inputs.pt", work,
                              ["--time", "--proposals", str(args.proposals)],
                              threads=args.threads)
        official = finish(proc, work / "official.pt")["time_s"]
        model = build_suite_model("voc", work / "clip.pth", work / "official_model.pth", [])
        ours = run_suite(model, inputs, "voc_zs_val", train=True, timed=True).time_s
    print(f"two-stage, VOC config, {args.images} x {args.size[0]}x{args.size[1]}, "
          f"~{args.proposals} crops per image, {args.threads} threads")
    print(f"{'':<12} {'suite s':>9} {'official s':>11} {'official / suite':>17}")
    for key in ("inference", "train_step"):
        print(f"{key:<12} {ours[key]:9.2f} {official[key]:11.2f} {official[key] / ours[key]:17.2f}")


if __name__ == "__main__":
    main()
