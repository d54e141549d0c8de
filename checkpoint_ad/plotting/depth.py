"""Figures against depth n: peak memory (with reference slopes n, sqrt(n) and 1), and
forward evaluations and wall time."""
from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator

from ..records.schema import Record
from .style import (REFERENCE_STYLES, bytes_axis, count_axis, draw_references, figure_title,
                    format_seconds, log_axis, n_axis, new_figure, series, styles_of, sweeps_n)


# -- 1. memory against n ---------------------------------------------------------------------------

def memory_vs_n(records: Sequence[Record]) -> Figure | None:
    """Peak activation bytes (Meter) and peak stored items against n, log-log."""
    if not sweeps_n(records):
        return None
    groups = series(records)
    styles = styles_of(groups)
    figure, (left, right) = new_figure(10, 4.2, 2)
    handles = []
    for label, group in groups.items():
        ns = [r.n for r in group]
        handles += left.plot(ns, [r.peak_bytes for r in group], label=label, **styles[label])
        right.plot(ns, [r.peak_stored for r in group], label=label, **styles[label])
    parameters = {r.n: r.parameter_bytes + r.parameter_gradient_bytes for r in records}
    if any(parameters.values()):
        ns = sorted(parameters)
        handles += left.plot(ns, [parameters[n] for n in ns], color="0.3", linewidth=2,
                             alpha=0.5, label="parameters + gradients (not counted above)")
    slopes = ((1.0, "∝ n", "store_all"), (0.5, "∝ √n", "sqrt_n"),
              (0.0, "∝ 1", "recompute_all"))
    draw_references(left, groups, lambda r: r.peak_bytes, slopes)
    draw_references(right, groups, lambda r: r.peak_stored, slopes)
    references = [line for line in right.get_lines() if line.get_label().startswith("∝")]
    right.legend(handles=references, fontsize=8, loc="upper left", title="reference slopes",
                 title_fontsize=8)
    all_ns = [r.n for r in records]
    for ax in (left, right):
        n_axis(ax, all_ns)
        ax.set_yscale("log", base=2)
        ax.grid(True, which="major", alpha=0.3)
    bytes_axis(left.yaxis)
    left.set_ylabel("peak activation memory (bytes, exact)")
    left.set_title("peak activation bytes (parameters apart)", fontsize=10)
    right.yaxis.set_major_locator(LogLocator(base=2, numticks=8))
    count_axis(right.yaxis)
    right.set_ylabel("peak stored items (checkpoints + held tapes)")
    right.set_title("peak stored items", fontsize=10)
    left.legend(handles=handles, fontsize=8, loc="upper left")
    figure.suptitle(figure_title(records, "peak memory against depth"), fontsize=11)
    return figure


# -- 2. evaluations and time against n -------------------------------------------------------------

def evaluations_vs_n(records: Sequence[Record]) -> Figure | None:
    """Forward evaluations (log-log, references n and n²/2) and median wall time against n."""
    if not sweeps_n(records):
        return None
    groups = series(records)
    styles = styles_of(groups)
    figure, (left, right) = new_figure(10, 4.2, 2)
    for label, group in groups.items():
        ns = [r.n for r in group]
        left.plot(ns, [r.forward_evals for r in group], label=label, **styles[label])
        medians = [r.wall_s_median for r in group]
        spread = [[m - r.wall_s_min for m, r in zip(medians, group)],
                  [r.wall_s_max - m for m, r in zip(medians, group)]]
        right.errorbar(ns, medians, yerr=spread, label=label, capsize=2, **styles[label])
    all_ns = sorted({r.n for r in records})
    lo, hi = all_ns[0], all_ns[-1]
    left.plot([lo, hi], [lo, hi], color="0.45", linewidth=1, linestyle=REFERENCE_STYLES[1.0],
              zorder=1, label="reference: n")
    left.plot([lo, hi], [x * (x + 1) / 2 for x in (lo, hi)], color="0.45", linewidth=1,
              linestyle=REFERENCE_STYLES[0.0], zorder=1, label="reference: n(n+1)/2")
    for ax in (left, right):
        n_axis(ax, all_ns)
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
    count_axis(left.yaxis)
    log_axis(right.yaxis, format_seconds)
    left.set_ylabel("forward evaluations (stage calls)")
    left.set_title("forward evaluations, first sweep included", fontsize=10)
    right.set_ylabel("wall time (median; bars: min–max)")
    right.set_title(f"forward + reverse wall time ({records[0].repeats} repeats)", fontsize=10)
    left.legend(fontsize=8, loc="upper left")
    figure.suptitle(figure_title(records, "compute against depth"), fontsize=11)
    return figure
