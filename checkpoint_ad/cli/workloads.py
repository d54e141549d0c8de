"""The ``checkpoint-ad`` commands on named workloads, planned without running them:
``recommend`` (the cheapest plan under a budget, across every policy of both families) and
``plan --workload`` (one policy's plan for a chain or graph workload). The parser is in
:mod:`checkpoint_ad.cli.main`."""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from ..chains import policies
from ..chains.chain import ChainProfile, profile_chain
from ..chains.executor import predict_meter as predict_chain
from ..errors import ExperimentError
from ..graphs import policies as graph_policies
from ..graphs.executor import predict_meter as predict_graph
from ..graphs.plans import GraphPlan
from ..lab import graph_models, models
from ..lab.measure import planning_costs, plain_params, store_all_bytes
from ..lab.recommend import Candidate, Recommendation, recommend, trace_program
from ..lab.specs import check_combination
from .options import (doing, given_options, registered_graph_policy_parameters,
                      registered_policy_parameters, registered_sizes)


# -- recommend -------------------------------------------------------------------------------------

class Progress:
    """``planning done/total: next``, rewritten in place on stderr when it is a terminal and
    a moment has passed (a quick answer, or output to a file or pipe, gets none)."""

    def __init__(self, stream: TextIO | None = None, after_s: float = 1.0) -> None:
        self.stream, self.after_s = stream or sys.stderr, after_s
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started, self.shown = time.perf_counter(), False

    def __call__(self, done: int, total: int, following: str) -> None:
        if not self.tty or time.perf_counter() - self.started < self.after_s:
            return
        if done == total:
            self.stream.write("\r" + " " * 60 + "\r" if self.shown else "")
        else:
            self.stream.write("\r" + f"planning {done}/{total}: {following}"[:60].ljust(60))
            self.shown = True
        self.stream.flush()


