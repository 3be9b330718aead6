"""Report charts (matplotlib, Agg backend): a timeline per kind and a bar chart of totals."""

import io

import matplotlib

matplotlib.use("Agg")  # headless servers and CI have no display

from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from agent.report.model import KINDS, LabelTotal, ReportEvent  # noqa: E402
from agent.timefmt import format_clock  # noqa: E402

_DPI = 110


def label_colors(labels: list[str]) -> dict[str, str]:
    """A stable colour per label (#rrggbb): tab20 in sorted label order, so reruns match."""
    palette = [mcolors.to_hex(c) for c in plt.get_cmap("tab20").colors]
    # tab20 pairs a dark and a light shade; dark shades first keeps neighbours distinct.
    palette = palette[0::2] + palette[1::2]
    return {label: palette[i % len(palette)] for i, label in enumerate(sorted(set(labels)))}


def timeline_png(
    events: list[ReportEvent], duration_s: float, colors: dict[str, str], width_in: float = 10.0
) -> bytes:
    """One row per kind, a bar per event coloured by label, time axis in mm:ss."""
    figure = Figure(figsize=(width_in, 0.8 + 0.7 * len(KINDS)), dpi=_DPI)
    axes = figure.add_subplot()
    span_s = max(duration_s, 1e-3)
    # Instantaneous events (stills, single frames) still need a visible sliver.
    min_width_s = span_s / 200
    for row, kind in enumerate(reversed(KINDS)):
        row_events = [e for e in events if e.kind == kind]
        lanes = overlap_lanes(row_events)
        lane_count = max(lanes.values(), default=0) + 1
        lane_height = 0.7 / lane_count
        for event in row_events:
            width_s = max(event.end_s - event.start_s, min_width_s)
            axes.broken_barh(
                [(event.start_s, width_s)],
                (row + 0.35 - lane_height * (lanes[event.event_id] + 1), lane_height),
                facecolors=colors.get(event.label, "#888888"),
                edgecolor="white",
                linewidth=0.5,
                alpha=0.35 + 0.65 * event.confidence,
            )
    axes.set_yticks(range(len(KINDS)), list(reversed(KINDS)))
    axes.set_xlim(0, span_s)
    axes.set_ylim(-0.6, len(KINDS) - 0.4)
    ticks = axes.get_xticks()
    axes.set_xticks(ticks, [format_clock(t, 1 if span_s < 60 else 0) for t in ticks])
    axes.set_xlim(0, span_s)
    axes.set_xlabel("time (mm:ss); opacity = confidence")
    axes.grid(axis="x", alpha=0.3)
    used = sorted({e.label for e in events})
    if used:
        handles = [Patch(color=colors[label], label=label.replace("_", " ")) for label in used]
        axes.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
        )
    figure.tight_layout()
    return _png(figure)


def overlap_lanes(events: list[ReportEvent], max_lanes: int = 8) -> dict[str, int]:
    """A lane per event so that overlapping events (several people) sit side by side in a row.

    Greedy in time order: an event takes the first lane that is free at its start; beyond
    `max_lanes` lanes, events share the last one.
    """
    lane_ends: list[float] = []
    lanes: dict[str, int] = {}
    for event in sorted(events, key=lambda e: (e.start_s, e.end_s)):
        free = next((i for i, end in enumerate(lane_ends) if end <= event.start_s), None)
        if free is None and len(lane_ends) < max_lanes:
            lane_ends.append(0.0)
            free = len(lane_ends) - 1
        elif free is None:
            free = max_lanes - 1
        lane_ends[free] = max(lane_ends[free], event.end_s)
        lanes[event.event_id] = free
    return lanes


def totals_png(totals: list[LabelTotal], colors: dict[str, str], width_in: float = 10.0) -> bytes:
    """Three panels: emotion time share (%), gesture counts, action counts."""
    figure = Figure(figsize=(width_in, 3.2), dpi=_DPI)
    panels = figure.subplots(1, len(KINDS))
    for axes, kind in zip(panels, KINDS, strict=True):
        rows = [t for t in totals if t.kind == kind]
        if kind == "emotion":
            values = [100 * (t.share or 0.0) for t in rows]
            axes.set_xlabel("% of recording")
        else:
            values = [t.count for t in rows]
            axes.set_xlabel("occurrences")
        names = [t.name for t in rows]
        axes.barh(names, values, height=0.6, color=[colors.get(t.label, "#888888") for t in rows])
        axes.invert_yaxis()  # biggest first, at the top
        axes.set_title(kind, fontsize=10)
        axes.tick_params(labelsize=8)
        if not rows:
            axes.text(0.5, 0.5, "none detected", ha="center", va="center", transform=axes.transAxes)
            axes.set_xticks([])
            axes.set_yticks([])
        elif kind != "emotion":
            axes.xaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
