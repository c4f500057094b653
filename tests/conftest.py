"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread (restored afterwards): tiny models run fastest and with the most
    stable latencies that way on a shared 2-core machine, where a descheduled second thread
    adds tens of milliseconds. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    """A datasets root holding a toy world of 8 train + 4 val images, registered in this
    process as ``engine_test_train`` / ``engine_test_val``: one per session, shared by the
    engine's and the methods' tests (tests/integrations and the two-stage CLI tests have their
    own)."""
    import zsseg_bench.data.datasets  # noqa: F401  (registers the built-in datasets)
    from tests.engine.helpers import NUM_TRAIN, NUM_VAL, PREFIX
    from zsseg_bench.data.datasets.synthetic import register_all_synthetic
    from zsseg_bench.data.synthetic import prepare_synthetic

    root = tmp_path_factory.mktemp("datasets")
    prepare_synthetic(str(root), num_train=NUM_TRAIN, num_val=NUM_VAL)
    register_all_synthetic(str(root), prefix=PREFIX, num_train=NUM_TRAIN, num_val=NUM_VAL)
    return root


@pytest.fixture(autouse=True)
def _fresh_suite_logger() -> Iterator[None]:
    """Every test starts with the ``zsseg_bench`` logger as a new process has it (no handlers):
    a command run by an earlier test would otherwise log into this test's captured output, and
    its run directories' log files would stay open for the whole session."""
    yield
    logger = logging.getLogger("zsseg_bench")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
