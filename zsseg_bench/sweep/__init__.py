"""Sweeps: a YAML grid of runs (methods x datasets x settings x seeds x overrides), launched
locally or through submitit, resumable (finished runs are skipped, failed ones retried).

Public API: :func:`load_sweep_spec`, :class:`SweepSpec`, :class:`Cell`, :func:`run_sweep`
(with :class:`SweepOptions`), :class:`SweepSummary`, :func:`run_cell`, :class:`RunStatus`. The
layout of a sweep directory is described in :mod:`zsseg_bench.utils.sweep_layout`.
"""

from zsseg_bench.sweep.runner import run_cell
from zsseg_bench.sweep.spec import Cell, SweepSpec, SweepSpecError, load_sweep_spec
from zsseg_bench.sweep.status import RunState, RunStatus
from zsseg_bench.sweep.sweep import SweepOptions, SweepSummary, run_sweep

__all__ = ["Cell", "RunState", "RunStatus", "SweepOptions", "SweepSpec", "SweepSpecError",
           "SweepSummary", "load_sweep_spec", "run_cell", "run_sweep"]