def _bytes(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _params(candidate: Candidate, budget: int) -> str:
    """The parameters, but a budget_bytes equal to the budget asked for."""
    shown = {k: v for k, v in candidate.params.items()
             if not (k == "budget_bytes" and v == budget)}
    return ", ".join(f"{k}={','.join(v) if isinstance(v, tuple) else v}"
                     for k, v in shown.items()) or "-"


RECOMMEND_COLUMNS = ("rank", "family", "policy", "params", "predicted peak", "overhead",
                     "evals", "solve s", "skipped because")


def _rows(found: Recommendation) -> list[tuple[str, ...]]:
    rows = []
    for rank, c in enumerate(found.candidates, 1):
        rows.append((str(rank) if c.fits else "-", c.family, c.policy,
                     _params(c, found.budget_bytes),
                     _bytes(c.peak_bytes), "-" if c.overhead is None else f"{c.overhead:.3f}",
                     "-" if c.forward_evals is None else f"{c.forward_evals:,}",
                     f"{c.solve_s:.2f}", c.skipped or ""))
    return rows


def _table(rows: list[tuple[str, ...]], columns: tuple[str, ...]) -> str:
    widths = [max(len(str(row[k])) for row in [columns, *rows]) for k in range(len(columns))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [columns, tuple("-" * w for w in widths), *rows]]
    return "\n".join(lines)


def command_recommend(args: argparse.Namespace, out: TextIO) -> int:
    sizes = given_options(args, sorted(registered_sizes()))
    chosen = None if args.policies is None else [
        name.strip() for name in args.policies.split(",") if name.strip()]
    progress = None if args.no_progress else Progress()
    with doing(f"planning every policy for {args.workload}"):
        found = recommend(args.workload, sizes, args.budget, args.family, args.seed,
                          args.dtype, args.costs, chosen, args.time_limit, progress)
    best = found.require_best()  # nothing fits: one line naming the least peak, exit 2
    if args.json:
        return _write(found.to_dict(), out)
    described = ", ".join(f"{k}={v}" for k, v in found.sizes.items())
    out.write(f"{found.workload} ({found.family} workload; {described}) under "
              f"{found.budget_bytes:,} bytes of predicted activation peak:\n"
              f"best: {best.family} {best.policy} ({_params(best, found.budget_bytes)}), "
              f"predicted peak "
              f"{best.peak_bytes:,} bytes, overhead {best.overhead:.3f}x store_all's forward "
              f"cost, {best.forward_evals:,} forward evaluations\n\n")
    out.write(_table(_rows(found), RECOMMEND_COLUMNS) + "\n")
    return 0


# -- plan --workload -------------------------------------------------------------------------------

def with_budget(args: argparse.Namespace, params: dict[str, Any], store_all: Any
                ) -> dict[str, Any]:
    """``params`` with ``--budget`` or ``--budget-fraction`` (of ``store_all()`` bytes) as
    ``budget_bytes``."""
    given = [name for name, value in (("--budget", args.budget),
                                      ("--budget-bytes", params.get("budget_bytes")),
                                      ("--budget-fraction", args.budget_fraction))
             if value is not None]
    if len(given) > 1:
        raise ExperimentError(f"plan: {' and '.join(given)} are two budgets; give one of them")
    if args.budget is not None:
        params["budget_bytes"] = args.budget
    if args.budget_fraction is not None:
        if not 0 < args.budget_fraction:
            raise ExperimentError(f"plan: --budget-fraction must be a number > 0 (a fraction "
                                  f"of store_all's bytes), got {args.budget_fraction}")
        params["budget_bytes"] = max(1, int(args.budget_fraction * store_all()))
    return params


def plan_workload(args: argparse.Namespace, out: TextIO) -> int:
    """``plan --workload W``: the plan of a chain workload's own costs (chain policies) or of a
    graph workload's traced graph (graph policies)."""
    family = graph_models.workload_family(args.workload, args.family)
    sizes = given_options(args, sorted(registered_sizes()))
    if args.n is not None:
        sizes["n"] = args.n
    if family == "graph":
        return _plan_graph(args, sizes, out)
    return _plan_chain(args, sizes, out)


def _policy_params(args: argparse.Namespace) -> dict[str, Any]:
    """The policy parameters given, of either family (the planner refuses those its policy
    does not take, listing the accepted ones)."""
    names = dict.fromkeys([*registered_policy_parameters(),
                           *registered_graph_policy_parameters()])
    return given_options(args, list(names))


def _plan_graph(args: argparse.Namespace, sizes: dict[str, Any], out: TextIO) -> int:
    params = _policy_params(args)
    graph_policies.get_policy(args.policy).check_params(**params)
    with doing(f"tracing the graph workload {args.workload}"):
        built = graph_models.build_graph(args.workload, sizes)
        program = trace_program(built)
    costs = program.costs
    params = with_budget(args, params, lambda: graph_policies.plan_graph("store_all", costs)
                     .peak_bytes)
    with doing(f"planning {args.policy} for {args.workload}"):
        plan = graph_policies.plan_graph(args.policy, costs, **params)
    predicted = predict_graph(program, plan).peak
    if args.json:
        return _write(_graph_json(args.workload, built.sizes, plan, costs,
                                  predicted, not args.summary), out)
    out.write(str(plan).splitlines()[0] + "\n")
    if not args.summary:
        width = len(str(len(plan.steps)))
        for number, step in enumerate(plan.steps):
            out.write(f"  {number:>{width}}  {step} ({costs.ops[step.node]})\n")
    out.write(f"{args.workload} traced: {len(costs.op_nodes)} ops, {len(costs)} nodes; "
              f"predicted peak (the executor on placeholders) {predicted:,} bytes\n")
    return 0


def _graph_json(workload: str, sizes: Mapping[str, Any], plan: GraphPlan, costs: Any,
                predicted: int, steps: bool) -> dict[str, Any]:
    data = {"workload": workload, "family": "graph", "sizes": dict(sizes),
            "policy": plan.policy, "params": plain_params({
                k: list(v) if isinstance(v, tuple) else v for k, v in plan.params.items()}),
            "method": plan.method, "status": plan.status, "lower_bound": plan.lower_bound,
            "gap": plan.gap, "solve_s": plan.solve_s, "forward_evals": plan.forward_evals,
            "cost": plan.cost, "peak_bytes": plan.peak_bytes,
            "predicted_peak_bytes": predicted, "nodes": len(costs),
            "parents": [list(p) for p in costs.parents], "ops": list(costs.ops),
            "sizes_bytes": list(costs.sizes), "residuals": [list(r) for r in costs.residuals],
            "differentiable": list(costs.differentiable)}
    if steps:
        data["steps"] = [[step.action.value, step.node] for step in plan.steps]
    return data


def _plan_chain(args: argparse.Namespace, sizes: dict[str, Any], out: TextIO) -> int:
    from .commands import write_plan  # the chain plan's text and JSON, as `plan --n` prints

    workload = models.build(args.workload, sizes)
    profiles: list[ChainProfile] = []

    def profile() -> ChainProfile:  # one taped sweep, when first needed
        if not profiles:
            with doing(f"profiling the chain workload {args.workload}"):
                profiles.append(profile_chain(workload.chain, workload.x0, 0))
        return profiles[0]

    params = with_budget(args, _policy_params(args), lambda: store_all_bytes(profile()))
    check_combination(args.policy, params)
    policies.get_policy(args.policy).check_params(**params)
    with doing(f"planning {args.policy} for {args.workload}"):
        plan = policies.make_plan(args.policy,
                                  profile().costs(planning_costs(workload, "model")), **params)
    predicted = predict_chain(plan, profile()).peak
    extra = {"workload": args.workload, "family": "chain", "sizes": dict(workload.sizes),
             "predicted_peak_bytes": predicted}
    write_plan(args, plan, out, extra)
    if not args.json:
        out.write(f"{args.workload}: {plan.n} stages; predicted peak (the executor on "
                  f"placeholders) {predicted:,} bytes\n")
    return 0


def _write(data: Any, out: TextIO) -> int:
    json.dump(data, out)
    out.write("\n")
    return 0
