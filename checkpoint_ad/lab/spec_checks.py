"""The checks behind experiment specs: keys and their types, sizes against their workloads,
policy parameters against their policies (and against each other), arrays without duplicates.
Each failure is one :class:`~checkpoint_ad.errors.ExperimentError` naming the file and where.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..chains import policies
from ..graphs import policies as graph_policies
from ..workloads import chain_models, graph_models
from ..workloads.user import UserWorkload, is_user_reference
from ..errors import CheckpointADError, ExperimentError
from .points import DERIVED


LARGEST_WHOLE = 2**63 - 1  # numpy's largest integer: no count or parameter can exceed it
BUDGET_PARAMETERS = ("slots", "budget_bytes", "budget_fraction", "store_budget_bytes")
EXCLUSIVE_PARAMETERS = tuple((first, second) for k, first in enumerate(BUDGET_PARAMETERS)
                             for second in BUDGET_PARAMETERS[k + 1:])  # two budgets at once
NEEDS_ONE_OF = {"resolution": ("budget_bytes", "budget_fraction", "store_budget_bytes")}
def workload_spec(family: str, name: str) -> Any:
    """The registered workload ``name`` of ``family`` ("chain" or "graph"), or a user's
    ``FILE.py:FUNCTION`` (:class:`~checkpoint_ad.workloads.user.UserWorkload`, which answers
    ``defaults()`` and ``resolve(sizes)`` alike)."""
    if is_user_reference(name):
        return UserWorkload.parse(name)
    return (graph_models.get_graph_workload if family == "graph" else chain_models.get_workload)(name)


def policy_spec(family: str, name: str) -> Any:
    """The registered policy ``name`` of ``family`` ("chain" or "graph")."""
    return (graph_policies.get_policy if family == "graph" else policies.get_policy)(name)
def fail(source: str, message: str) -> ExperimentError:
    return ExperimentError(f"{source}: {message}")


def check_keys(source: str, where: str, table: Mapping[str, Any], allowed: Mapping[str, type],
                required: Iterable[str] = ()) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise fail(source, f"unknown key{'s' * (len(unknown) > 1)} {', '.join(unknown)} in "
                            f"{where} (allowed: {', '.join(sorted(allowed))})")
    missing = [key for key in required if key not in table]
    if missing:
        raise fail(source, f"{where} is missing {', '.join(missing)}")
    for key, value in table.items():
        expected = allowed[key]
        if not _is(value, expected):
            raise fail(source, f"{where}: {key} must be {_type_name(expected)}, "
                                f"got {type(value).__name__} {value!r}")


def _is(value: Any, expected: type) -> bool:
    if expected is tuple:  # names
        return isinstance(value, tuple) and bool(value) and all(
            isinstance(name, str) for name in value)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, expected)


def _type_name(expected: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            dict: "a table", list: "an array", tuple: "a non-empty array of names"}.get(expected, expected.__name__)


def check_sizes(source: str, where: str, family: str, workloads: Iterable[str],
                 sizes: Mapping[str, Any]) -> None:
    """Each workload must accept ``sizes``: the shared ones with its own table over them."""
    workloads = list(workloads)
    for key, value in sizes.items():
        if isinstance(value, dict) and key not in workloads:
            raise fail(source, f"{where}: {key} = {{...}} sizes one workload, but {key!r} is "
                                f"not one of this experiment's ({', '.join(workloads)})")
    shared = {k: v for k, v in sizes.items() if not isinstance(v, dict)}
    try:
        for workload in workloads:
            own = sizes.get(workload)
            workload_spec(family, workload).resolve({**shared, **own}
                                                    if isinstance(own, dict) else shared)
    except CheckpointADError as error:
        raise fail(source, f"{where}: {error}") from None


def fraction_problem(value: Any, what: str = "budget_fraction") -> str | None:
    """Why ``value`` is not a budget fraction (a number in (0, 1] of store_all's bytes), or
    None: one wording for experiment files, ``compare --policies`` and ``plan
    --budget-fraction``."""
    if _is(value, float) and 0 < value <= 1:
        return None
    return (f"{what} must be a number in (0, 1] (a fraction of store_all's bytes), "
            f"got {value!r}")


def check_param(source: str, where: str, family: str, policy: str, name: str, value: Any
                 ) -> Any:
    """Refuse a parameter the policy does not take or a value of the wrong type; the value as
    the policy takes it (an array of names as a tuple)."""
    parameters = {p.name: p for p in policy_spec(family, policy).parameters}
    derived = {key for key, target in DERIVED.items() if target in parameters}
    if name in derived:
        problem = fraction_problem(value, name)
        if problem:
            raise fail(source, f"{where}: {problem}")
        return value
    if name not in parameters:
        accepted = ", ".join(sorted(set(parameters) | derived)) or "none"
        raise fail(source, f"{where}: policy {policy!r} has no parameter {name!r} "
                            f"(accepted: {accepted})")
    if name == "budget_bytes":
        if not _is(value, float) or not math.isfinite(value) or value <= 0:
            raise fail(source, f"{where}: {name} must be a positive number of bytes, "
                                f"got {value!r}")
        return value
    if parameters[name].kind is tuple and isinstance(value, list):
        value = tuple(value)  # a TOML array
    if not _is(value, parameters[name].kind):
        raise fail(source, f"{where}: {policy} parameter {name} must be "
                            f"{_type_name(parameters[name].kind)}, got {value!r}")
    if parameters[name].kind is int and value > LARGEST_WHOLE:
        raise fail(source, f"{where}: {policy} parameter {name} must be at most "
                            f"{LARGEST_WHOLE:,}, got {value!r}")
    return value


def check_combination(policy: str, params: Mapping[str, Any]) -> None:
    """Refuse parameters of one configuration that contradict each other (two budgets) or mean
    nothing together (a resolution without a byte budget), with :class:`ExperimentError`."""
    for first, second in EXCLUSIVE_PARAMETERS:
        if first in params and second in params:
            raise ExperimentError(f"policy {policy!r}: {first} and {second} are two budgets; "
                                  f"give one of them, not both")
    for name, needed in NEEDS_ONE_OF.items():
        if name in params and not any(other in params for other in needed):
            raise ExperimentError(f"policy {policy!r}: {name} applies only with "
                                  f"{' or '.join(needed)}; drop {name} or give a byte budget")


def no_duplicates(source: str, where: str, values: list[Any]) -> None:
    seen: set[str] = set()
    for value in values:
        key = json.dumps(value, sort_keys=True, default=str)  # TOML values: tables, dates...
        if key in seen:
            raise fail(source, f"{where} lists {value!r} twice; give each value once")
        seen.add(key)

def check_arrays(source: str, where: str, table: Mapping[str, Any],
                  check: Callable[[str, Any], Any]) -> dict[str, list[Any]]:
    """Each entry of ``table`` (a grid or a sweep) must be a non-empty array; ``check(key,
    value)`` checks each of its values and returns it as it is used."""
    checked = {}
    for key, values in table.items():
        if not isinstance(values, list) or not values:
            raise fail(source, f"{where}: {key} must be a non-empty array, got {values!r}")
        no_duplicates(source, f"{where}: {key}", values)
        checked[key] = [check(key, value) for value in values]
    return checked
