"""Records → matplotlib figures (PNG). Reads records only; never runs the engine.

One function per figure, each taking a list of :class:`~.records.Record` and returning a
``matplotlib.figure.Figure`` (or None when the records cannot show it):

1. :func:`memory_vs_n`: peak activation bytes and peak stored items against n, log-log, with
   reference slopes n, sqrt(n) and 1;
2. :func:`evaluations_vs_n`: forward evaluations and wall time against n;
3. :func:`tradeoff`: forward cost and wall time against peak bytes at one n, one point per
   configuration, the Pareto front drawn;
4. :func:`timelines`: live activation bytes through one run per policy (the detail point);
5. :func:`schedules`: which state is advanced, taped, stored, restored and reversed when;
6. :func:`predicted_vs_measured`: the model's byte prediction against tracemalloc and the RSS.

Figures are built with the object-oriented API on the Agg canvas (no pyplot, no global state).
The figures live in one module per family (:mod:`.depth`, :mod:`.tradeoff`, :mod:`.detail`,
:mod:`.prediction`) over the shared :mod:`.style`; this module registers them
(:data:`FIGURES`) and writes them (:func:`save_figures`).
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image

from ..records.schema import Record
from .depth import evaluations_vs_n, memory_vs_n
from .detail import schedule_paths, schedules, timelines
from .prediction import predicted_vs_measured
from .style import DPI, color, format_bytes, format_count, format_seconds, series
from .tradeoff import pareto_front, tradeoff, tradeoff_n

__all__ = [
    "FIGURES", "save_figures", "save_png",
    # the figures and helpers of the submodules, importable from here as before the split
    "memory_vs_n", "evaluations_vs_n", "tradeoff", "tradeoff_n", "pareto_front", "timelines",
    "schedules", "schedule_paths", "predicted_vs_measured", "color", "format_bytes",
    "format_count", "format_seconds", "series"]


FIGURES: dict[str, tuple[Callable[[Sequence[Record]], Figure | None], str]] = {
    "memory_vs_n": (memory_vs_n, "Peak memory against n"),
    "evaluations_vs_n": (evaluations_vs_n, "Forward evaluations and wall time against n"),
    "tradeoff": (tradeoff, "Memory-time trade-off"),
    "timeline": (timelines, "Memory timeline of one run per policy"),
    "schedule": (schedules, "Schedules"),
    "predicted_vs_measured": (predicted_vs_measured, "Predicted against measured peak memory"),
}


def save_figures(records: Sequence[Record], out_dir: str | Path) -> dict[str, Path]:
    """Write every figure the records can show as ``<name>.png`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, (function, _caption) in FIGURES.items():
        figure = function(records)
        if figure is None:
            continue
        path = out / f"{name}.png"
        save_png(figure, path)
        written[name] = path
    return written


def save_png(figure: Figure, path: Path, colors: int = 256) -> None:
    """Save ``figure`` as a palette PNG: ``colors`` colors look the same as full colour for
    these flat plots at a third of the bytes (the reference report is committed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=colors).save(path, optimize=True)
