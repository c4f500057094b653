"""``python -m zsseg_bench`` is the ``zsseg-bench`` command (also what torchrun launches)."""

from zsseg_bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
