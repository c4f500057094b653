"""``zsseg-bench`` with a small private toy world registered, for the end-to-end test:
``ZEGCLIP_TEST_ROOT=DIR python tests/projects/zegclip/run_cli.py train ...`` sees the datasets
``zegclip_test_train`` / ``zegclip_test_val`` rendered under DIR (by the test, beforehand)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import zsseg_bench.data.datasets  # noqa: E402,F401  (built-in registrations)
from zsseg_bench.cli import main  # noqa: E402
from zsseg_bench.data.datasets.synthetic import register_all_synthetic  # noqa: E402

PREFIX = "zegclip_test"

if __name__ == "__main__":
    register_all_synthetic(os.environ["ZEGCLIP_TEST_ROOT"], prefix=PREFIX)
    sys.exit(main())
