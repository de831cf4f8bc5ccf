"""The picture of ``bookkeeper triage --plot OUT``: a PNG with a timeline of the disconnects
per instance and channel coloured by close cause, and the distributions of last-message age
and connection uptime (stacked by cause, log scale: they span milliseconds to hours).

matplotlib is an optional dependency (``pip install 'bookkeeper[plot]'``), imported only
here and only when a picture is asked for; it draws with the Agg backend (no display).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bookkeeper.errors import UsageError
from bookkeeper.events import CloseReason

from .triage import TriageRecord, TriageReport

__all__ = ["CAUSE_COLORS", "plot_report"]

#: one colour per close cause (colour-blind-safe Okabe-Ito palette, grey for ours/unknown)
CAUSE_COLORS: dict[str, str] = {
    CloseReason.ABNORMAL_CLOSURE.value: "#D55E00",
    CloseReason.SERVER_CLOSE.value: "#0072B2",
    CloseReason.PING_TIMEOUT.value: "#CC79A7",
    CloseReason.IDLE_TIMEOUT.value: "#E69F00",
    CloseReason.TCP_ERROR.value: "#56B4E9",
    CloseReason.RATE_LIMITED.value: "#000000",
    CloseReason.AUTH_FAILED.value: "#009E73",
    CloseReason.INTEGRITY_FAILURE.value: "#F0E442",
    CloseReason.LOCAL_SHUTDOWN.value: "#BBBBBB",
    "unknown": "#777777",
}


def _cause(r: TriageRecord) -> str:
    return r.cause.value if r.cause is not None else "unknown"


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'bookkeeper[plot]'") from None
    matplotlib.use("Agg", force=True)  # files only: never a display
    import matplotlib.pyplot as plt

    return plt


def _log_bins(values: Sequence[float], floor: float) -> list[float]:
    lo = max(min(values), floor)
    hi = max(max(values), lo * 10)
    n = 30
    step = (math.log10(hi) - math.log10(lo)) / n
    return [10 ** (math.log10(lo) + i * step) for i in range(n + 1)]


def _hist(ax: Any, records: Sequence[TriageRecord], value: Any, floor: float, xlabel: str, title: str) -> None:
    by_cause: dict[str, list[float]] = {}
    for r in records:
        v = value(r)
        if v is not None:
            by_cause.setdefault(_cause(r), []).append(max(v, floor))
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("disconnects")
    if not by_cause:
        ax.text(0.5, 0.5, "no values in these records", ha="center", va="center", transform=ax.transAxes,
                color="#777777")
        return
    causes = sorted(by_cause)
    bins = _log_bins([v for vs in by_cause.values() for v in vs], floor)
    ax.hist([by_cause[c] for c in causes], bins=bins, stacked=True, color=[CAUSE_COLORS.get(c, "#777777")
                                                                          for c in causes], label=causes)
    ax.set_xscale("log")
    ax.grid(axis="y", alpha=0.3)


def plot_report(report: TriageReport, out: str | Path) -> Path:
    """Draw the triage picture as a PNG.

    Args:
        report: what :func:`~bookkeeper.apps.triage.triage` found.
        out: the PNG's path.

    Returns:
        The path written.

    Raises:
        UsageError: matplotlib is not installed, or ``out`` cannot be written.
    """
    plt = _pyplot()
    import matplotlib.dates as mdates
    from matplotlib.lines import Line2D

    records = list(report.records)
    timed = [r for r in records if r.ts_s is not None]
    rows = sorted({(r.instance, r.channel) for r in timed})
    row_of = {key: i for i, key in enumerate(rows)}
    top_h = max(2.5, 0.32 * len(rows) + 1.2)
    fig = plt.figure(figsize=(13, top_h + 4.2), dpi=110)
    grid = fig.add_gridspec(2, 2, height_ratios=[top_h, 3.4], hspace=0.45, wspace=0.18)
    ax = fig.add_subplot(grid[0, :])
    seen: set[str] = set()
    for r in timed:
        c = _cause(r)
        seen.add(c)
        when = datetime.fromtimestamp(r.ts_s or 0.0, tz=UTC)
        marker = "|" if r.is_local else ("x" if r.failed_open else "o")
        ax.scatter([when], [row_of[r.stream]], c=CAUSE_COLORS.get(c, "#777777"), marker=marker,
                   s=60 if marker == "|" else 28, linewidths=1.4, alpha=0.85, zorder=3)
    ax.set_yticks(range(len(rows)), [f"{inst} · {ch}" for inst, ch in rows], fontsize=9)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    for i in range(len(rows)):
        ax.axhline(i, color="#EEEEEE", zorder=1, linewidth=0.8)
    locator = mdates.AutoDateLocator(maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    ax.set_xlabel("time (UTC)")
    ax.set_title("Disconnects per instance and channel, coloured by close cause "
                 "(o disconnect, x failed connection attempt, | local shutdown)", fontsize=11)
    handles = [Line2D([], [], marker="o", linestyle="", color=CAUSE_COLORS.get(c, "#777777"), label=c)
               for c in sorted(seen)]
    ax.legend(handles=handles, title="close cause", loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9,
              title_fontsize=9, frameon=False)
    if not timed:
        ax.text(0.5, 0.5, "no record has a usable time", ha="center", va="center", transform=ax.transAxes)

    incidents = [r for r in records if not r.is_local]
    # a failed attempt never had data: its age is the previous connection's, so it is left out
    _hist(fig.add_subplot(grid[1, 0]), [r for r in incidents if not r.failed_open], lambda r: r.last_message_ago_ms / 1000
          if r.last_message_ago_ms is not None else None, 1e-3, "seconds since the last message (log)",
          "Last-message age at disconnect")
    _hist(fig.add_subplot(grid[1, 1]), [r for r in incidents if not r.failed_open],
          lambda r: r.uptime_s, 1e-2, "connection uptime, seconds (log)", "Connection uptime at disconnect")

    data = report.as_json()
    head = (f"bookkeeper triage: {data['disconnects']} disconnects, {len(data['instances'])} instance(s), "
            f"{data['records']} records")
    if report.malformed:
        head += f", {report.malformed} malformed line(s) skipped"
    if len(timed) < len(records):
        head += f", {len(records) - len(timed)} without a time (not on the timeline)"
    likely = [f for f in report.findings if f.confidence > 0.5]
    if len(likely) == 1:
        top = likely[0]
        sub = f"likely: {top.pattern.value} ({top.confidence:.2f}): first safe move: {top.first_safe_move}"
    elif likely:
        sub = "likely, most first: " + ", ".join(f"{f.pattern.value} ({f.confidence:.2f})" for f in likely)
    else:
        sub = "no pattern above 0.5: the disconnects look like ordinary churn"
    fig.suptitle(f"{head}\n{sub}", fontsize=12, x=0.01, ha="left", y=0.995)
    path = Path(out)
    try:
        fig.savefig(path, format="png", bbox_inches="tight")
    except OSError as exc:
        raise UsageError(f"--plot: cannot write {str(path)!r}: {exc.strerror or exc}", path=str(path)) from None
    finally:
        plt.close(fig)
    return path
