"""A stand-in for ``zsseg-bench train`` / ``speed`` in sweep tests (test-only).

Usage: ``fake_stage.py {train|speed} --config-file C --output-dir D [KEY VALUE ...]``.
Reads ``FAKE.*`` keys from the YAML config, overridable on the command line:

- ``FAKE.QUALITY`` (float): the seen mIoU; unseen = QUALITY / 2 + SEED.
- ``FAKE.FPS`` (float): frames per second written to speed.json.
- ``FAKE.CRASH`` (bool): exit 3 without writing anything.
- ``FAKE.CRASH_ONCE`` (path): crash if the file does not exist (and create it).
- ``FAKE.SLEEP`` (float): seconds to sleep before writing.
- ``FAKE.NO_RESULT`` (bool): exit 0 without writing the result file.
- ``FAKE.COUNTER`` (path): append ``<stage> <output dir> <start> <end>`` to this file on every
  call (times from ``time.time()``; the line is written when the stage ends).
- ``FAKE.WAIT_WHILE`` (path): wait (up to 60 s) while this file exists.
"""

import ast
import json
import os
import sys
import time

import yaml


def _value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def main(argv):
    stage = argv[0]
    args = argv[1:]
    config_file = args[args.index("--config-file") + 1]
    output_dir = args[args.index("--output-dir") + 1]
    rest = [a for i, a in enumerate(args) if a not in ("--config-file", "--output-dir")
            and (i == 0 or args[i - 1] not in ("--config-file", "--output-dir"))]
    with open(config_file) as f:
        cfg = yaml.safe_load(f) or {}
    opts = {"SEED": 0, **{f"FAKE.{k}": v for k, v in (cfg.get("FAKE") or {}).items()}}
    opts.update({k: _value(v) for k, v in zip(rest[0::2], rest[1::2])})
    start = time.time()
    print(f"fake {stage}: {opts}", flush=True)
    time.sleep(float(opts.get("FAKE.SLEEP", 0)))
    wait = opts.get("FAKE.WAIT_WHILE")
    while wait and os.path.exists(wait) and time.time() - start < 60:
        time.sleep(0.05)
    if opts.get("FAKE.COUNTER"):
        with open(opts["FAKE.COUNTER"], "a") as f:
            f.write(f"{stage} {output_dir} {start} {time.time()}\n")
    once = opts.get("FAKE.CRASH_ONCE")
    if opts.get("FAKE.CRASH") or (once and not os.path.exists(once)):
        if once:
            open(once, "w").close()
        print("deliberate crash", flush=True)
        return 3
    if opts.get("FAKE.NO_RESULT"):
        return 0
    seed = int(opts["SEED"])
    quality = float(opts.get("FAKE.QUALITY", 40.0))
    if stage == "train":
        s, u = quality, quality / 2 + seed
        h = 2 * s * u / (s + u)
        _write_json(os.path.join(output_dir, "metrics.json"), {
            "iteration": 10, "wall_time_s": 1.0, "dataset": "fake_val",
            "seen_classes": ["red circle", "blue square"], "unseen_classes": ["red square"],
            "metrics": {"mIoU": (2 * s + u) / 3, "mIoU-seen": s, "mIoU-unseen": u, "hIoU": h,
                        "pAcc": 80.0 + seed, "mAcc": 50.0,
                        "IoU-red circle": s, "IoU-blue square": s, "IoU-red square": u}})
    else:
        fps = float(opts.get("FAKE.FPS", 10.0)) + seed
        _write_json(os.path.join(output_dir, "speed.json"), {
            "fps": fps, "latency_ms": {"mean": 1000 / fps, "median": 1000 / fps,
                                       "p90": 1000 / fps, "std": 0.0},
            "gflops": 1.5, "params": {"total": 2_000_000, "learnable": 500_000},
            "peak_memory_mb": 10.0, "breakdown_ms": {"backbone": 600 / fps, "head": 400 / fps},
            "protocol": {"device": "cpu", "precision": "fp32", "input_size": [64, 64],
                         "mode": "whole", "batch_size": 1, "vocabulary_size": 3}})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
