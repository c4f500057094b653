#!/usr/bin/env python
"""Reproduces ZegCLIP's "about 5x faster than two-stage" claim on the device at hand.

Runs ZegCLIP and the two-stage pipeline (crops batched, and crops in a loop) at 512x512 with
the PASCAL VOC vocabulary, CLIP ViT-B/16, random weights (no weight file or dataset needed),
plus CLIP's encoder alone (the floor of one-stage methods), each with the suite's one speed
protocol; then prints our FPS, GFLOPs and parameters beside the published ones (9.0 vs 1.7
FPS on a GTX 1080Ti = 5.3x; 110.4 vs 1829.3 GFLOPs) with our ratios.

Same as ``zsseg-bench speed-preset paper-voc`` (the speed-only sweep
``configs/sweeps/paper_voc.yaml``; re-running resumes); every option of ``zsseg-bench speed-preset``
is accepted (e.g. ``--device cuda --precision fp16``, ``--iters 20``, ``--output-dir DIR``).
On a 2-core CPU one two-stage call takes minutes, so the CPU default is no warm-up and one
timed call per method (``PAPER_SCALE_ITERATIONS`` in zsseg_bench/speed/presets.py).

Usage::

    python scripts/reproduce_speedup.py [--device cuda] [--precision fp16] [--output-dir DIR]
"""

from __future__ import annotations

import sys

from zsseg_bench.cli import main

if __name__ == "__main__":
    sys.exit(main(["speed-preset", "paper-voc", *sys.argv[1:]]))
