"""Reports from saved records alone: comparison tables (text and Markdown) and a Markdown
report with the figures of :mod:`checkpoint_ad.plotting`. Nothing here runs the engine.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from ..plotting import FIGURES, format_bytes, format_seconds, save_figures
from ..errors import ExperimentError
from .headline import headline
from ..records.fields import plain_name_problem
from ..records.schema import Record, group_records

REPORT_FILE = "report.md"


# -- rows and tables ------------------------------------------------------------------------------

def _reference(record: Record, records: Sequence[Record]) -> Record | None:
    """store_all's record at the same workload and sizes, if there is one."""
    return next((r for r in records if r.policy == "store_all" and r.workload == record.workload
                 and r.sizes == record.sizes), None)


def dominant_kind(record: Record) -> str:
    """The kind of bytes that dominates the activation peak, with its share: "tape 94%"."""
    kinds = record.peak_bytes_by_kind
    total = sum(kinds.values())
    if not total:
        return "-"
    kind, size = max(kinds.items(), key=lambda item: item[1])
    return f"{kind} {100 * size / total:.0f}%"


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference else "-"


def comparison_rows(records: Sequence[Record]) -> list[dict[str, str]]:
    """One row of display strings per record (params as the plan resolved them, defaults
    included); ratios are to store_all at the same sizes."""
    rows = []
    for record in records:
        reference = _reference(record, records)
        params = ", ".join(f"{k}={v}" for k, v in record.plan_params.items()) or "-"
        rows.append({
            "n": str(record.n),
            "policy": record.policy,
            "params": params,
            "evals": f"{record.forward_evals:,}",
            "stored": str(record.peak_stored),
            "activations": format_bytes(record.peak_bytes),
            "dominant": dominant_kind(record),
            "params+grads": format_bytes(record.parameter_bytes
                                           + record.parameter_gradient_bytes),
            "predicted": format_bytes(record.predicted_peak_bytes),
            "tracemalloc": ("-" if record.measured_peak_bytes is None
                            else format_bytes(record.measured_peak_bytes)),
            "RSS": ("-" if record.rss_high_water_increase_bytes is None
                             else format_bytes(record.rss_high_water_increase_bytes)),
            "time": format_seconds(record.wall_s_median),
            "mem/store_all": _ratio(record.peak_bytes, reference.peak_bytes)
            if reference else "-",
            "time/store_all": _ratio(record.wall_s_median, reference.wall_s_median)
            if reference else "-",
            "grad diff": f"{record.max_grad_diff:.3g}",
        })
    return rows


RIGHT = {"n", "evals", "stored", "activations", "params+grads", "predicted",
         "tracemalloc", "RSS", "time", "mem/store_all", "time/store_all",
         "grad diff"}


def text_table(rows: Sequence[dict[str, str]], columns: Sequence[str] | None = None) -> str:
    """An aligned plain-text table (numbers right-aligned)."""
    if not rows:
        return "(no records)"
    columns = list(columns or rows[0])
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in columns}

    def line(cells: dict[str, str]) -> str:
        return "  ".join(cells[c].rjust(widths[c]) if c in RIGHT else cells[c].ljust(widths[c])
                         for c in columns).rstrip()

    header = line({c: c for c in columns})
    return "\n".join([header, "-" * len(header)] + [line(row) for row in rows])


