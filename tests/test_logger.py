"""The suite's logger follows ``sys.stderr`` as it is when a record is emitted."""

from __future__ import annotations

import io
import logging
import sys

from zsseg_bench.utils.logger import setup_logger


def test_records_go_to_the_current_stderr_after_the_first_one_is_closed(monkeypatch):
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logger = setup_logger()
    first.close()  # e.g. the captured stream of an earlier command or test
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    errors = []
    monkeypatch.setattr(logging, "raiseExceptions", True)
    monkeypatch.setattr(logging.Handler, "handleError", lambda self, record: errors.append(record))
    logger.warning("still heard")
    assert not errors and "still heard" in second.getvalue()
