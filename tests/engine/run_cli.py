"""The ``zsseg-bench`` CLI with the test-only head registered, for subprocess tests:
``python tests/engine/run_cli.py train ...`` or ``torchrun ... tests/engine/run_cli.py train ...``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tests.contract_head  # noqa: E402,F401  (registers PixelContractHead)
from zsseg_bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
