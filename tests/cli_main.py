"""The ``zsseg-bench`` CLI with the test-only head registered, for subprocess tests (see
tests/cli_helpers.py): ``python tests/cli_main.py train ...`` or
``torchrun ... tests/cli_main.py train ...``. The real methods are there as in the CLI."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.contract_head  # noqa: E402,F401  (registers PixelContractHead)
from zsseg_bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
