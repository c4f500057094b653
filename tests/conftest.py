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
