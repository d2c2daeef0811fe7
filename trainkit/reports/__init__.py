"""What a person looks at: the history plot, the report, metrics.csv, the provenance log.

Everything here only reads histories and state; nothing steers the loop.
"""

from trainkit.reports.history_plot import plot_history
from trainkit.reports.metrics_log import MetricsLog
from trainkit.reports.provenance import ProvenanceLog
from trainkit.reports.report import render_report

__all__ = ["MetricsLog", "ProvenanceLog", "plot_history", "render_report"]
