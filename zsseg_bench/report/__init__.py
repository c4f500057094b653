"""Reports: collect run directories into results.csv, aggregate seeds, write table.md/.tex and
plots (accuracy vs speed, per-class IoU, speed breakdown).

Public API: :func:`collect_results`, :func:`aggregate_seeds`, :func:`write_report`.
"""

from zsseg_bench.report.aggregate import aggregate_seeds
from zsseg_bench.report.report import ReportOutputs, write_report
from zsseg_bench.report.results import CollectedResults, ResultFileError, collect_results

__all__ = ["CollectedResults", "ReportOutputs", "ResultFileError", "aggregate_seeds",
           "collect_results", "write_report"]
