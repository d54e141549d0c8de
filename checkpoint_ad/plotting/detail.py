"""Figures of the experiment's detail point, one panel per policy: the live activation bytes
through one run (timeline), and the schedule (which state is advanced, taped, stored, restored
and reversed when)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..records.schema import Record
from .style import DPI, color, figure_title, format_bytes, linear_bytes_axis


def _detail(records: Sequence[Record], field: str) -> list[Record]:
    """One record per policy carrying ``field`` (the first), in record order."""
    chosen: dict[str, Record] = {}
    for record in records:
        if getattr(record, field) and record.policy not in chosen:
            chosen[record.policy] = record
    return list(chosen.values())


def _stacked_panels(count: int, panel_height: float, extra_height: float, **kwargs: Any
                    ) -> tuple[Figure, Any]:
    """A figure of ``count`` full-width panels stacked in one column (inches)."""
    figure = Figure(figsize=(9, panel_height * count + extra_height), dpi=DPI,
                    layout="constrained")
    return figure, figure.subplots(count, 1, squeeze=False, **kwargs)[:, 0]


def _note(ax: Any, top: float, text: str) -> None:
    """A boxed note in the panel's top right corner (``top``: its top, in axes fractions)."""
    ax.text(0.995, top, text, transform=ax.transAxes, ha="right", va="top", fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0})


# -- 4. memory timelines ---------------------------------------------------------------------------

def timelines(records: Sequence[Record]) -> Figure | None:
    """Live activation bytes through one run of each policy, forward sweep shaded."""
    chosen = _detail(records, "timeline")
    if not chosen:
        return None
    figure, axes = _stacked_panels(len(chosen), 1.55, 1.1, sharey=True)
    top = max(b for record in chosen for _, b in record.timeline)
    for ax, record in zip(axes, chosen):
        events = [e for e, _ in record.timeline]
        live = [b for _, b in record.timeline]
        ax.fill_between(events, live, step="post", color=color(record.policy), alpha=0.25)
        ax.step(events, live, where="post", color=color(record.policy), linewidth=1)
        if record.forward_events:
            ax.axvspan(0, record.forward_events, color="0.5", alpha=0.08, linewidth=0)
            ax.axvline(record.forward_events, color="0.4", linewidth=0.8, linestyle="--")
        _note(ax, 0.92, f"{record.label}: peak {format_bytes(record.peak_bytes)}, "
                        f"{record.forward_evals:,} evaluations")
        ax.set_xlim(0, max(events[-1], 1))
        ax.set_ylim(0, top * 1.08)
        linear_bytes_axis(ax.yaxis, top)
        ax.grid(True, alpha=0.3)
    axes[0].set_title("grey band: forward sweep (until the first reversal); then the reverse "
                      "sweep", fontsize=9)
    axes[-1].set_xlabel("Meter events (each hold or release of an array), in execution order")
    figure.supylabel("live activation bytes", fontsize=10)
    figure.suptitle(figure_title(chosen, f"memory timeline of one run, n = {chosen[0].n}"),
                    fontsize=11)
    return figure


# -- 5. schedule diagrams --------------------------------------------------------------------------

SCHEDULE_COLORS = {"advance": "#4c72b0", "tape": "#dd8452", "reverse": "#c44e52",
                   "checkpoint": "#55a868", "held": "#dd8452", "restore": "0.45",
                   "host": "#756bb1"}


