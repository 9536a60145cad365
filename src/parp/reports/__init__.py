"""Markdown reports with matplotlib plots, built from a sweep's results."""

from .report import ReportArguments, build_report

__all__ = ["ReportArguments", "build_report"]
