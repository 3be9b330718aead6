"""Behavior reports for a whole recording: timelines, totals, notable moments, explanations.

`build_report` indexes the video if needed and reads its clips and detections from the index
(`agent.report.build`); `assemble_report` does the work from given records; `write_report`
lays the data out as HTML, Markdown or JSON (`agent.report.render`). The records are in
`agent.report.model`.

The names below are imported on first use: the CLI reads the output formats from
`agent.report.render` at start-up, and that must not load indexing, charts and video decoding.
"""

from typing import Any

__all__ = [
    "FORMATS",
    "SUFFIXES",
    "ReportData",
    "assemble_report",
    "build_report",
    "default_report_path",
    "not_checkable",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in ("assemble_report", "build_report"):
        from agent.report import build as module
    elif name == "not_checkable":
        from agent.report import explanations as module
    elif name == "ReportData":
        from agent.report import model as module
    elif name in ("FORMATS", "SUFFIXES", "default_report_path", "write_report"):
        from agent.report import render as module
    else:
        raise AttributeError(f"module 'agent.report' has no attribute '{name}'")
    return getattr(module, name)