def schedule_paths(schedule: Sequence[Sequence[Any]], n: int) -> dict[str, list[Any]]:
    """The drawing of a plan: segments (kind, (t0, y0), (t1, y1)) of the working value and
    bars (kind, state, start, end) of stored states. Time advances 1 per evaluation and per
    backward step; y is the state index j of x_j."""
    time, position = 0.0, 0
    segments: list[tuple[str, tuple[float, float], tuple[float, float]]] = []
    open_bars: dict[tuple[str, int], float] = {("checkpoint", 0): 0.0}
    bars: list[tuple[str, int, float, float]] = []
    moved: dict[int, str] = {}  # stage -> the kind of its item in host memory
    for action, stage, end in schedule:
        if action in ("offload", "prefetch"):
            _transfer(action, stage, time, open_bars, bars, moved)
            continue
        if action == "advance":
            steps = end - stage + 1
            segments.append(("advance", (time, stage - 1), (time + steps, end)))
            time, position = time + steps, end
        elif action in ("tape", "turn"):
            segments.append(("tape", (time, stage - 1), (time + 1, stage)))
            time += 1
            if action == "tape":
                open_bars[("held", stage)] = time
                position = stage
            else:
                segments.append(("reverse", (time, stage), (time + 1, stage - 1)))
                time, position = time + 1, stage - 1
        elif action == "backward":
            start = open_bars.pop(("held", stage), time)
            bars.append(("held", stage, start, time))
            segments.append(("reverse", (time, stage), (time + 1, stage - 1)))
            time, position = time + 1, stage - 1
        elif action == "save":
            open_bars[("checkpoint", stage)] = time
        elif action == "free":
            bars.append(("checkpoint", stage, open_bars.pop(("checkpoint", stage), time), time))
        elif action == "restore":
            segments.append(("restore", (time, position), (time, stage)))
            position = stage
    for (kind, state), start in open_bars.items():
        bars.append((kind, state, start, time))
    return {"segments": segments, "bars": bars, "length": [time]}


def _transfer(action: str, stage: int, time: float, open_bars: dict[tuple[str, int], float],
              bars: list[tuple[str, int, float, float]], moved: dict[int, str]) -> None:
    """An offload closes the bar of stage's held tape (else its checkpoint) and opens a
    ``host`` bar; a prefetch closes that and reopens the item's own kind (drawn from the
    step the transfer runs in: transfers take no time of their own in the drawing)."""
    if action == "offload":
        kind = "held" if ("held", stage) in open_bars else "checkpoint"
        bars.append((kind, stage, open_bars.pop((kind, stage), time), time))
        moved[stage] = kind
        open_bars[("host", stage)] = time
    else:
        bars.append(("host", stage, open_bars.pop(("host", stage), time), time))
        open_bars[(moved.pop(stage, "checkpoint"), stage)] = time


def schedules(records: Sequence[Record]) -> Figure | None:
    """One schedule diagram per policy (the detail point)."""
    chosen = _detail(records, "schedule")
    if not chosen:
        return None
    figure, axes = _stacked_panels(len(chosen), 1.9, 1.2)
    for ax, record in zip(axes, chosen):
        drawing = schedule_paths(record.schedule, record.n)
        for kind, state, start, end in drawing["bars"]:
            ax.plot([start, end], [state, state], color=SCHEDULE_COLORS[kind],
                    linewidth=4 if kind in ("checkpoint", "host") else 2.5, alpha=0.45,
                    solid_capstyle="butt")
        for kind, (t0, y0), (t1, y1) in drawing["segments"]:
            ax.plot([t0, t1], [y0, y1], color=SCHEDULE_COLORS[kind],
                    linewidth=0.8 if kind == "restore" else 1.3,
                    linestyle=":" if kind == "restore" else "-")
        ax.set_xlim(0, drawing["length"][0])
        ax.set_ylim(-0.5, record.n + 0.5)
        ax.set_ylabel("state j")
        _note(ax, 0.95, f"{record.label}: {record.forward_evals:,} evaluations, "
                        f"peak stored {record.peak_stored}")
        ax.grid(True, alpha=0.2)
    legend = [Line2D([], [], color=SCHEDULE_COLORS["advance"], label="advance (plain evaluation)"),
              Line2D([], [], color=SCHEDULE_COLORS["tape"], label="taped evaluation"),
              Line2D([], [], color=SCHEDULE_COLORS["reverse"], label="backward step"),
              Line2D([], [], color=SCHEDULE_COLORS["restore"], linestyle=":", label="restore"),
              Line2D([], [], color=SCHEDULE_COLORS["checkpoint"], linewidth=4, alpha=0.45,
                     label="checkpoint x_j stored"),
              Line2D([], [], color=SCHEDULE_COLORS["held"], linewidth=2.5, alpha=0.45,
                     label="held tape of stage j")]
    if any(action == "offload" for record in chosen for action, *_ in record.schedule):
        legend.append(Line2D([], [], color=SCHEDULE_COLORS["host"], linewidth=4, alpha=0.45,
                             label="x_j or stage j's tape in host memory"))
    figure.legend(handles=legend, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    axes[-1].set_xlabel("time (one unit per stage evaluation and per backward step)")
    figure.suptitle(figure_title(chosen, f"schedules at n = {chosen[0].n}"), fontsize=11)
    return figure