def markdown_table(rows: Sequence[dict[str, str]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(no records)"
    columns = list(columns or rows[0])
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---:" if c in RIGHT else "---" for c in columns) + "|"
    body = ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
    return "\n".join([head, rule] + body)


# -- the Markdown report --------------------------------------------------------------------------

def _environment(records: Sequence[Record]) -> str:
    first = records[0]
    machine = first.machine
    commit = (first.git_commit or "unknown")[:12] + (" + local changes" if first.git_dirty
                                                      else "")
    return (f"checkpoint_ad {first.package_version or '?'}, commit `{commit}`; "
            f"{machine.get('platform', '?')}, Python {machine.get('python', '?')}, "
            f"numpy {machine.get('numpy', '?')}, {machine.get('cpu_count', '?')} CPUs; "
            f"records from {min(r.created for r in records)} to {max(r.created for r in records)}.")


def _checks(records: Sequence[Record]) -> list[str]:
    exact = sum(r.predicted_peak_bytes == r.peak_bytes for r in records)
    worst = max(r.max_grad_diff for r in records)
    traced = [r for r in records if r.measured_peak_bytes is not None]
    over = [r.measured_peak_bytes - r.predicted_peak_bytes for r in traced]
    lines = [f"- Predicted peak bytes equal the Meter's exact peak in {exact} of {len(records)} "
             f"records.",
             f"- Largest gradient difference from store_all over all records: {worst:.3g} "
             f"({'bit-identical' if worst == 0 else 'not bit-identical'})."]
    if over:
        lines.append(f"- tracemalloc's peak exceeds the prediction by {format_bytes(min(over))} "
                     f"to {format_bytes(max(over))} (temporaries inside a stage, the loss, "
                     f"Python objects).")
    return lines


DEFINITIONS = """\
- **evals**: forward evaluations, every stage evaluation, taped or not, the first sweep included.
- **stored**: peak number of checkpoints (x_0 included) plus held tapes, at their most.
- **activations**: the Meter's exact peak of the bytes the executor holds (checkpoints,
  tapes, the working value, cotangents); parameters and their gradients are apart
  (**params+grads**). **dominant** names the kind holding most of that peak.
- **predicted**: the same peak from running the plan symbolically, before anything ran.
- **tracemalloc**: Python's allocator peak over one run (also sees temporaries inside a stage).
- **RSS**: the increase of the process's resident-set high-water mark during one run minus before it
  (coarse: allocator slack, pages); memory-profiler's sampled peak is in the records too.
- **time**: median wall time of the forward and reverse sweeps over the repeats, after a
  warm-up run. **mem/store_all**, **time/store_all**: ratios to store_all at the same sizes.
  **grad diff**: the largest absolute gradient difference from store_all."""

COLUMNS = ("n", "policy", "params", "evals", "stored", "activations",
           "dominant", "predicted", "tracemalloc", "RSS", "time",
           "mem/store_all", "time/store_all", "grad diff")


def _headline(bullets: Sequence[str]) -> list[str]:
    """The headline section: one Markdown bullet per sentence; nothing without bullets."""
    if not bullets:
        return []
    return ["### Headline", ""] + [f"- {bullet}" for bullet in bullets] + [""]


def experiment_report(records: Sequence[Record], figures: dict[str, Path], out: Path,
                      offload: Sequence[tuple[str, Path]] = ()) -> str:
    """The Markdown of one chain experiment's records, figures linked relative to ``out``; with
    records of a planner given a bandwidth, the offload headline, its figures (``offload``:
    (caption, path) pairs) and its table (:mod:`.offload`)."""
    from .offload import OFFLOAD_COLUMNS, offload_headline, offload_rows

    first = records[0]
    sizes = ", ".join(f"{k}={v}" for k, v in first.sizes.items() if k != "n")
    ns = sorted({r.n for r in records})
    lines = [f"## {first.experiment}", "",
             f"Workload **{first.workload}** ({sizes}), n in {', '.join(map(str, ns))}; "
             f"{len(records)} records, {first.repeats} timed repeats each, seed {first.seed}, "
             f"{first.dtype}, planner costs: {first.costs}.", "", _environment(records), ""]
    lines += _headline(offload_headline(records) or headline(records))
    for caption, path in [(FIGURES[name][1], path) for name, path in figures.items()] + [
            *offload]:
        lines += [f"### {caption}", "", f"![{caption}]({_posix(path, out)})", ""]
    lines += ["### Checks", ""] + _checks(records) + _host_check(records) + ["",
              "### All records", "", markdown_table(comparison_rows(records), COLUMNS), ""]
    moving = offload_rows(records)
    if moving:
        lines += ["### Offload: time, and which stages each plan moves", "",
                  markdown_table(moving, OFFLOAD_COLUMNS), ""]
    return "\n".join(lines)


def _host_check(records: Sequence[Record]) -> list[str]:
    """The host peaks' check, for records with a host peak (docs/offload_model.md)."""
    hosts = [r for r in records if r.host_peak_bytes is not None and r.bandwidth is not None]
    if not hosts:
        return []
    exact = sum(r.host_peak_bytes == r.predicted_host_peak_bytes for r in hosts)
    return [f"- Predicted host peaks equal the host Meter's in {exact} of {len(hosts)} records "
            f"given a bandwidth."]


def graph_experiment_report(records: Sequence[Record], figures: list[tuple[str, Path]],
                            out: Path) -> str:
    """The Markdown of one graph experiment's records (see :mod:`.graphs`)."""
    from .graphs import GRAPH_COLUMNS, graph_headline, graph_rows
    from .offload import OFFLOAD_COLUMNS, offload_headline, offload_rows
    from .solvers import solver_section

    first = records[0]
    workloads = ", ".join(dict.fromkeys(r.workload for r in records))
    planners = ", ".join(dict.fromkeys(r.policy for r in records))
    lines = [f"## {first.experiment}", "",
             f"Graph workloads **{workloads}**; planners {planners}; {len(records)} records, "
             f"{first.repeats} timed repeats each, seed {first.seed}, {first.dtype}.", "",
             _environment(records), ""] + _headline(offload_headline(records)
                                                  or graph_headline(records))
    lines += solver_section(records, markdown_table)
    for caption, path in figures:
        lines += [f"### {caption}", "", f"![{caption}]({_posix(path, out)})", ""]
    above = [r for r in records if r.lower_bound is not None and r.lower_bound > r.forward_cost]
    lines += ["### Checks", ""] + _checks(records) + _host_check(records) + [
        f"- Every plan was replayed by the checker before it ran; lower bounds above their "
        f"record's cost: {len(above)} (a bound above a cost would be a bug).",
        "", "### All records", "", markdown_table(graph_rows(records), GRAPH_COLUMNS), ""]
    moving = offload_rows(records)
    if moving:
        lines += ["### Offload: time, and which values each plan moves", "",
                  markdown_table(moving, OFFLOAD_COLUMNS), ""]
    return "\n".join(lines)


def _section(name: str, group: Sequence[Record], folder: Path, out: Path) -> str:
    """One experiment's section (its figures written under ``folder``)."""
    if group[0].family == "graph":
        from .graphs import save_graph_figures
        from .offload import offload_records, save_offload_figures
        from .solvers import save_anytime
        folder.mkdir(parents=True, exist_ok=True)
        figures = save_anytime(group, folder) + (
            save_offload_figures(group, folder) if offload_records(group)
            else save_graph_figures(group, folder))
        return graph_experiment_report(group, figures, out)
    from .offload import offload_records, save_offload_figures
    if offload_records(group):  # a bandwidth sweep: its figures, not one panel per configuration
        return experiment_report(group, {}, out, save_offload_figures(group, folder))
    return experiment_report(group, save_figures(group, folder), out)


def build_report(records: Sequence[Record], out_dir: str | Path,
                 sources: Sequence[Path] = ()) -> Path:
    """Write the figures and ``report.md`` for ``records`` under ``out_dir``; one experiment's
    figures go directly there, several experiments' into one subfolder each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_experiment = group_records(records, lambda r: r.experiment)
    sections = []
    for name, group in by_experiment.items():
        problem = plain_name_problem(name)
        if problem is not None:  # it names a folder: never a path out of out_dir
            raise ExperimentError(f"experiment name {problem}")
        folder = out if len(by_experiment) == 1 else out / name
        by_family = group_records(group, lambda r: r.family)
        for family, part in by_family.items():
            where = folder if len(by_family) == 1 else folder / family
            section = _section(name, part, where, out)
            if len(by_family) > 1:  # one heading per family: "## offload (chain workloads)"
                section = section.replace(f"## {name}", f"## {name} ({family} workloads)", 1)
            sections.append(section)
    title = (f"# checkpoint_ad report: {', '.join(by_experiment)}" if by_experiment
             else "# checkpoint_ad report: no records")
    intro = "Built by `checkpoint-ad report` from saved records alone"
    if sources:
        links = ", ".join(f"[{_posix(p, out)}]({_posix(p, out)})" for p in sources)
        intro += f" ({links}; the same records as CSV beside them)"
    from .offload import OFFLOAD_DEFINITIONS, offload_records
    definitions = [DEFINITIONS] if any(r.family == "chain" for r in records) else []
    if any(r.family == "graph" for r in records):
        from .graphs import GRAPH_DEFINITIONS
        definitions.append(GRAPH_DEFINITIONS)
    if offload_records(records):
        definitions.append(OFFLOAD_DEFINITIONS)
    text = "\n".join([title, "", intro + ".", ""] + sections
                     + ["## What the numbers mean", "", "\n".join(definitions), ""])
    path = out / REPORT_FILE
    path.write_text(text, encoding="utf-8")
    return path


def _posix(path: Path, start: Path) -> str:
    """``path`` relative to ``start``, with forward slashes (Markdown links); bytes of a name
    that is not UTF-8 are percent-encoded, so the report stays UTF-8 and the link works."""
    relative = Path(os.path.relpath(Path(path).resolve(), start.resolve())).as_posix()
    return relative if _encodable(relative) else quote(os.fsencode(relative), safe="/")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
