"""What each field of a record may hold: one validator per field a report or a figure reads.

Each validator returns why a (well-typed) value is unusable, or None; :func:`value_problem`
applies the field's own. Reports and figures read only records that pass.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

LARGEST_INT = 2**63 - 1  # what numpy and matplotlib take as an integer
UNSAFE_CHARACTER = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")  # control or lone surrogate


def shown(value: Any) -> str:
    """``repr(value)`` cut to 80 characters (a damaged record may hold anything)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def plain_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be used as a file or folder name, or None: a plain name is a
    non-empty string without path separators, control characters (NUL included) or lone
    surrogates, and is not "." or ".."."""
    if not isinstance(name, str) or not name:
        return f"must be a non-empty name, got {shown(name)}"
    if name in (".", "..") or "/" in name or "\\" in name or UNSAFE_CHARACTER.search(name):
        return (f"must be a plain name (no / or \\, no control characters, not . or ..), "
                f"got {shown(name)}")
    return None


def _text_problem(value: Any) -> str | None:
    """Control characters and lone surrogates anywhere in the strings of ``value``."""
    if isinstance(value, str):
        return f"holds a control character or a lone surrogate: {shown(value)}" \
            if UNSAFE_CHARACTER.search(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        problem = _text_problem(key) if isinstance(key, str) else None
        problem = problem or _text_problem(item)
        if problem:
            return problem
    return None


def _is_int(value: Any, least: int = 0) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and least <= value <= LARGEST_INT)


def _is_number(value: Any, least: float = 0.0) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and least <= value <= LARGEST_INT)


def _count(least: int) -> Callable[[Any, dict[str, Any]], str | None]:
    def check(value: Any, data: dict[str, Any]) -> str | None:
        if value is None or _is_int(value, least):
            return None
        return f"must be a whole number from {least} to 2**63-1, got {shown(value)}"
    return check


def _seconds(value: Any, data: dict[str, Any]) -> str | None:
    if not _is_number(value) or value <= 0:
        return f"must be a positive finite number of seconds, got {shown(value)}"
    if not data.get("wall_s_min", 0) <= data.get("wall_s_median", 0) \
            <= data.get("wall_s_max", math.inf):
        return (f"times must satisfy wall_s_min <= wall_s_median <= wall_s_max, got "
                f"{data['wall_s_min']!r}, {data['wall_s_median']!r}, {data['wall_s_max']!r}")
    return None


def _positive(value: Any, data: dict[str, Any]) -> str | None:
    return None if _is_number(value) and value > 0 else \
        f"must be a positive finite number, got {shown(value)}"


def _difference(value: Any, data: dict[str, Any]) -> str | None:
    return None if _is_number(value) else \
        f"must be a finite number >= 0, got {shown(value)}"


def _sizes(value: dict[str, Any], data: dict[str, Any]) -> str | None:
    if data.get("family", "chain") == "chain" and not _is_int(value.get("n"), 1) \
            or "n" in value and not _is_int(value["n"], 1):
        return f"must hold a whole number n from 1 to 2**63-1, got {shown(value)}"
    bad = [key for key, size in value.items() if size is None or _scalars({key: size}, data)]
    return f"size {bad[0]} must be a string, a finite number, true or false, got " \
           f"{shown(value[bad[0]])}" if bad else None


def _scalars(value: dict[str, Any], data: dict[str, Any]) -> str | None:
    for key, item in value.items():
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if not _is_number(item, -math.inf):
            return f"{key} must be a string, a finite number, true, false or null, got " \
                   f"{shown(item)}"
    return None


def _bytes_by_kind(value: dict[str, Any], data: dict[str, Any]) -> str | None:
    bad = [kind for kind, size in value.items() if not _is_int(size)]
    return f"{bad[0]} must be a whole number of bytes >= 0, got {shown(value[bad[0]])}" \
        if bad else None


def _plain_name(value: Any, data: dict[str, Any]) -> str | None:
    return plain_name_problem(value)


def _timeline(value: list[Any] | None, data: dict[str, Any]) -> str | None:
    if value is None:
        return None
    if not value:
        return "must be null or a non-empty list of [event, live bytes] pairs, got []"
    for index, entry in enumerate(value):
        if not (isinstance(entry, list) and len(entry) == 2 and all(map(_is_int, entry))):
            return (f"entry {index} must be [event, live bytes], two whole numbers >= 0, got "
                    f"{shown(entry)}")
    return None


ACTIONS_WITH_END = ("advance",)


def _schedule(value: list[Any] | None, data: dict[str, Any]) -> str | None:
    if value is None:
        return None
    from ..chains.plans import Action  # the plan's own action names

    actions = {action.value for action in Action}
    n = data["sizes"]["n"]
    for index, entry in enumerate(value):
        if not isinstance(entry, list) or len(entry) != 3:
            return f"entry {index} must be [action, stage, end], got {shown(entry)}"
        action, stage, end = entry
        if action not in actions:
            return f"entry {index}: unknown action {shown(action)} (known: " \
                   f"{', '.join(sorted(actions))})"
        if not _is_int(stage) or stage > n:
            return f"entry {index}: stage must be a whole number from 0 to n={n}, got " \
                   f"{shown(stage)}"
        if end is not None and not (_is_int(end) and end <= n):
            return f"entry {index}: end must be null or a whole number from 0 to n={n}, got " \
                   f"{shown(end)}"
        if action in ACTIONS_WITH_END and (end is None or end < stage):
            return f"entry {index}: {action} needs an end >= its stage, got {shown(entry)}"
    return None


FAMILIES = ("chain", "graph")


def _family(value: Any, data: dict[str, Any]) -> str | None:
    return None if value in FAMILIES else f"must be one of {', '.join(FAMILIES)}, got " \
                                          f"{shown(value)}"


def _optional_number(value: Any, data: dict[str, Any]) -> str | None:
    return None if value is None or _is_number(value) else \
        f"must be null or a finite number >= 0, got {shown(value)}"


def _graph(value: dict[str, Any] | None, data: dict[str, Any]) -> str | None:
    if value is None:
        return None
    parents, ops = value.get("parents"), value.get("ops")
    if sorted(value) != ["ops", "parents"] or not isinstance(parents, list) \
            or not isinstance(ops, list) or len(parents) != len(ops) or len(parents) < 2:
        return 'must be {"parents": [...], "ops": [...]}, two lists of one entry per node'
    for node, sources in enumerate(parents):
        if not isinstance(sources, list) or not all(_is_int(p) and p < node for p in sources):
            return f"parents of node {node} must be earlier nodes, got {shown(sources)}"
    return None


def _graph_steps(value: list[Any] | None, data: dict[str, Any]) -> str | None:
    if value is None:
        return None
    from ..graphs.plans import GraphAction  # the plan's own action names

    actions = {action.value for action in GraphAction}
    nodes = len((data.get("graph") or {}).get("parents") or [])
    for index, entry in enumerate(value):
        if not (isinstance(entry, list) and len(entry) == 2 and entry[0] in actions
                and _is_int(entry[1]) and (not nodes or entry[1] < nodes)):
            return (f"entry {index} must be [action, node] with an action of "
                    f"{', '.join(sorted(actions))} and a node of the graph, got {shown(entry)}")
    return None


def _trajectory(value: dict[str, Any] | None, data: dict[str, Any]) -> str | None:
    if value is None:
        return None
    if sorted(value) != ["bounds", "incumbents"]:
        return 'must be {"incumbents": [...], "bounds": [...]}'
    for name, series in value.items():
        if not isinstance(series, list) or not all(
                isinstance(point, list) and len(point) == 2 and all(map(_is_number, point))
                for point in series):
            return f"{name} must be a list of [seconds, value] pairs of finite numbers >= 0"
    return None


FIELD_CHECKS: dict[str, Callable[[Any, dict[str, Any]], str | None]] = {
    "experiment": _plain_name, "sizes": _sizes, "params": _scalars, "plan_params": _scalars,
    "seed": _count(0), "repeats": _count(1), "forward_evals": _count(1), "peak_stored": _count(1),
    "forward_cost": _positive, "peak_bytes": _count(1), "peak_bytes_by_kind": _bytes_by_kind,
    "predicted_peak_bytes": _count(0), "measured_peak_bytes": _count(0),
    "rss_peak_increase_bytes": _count(-LARGEST_INT),
    "rss_high_water_increase_bytes": _count(-LARGEST_INT),
    "parameter_bytes": _count(0), "parameter_gradient_bytes": _count(0),
    "wall_s_median": _seconds, "wall_s_min": _seconds, "wall_s_max": _seconds,
    "max_grad_diff": _difference, "timeline": _timeline, "forward_events": _count(0),
    "schedule": _schedule, "family": _family, "ops": _count(1),
    "store_all_cost": _optional_number, "budget_bytes": _count(1),
    "store_all_peak_bytes": _count(0), "lower_bound": _optional_number,
    "solve_s": _optional_number, "graph": _graph, "graph_steps": _graph_steps,
    "bandwidth": _optional_number, "predicted_time": _optional_number,
    "store_all_time": _optional_number, "predicted_host_peak_bytes": _count(0),
    "host_peak_bytes": _count(0),
    "plan_lower_bound": _optional_number, "trajectory": _trajectory}


GRAPH_FIELDS = ("ops", "store_all_cost", "store_all_peak_bytes")  # a graph record has them all


def value_problem(name: str, value: Any, data: dict[str, Any]) -> str | None:
    """Why the (well-typed) field ``name`` holds a value no report can use, or None."""
    if name == "family" and value == "graph":
        missing = [field for field in GRAPH_FIELDS if data.get(field) is None]
        if missing:
            return f"a graph record needs {', '.join(missing)}"
    check = FIELD_CHECKS.get(name)
    problem = check(value, data) if check else None
    return problem or _text_problem(value)
