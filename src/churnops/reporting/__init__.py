"""Reports rendered to self-contained HTML: the exploratory data analysis of a training table."""

from churnops.reporting.eda import build_eda_report, write_eda_report

__all__ = ["build_eda_report", "write_eda_report"]
