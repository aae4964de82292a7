"""Stage 6: the synthesis report (tables as CSV and XLSX, report.md, report.html with charts, run manifest).

Notebooks and scripts explore a processed batch through `load_batch` and `build_report`."""

from pipeline.report.batch import Batch, load_batch, load_taxonomy
from pipeline.report.content import Report, Table, build_report
from pipeline.report.tables import ReconciliationError

__all__ = ["Batch", "ReconciliationError", "Report", "Table", "build_report", "load_batch", "load_taxonomy"]
