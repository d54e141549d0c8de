"""``ca.compare``: policies run side by side on a user's chain or function, in this process.

``compare(chain, x0, policies=[...])`` back-propagates through a chain under each chain policy;
``compare(fn, *args, policies=[...])`` through a function of arrays (every argument
differentiated) under each graph policy. store_all runs first as the reference: each row gives
the forward evaluations, the forward cost over store_all's, the Meter's peak of activation bytes
(and its split by kind), the wall time, and the largest gradient difference from store_all's (0:
bit for bit). A policy that refuses (a budget below its least) gets a row saying why. The rows
print as a table (``print(rows)``) or become dicts (``rows.to_dicts()``) for a data frame.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..chains import policies as chain_policies
from ..chains.backprop import backprop
from ..chains.chain import Chain, Stage
from ..errors import ArgumentError, BudgetError, ExperimentError
from ..graphs import policies as graph_policies
from ..graphs.backprop import backprop_graph
from ..engine.trees import flatten
from .points import largest_difference

BUDGETS = ("budget_bytes", "budget_fraction", "slots", "segments", "store_budget_bytes")
Configuration = tuple[str, dict[str, Any]]


def budget_for_all(configurations: list[Configuration], budget: int | None, family: str,
                   option: str = "budget_bytes", among: str = "policies"
                   ) -> list[Configuration]:
    """``budget_bytes=budget`` for each configuration whose policy takes a byte budget and was
    given no budget of its own; a budget no policy takes is refused, naming ``option`` and
    ``among`` (the command line says ``--budget`` and ``--policies``)."""
    if budget is None:
        return configurations
    spec = graph_policies.get_policy if family == "graph" else chain_policies.get_policy
    chosen = []
    for name, params in configurations:
        takes = "budget_bytes" in {p.name for p in spec(name).parameters}
        given = any(key in params for key in BUDGETS)
        chosen.append((name, {**params, "budget_bytes": budget} if takes and not given
                       else params))
    if chosen == configurations:
        raise ExperimentError(f"{option} applies to no policy of {among} (none takes "
                              "budget_bytes without a budget of its own); add one that does, "
                              "such as optimal")
    return chosen


@dataclass(frozen=True)
class Row:
    """One policy's run (``refused``: why it did not run; the numbers are None then).

    ``overhead`` is the forward cost over store_all's (chain stages cost 1 each; graph ops
    their traced costs, 1 each); bytes are the Meter's
    activation bytes; ``grad_diff`` the largest absolute difference from store_all's gradients.
    """

    policy: str
    params: dict[str, Any]
    forward_evals: int | None = None
    overhead: float | None = None
    peak_bytes: int | None = None
    peak_bytes_by_kind: dict[str, int] = field(default_factory=dict)
    wall_s: float | None = None
    grad_diff: float | None = None
    refused: str | None = None


class Comparison(tuple):
    """The rows of :func:`compare`, store_all's first; ``str()`` is an aligned table."""

    COLUMNS = ("policy", "params", "evals", "overhead", "peak bytes", "time s", "grad diff")

    def to_dicts(self) -> list[dict[str, Any]]:
        """One dict per row (e.g. for ``pandas.DataFrame``)."""
        return [asdict(row) for row in self]

    def __str__(self) -> str:
        cells = [self.COLUMNS] + [_cells(row) for row in self]
        widths = [max(len(line[k]) for line in cells) for k in range(len(self.COLUMNS))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                         for line in cells)


def _cells(row: Row) -> tuple[str, ...]:
    params = ", ".join(f"{k}={v}" for k, v in row.params.items()) or "-"
    if row.refused is not None:
        return (row.policy, params, "-", "-", "-", "-", f"refused: {row.refused}")
    return (row.policy, params, str(row.forward_evals), f"{row.overhead:.3f}",
            f"{row.peak_bytes:,}", f"{row.wall_s:.4f}", f"{row.grad_diff:g}")


def _configurations(policies: Sequence[str | Configuration]) -> list[Configuration]:
    found = []
    for entry in policies:
        name, params = (entry, {}) if isinstance(entry, str) else entry
        if not isinstance(name, str) or not isinstance(params, dict):
            raise ArgumentError(f"compare: each policy is a name or a (name, params dict) pair, "
                                f"got {entry!r:.60}")
        found.append((name, dict(params)))
    return found


def compare(target: Chain | Sequence[Stage] | Callable[..., Any], *args: Any,
            policies: Sequence[str | Configuration] = ("recompute_all", "optimal"),
            budget_bytes: int | None = None, seed: int = 0) -> Comparison:
    """Run ``policies`` (names, or ``(name, params)`` pairs) on ``target`` and store_all, side by
    side (module docstring). ``target`` is a chain (``args`` = its input ``x0``) or a function
    of arrays returning a scalar (``args`` = its arguments, all differentiated).
    ``budget_bytes`` goes to every policy that takes one and has no budget of its own (like
    ``compare --budget``)."""
    chain = target if isinstance(target, Chain) else (
        Chain(target) if isinstance(target, (list, tuple)) else None)
    if chain is None and not callable(target):
        raise ArgumentError(f"compare: target must be a Chain, a list of stages or a function, "
                            f"got {type(target).__name__}")
    family = "graph" if chain is None else "chain"
    configurations = budget_for_all(_configurations(policies), budget_bytes, family)
    run = (_chain_runner(chain, args, seed) if chain is not None
           else _graph_runner(target, args, seed))
    reference = run("store_all", {})
    rows = [_row("store_all", {}, reference, reference)]
    for name, params in configurations:
        if name == "store_all" and not params:
            continue
        try:
            rows.append(_row(name, params, run(name, params), reference))
        except BudgetError as refusal:
            rows.append(Row(name, params, refused=str(refusal)))
    return Comparison(rows)


def _chain_runner(chain: Chain, args: tuple, seed: int) -> Callable[[str, dict], tuple]:
    if len(args) != 1:
        raise ArgumentError(f"compare: a chain takes one argument, its input x0; got {len(args)}")

    def run(name: str, params: dict) -> tuple:
        result = backprop(chain, args[0], policy=name, seed=seed, trace_memory=False, **params)
        gradients = [result.grad_input] + flatten(result.grad_params)[0]
        return result.stats, result.stats.forward_evals, gradients  # stages cost 1 each
    return run


def _graph_runner(fn: Callable[..., Any], args: tuple, seed: int) -> Callable[[str, dict], tuple]:
    every = tuple(range(len(args)))

    def run(name: str, params: dict) -> tuple:
        result = backprop_graph(fn, *args, argnums=every, policy=name, seed=seed,
                                trace_memory=False, **params)
        return result.stats, result.stats.cost, flatten(list(result.grads))[0]
    return run


def _row(name: str, params: dict, ran: tuple, reference: tuple) -> Row:
    stats, cost, gradients = ran
    return Row(name, params, stats.forward_evals, cost / reference[1], stats.peak_bytes,
               dict(stats.peak_bytes_by_kind), stats.wall_s,
               largest_difference(gradients, reference[2]))
