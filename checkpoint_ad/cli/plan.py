"""The ``checkpoint-ad plan`` command: a policy's plan and its counts, printed without running
anything, for a chain of unit stages (``--n``) or a named chain or graph workload
(``--workload``), as text or JSON."""
from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

from ..chains import policies
from ..chains.backprop import plan as make_plan
from ..chains.chain import ChainProfile, profile_chain
from ..chains.replay import host_peak_bytes, plan_time
from ..chains.replay import predict_meter as predict_chain
from ..chains.plans import Plan
from ..errors import ExperimentError, PolicyError
from ..graphs import policies as graph_policies
from ..graphs.executor import predict_meter as predict_graph
from ..graphs.plans import GraphPlan
from ..lab.points import plain_params, planning_costs, store_all_peak
from ..lab.recommend import trace_program
from ..lab.spec_checks import check_combination, fraction_problem
from ..plans import limits
from ..workloads import chain_models
from ..workloads.graph_models import FAMILIES, GraphWorkload
from ..workloads.user import build_workload
from .options import (BYTES_HELP, add_graph_policy_options, add_policy_options, add_size_options, byte_count,
                      doing, given_options, given_sizes, new_command, number, positive_int,
                      registered_graph_policy_parameters, registered_policy_parameters)
from .output import write_json


MAX_STAGES = 10**12  # --n: more stages than any machine can plan (32 bytes each for the costs)
MAX_LISTED_STEPS = 10**6  # plan lists at most this many steps; --summary prints the counts


def stage_count(text: str) -> int:
    """``plan --n``: a positive whole number up to MAX_STAGES."""
    value = positive_int(text)
    if value > MAX_STAGES:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_STAGES:,} stages, got {text}")
    return value


def require_listable(args: argparse.Namespace, steps: int, what: str,
                     smaller: str = "a smaller --n") -> None:
    """Refuse (before anything is written) to list a plan of more than MAX_LISTED_STEPS steps;
    ``--summary`` prints its counts only. ``what`` leads the step count in the message."""
    if not args.summary and steps > MAX_LISTED_STEPS:
        raise PolicyError(f"plan: {what} {steps:,} steps, more than the {MAX_LISTED_STEPS:,} "
                          f"it lists at most; add --summary for its counts only, or plan "
                          f"{smaller}")


def _write_plan_json(plan: Plan, out: TextIO, extra: dict[str, Any]) -> None:
    """The plan as one JSON object, its actions written one by one as they are read."""
    head = {**extra, "policy": plan.policy, "n": plan.n, "params": dict(plan.params),
            "slots": plan.slots, "forward_evals": plan.forward_evals,
            "peak_stored": plan.peak_stored, "counts": plan.action_counts()}
    out.write(json.dumps(head)[:-1] + ', "actions": [')
    for index, step in enumerate(plan):
        out.write(f'{", " if index else ""}{{"action": "{step.action.value}", '
                  f'"stage": {step.stage}, "end": {step.end}}}')
    out.write("]}\n")


def command_plan(args: argparse.Namespace, out: TextIO) -> int:
    """``plan``: every form (``--n``, a chain or a graph ``--workload``) plans under
    ``--planner-memory``."""
    with limits.limited(memory_bytes=args.planner_memory):
        if args.workload is not None:
            return plan_workload(args, out)
        return _plan_unit_chain(args, out)


def _plan_unit_chain(args: argparse.Namespace, out: TextIO) -> int:
    """``plan --n N``: a chain of N unit stages."""
    if args.n is None:
        raise PolicyError("plan: give --n (a chain of n unit stages) or --workload (a chain or "
                          "graph workload, see `checkpoint-ad list`)")
    for option in ("family", "budget_fraction", "size"):
        if getattr(args, option) is not None:
            raise PolicyError(f"plan: --{option.replace('_', '-')} applies with --workload "
                              f"only; a chain of n unit stages takes --budget or --slots")
    params = with_budget(args, given_options(args, list(registered_policy_parameters())), None)
    check_combination(args.policy, params)
    with doing(f"planning {args.policy} for n={args.n}"):
        policies.check_fits(args.policy, args.n, **params)
        require_listable(args, args.n, f"a plan for n={args.n:,} has at least")
        chosen = make_plan(args.policy, n=args.n, **params)
    return write_plan(args, chosen, out)


def write_plan(args: argparse.Namespace, chosen: Plan, out: TextIO,
               extra: dict[str, Any] | None = None) -> int:
    """Print a chain plan as ``plan`` does (``--json``, ``--summary``); ``extra`` entries lead
    the JSON object."""
    extra = extra or {}
    require_listable(args, len(chosen), f"this {chosen.policy} plan has")
    if args.json:
        if args.summary:
            data = {**extra, "policy": chosen.policy, "n": chosen.n,
                    "params": dict(chosen.params), "slots": chosen.slots,
                    "forward_evals": chosen.forward_evals, "peak_stored": chosen.peak_stored,
                    "counts": chosen.action_counts()}
            return write_json(data, out)
        _write_plan_json(chosen, out, extra)
        return 0
    out.write(chosen.headline() + "\n")
    if not args.summary:
        for line in chosen.lines():
            out.write(line + "\n")
    counts = chosen.action_counts()
    out.write("steps by action: " + ", ".join(f"{a} {c}" for a, c in counts.items()) + "\n")
    return 0


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
        problem = fraction_problem(args.budget_fraction, "--budget-fraction")
        if problem:
            raise ExperimentError(f"plan: {problem}")
        params["budget_bytes"] = max(1, int(args.budget_fraction * store_all()))
    return params


def plan_workload(args: argparse.Namespace, out: TextIO) -> int:
    """``plan --workload W``: the plan of a chain workload's own costs (chain policies) or of a
    graph workload's traced graph (graph policies); W is registered or a user's
    ``FILE.py:FUNCTION``."""
    with doing(f"building the workload {args.workload}"):
        built = build_workload(args.workload, given_sizes(args, n=args.n), family=args.family)
    if isinstance(built, GraphWorkload):
        return _plan_graph(args, built, out)
    return _plan_chain(args, built, out)


def _policy_params(args: argparse.Namespace) -> dict[str, Any]:
    """The policy parameters given, of either family (the planner refuses those its policy
    does not take, listing the accepted ones)."""
    names = dict.fromkeys([*registered_policy_parameters(),
                           *registered_graph_policy_parameters()])
    return given_options(args, list(names))


def _plan_graph(args: argparse.Namespace, built: GraphWorkload, out: TextIO) -> int:
    params = _policy_params(args)
    graph_policies.get_policy(args.policy).check_params(**params)
    with doing(f"tracing the graph workload {args.workload}"):
        program = trace_program(built)
    costs = program.costs
    params = with_budget(args, params, lambda: graph_policies.plan_graph("store_all", costs)
                     .peak_bytes)
    ops = len(costs.op_nodes)  # each computed once at least
    require_listable(args, ops, f"a plan of this graph of {ops:,} ops has at least",
                     "smaller sizes")
    with doing(f"planning {args.policy} for {args.workload}"):
        plan = graph_policies.plan_graph(args.policy, costs, **params)
    require_listable(args, len(plan.steps), f"this {plan.policy} plan has", "smaller sizes")
    predicted = predict_graph(program, plan).peak
    if args.json:
        return write_json(_graph_json(args.workload, built.sizes, plan, costs,
                                  predicted, not args.summary), out)
    out.write(str(plan).splitlines()[0] + "\n")
    if not args.summary:
        width = len(str(len(plan.steps)))
        for index, step in enumerate(plan.steps):
            out.write(f"  {index:>{width}}  {step} ({costs.ops[step.node]})\n")
    moving = {"time": plan.time, "host_peak_bytes": plan.host_peak_bytes}
    words = _offload_words(moving) if "bandwidth" in plan.params else ""
    out.write(f"{args.workload} traced: {len(costs.op_nodes)} ops, {len(costs)} nodes; "
              f"predicted peak (the executor on placeholders) {predicted:,} bytes{words}\n")
    return 0


def _graph_json(workload: str, sizes: Mapping[str, Any], plan: GraphPlan, costs: Any,
                predicted: int, steps: bool) -> dict[str, Any]:
    data = {"workload": workload, "family": "graph", "sizes": dict(sizes),
            "policy": plan.policy, "params": plain_params({
                k: list(v) if isinstance(v, tuple) else v for k, v in plan.params.items()}),
            "method": plan.method, "status": plan.status, "lower_bound": plan.lower_bound,
            "gap": plan.gap, "solve_s": plan.solve_s, "forward_evals": plan.forward_evals,
            "cost": plan.cost, "peak_bytes": plan.peak_bytes, "time": plan.time,
            "host_peak_bytes": plan.host_peak_bytes,
            "predicted_peak_bytes": predicted, "nodes": len(costs),
            "parents": [list(p) for p in costs.parents], "ops": list(costs.ops),
            "sizes_bytes": list(costs.sizes), "residuals": [list(r) for r in costs.residuals],
            "differentiable": list(costs.differentiable)}
    if steps:
        data["steps"] = [[step.action.value, step.node] for step in plan.steps]
    return data


def _plan_chain(args: argparse.Namespace, workload: chain_models.Workload, out: TextIO
                ) -> int:
    profiles: list[ChainProfile] = []

    def profile() -> ChainProfile:  # one taped sweep, when first needed
        if not profiles:
            with doing(f"profiling the chain workload {args.workload}"):
                profiles.append(profile_chain(workload.chain, workload.x0, 0))
        return profiles[0]

    params = with_budget(args, _policy_params(args), lambda: store_all_peak(profile()))
    check_combination(args.policy, params)
    policies.get_policy(args.policy).check_params(**params)
    with doing(f"planning {args.policy} for {args.workload}"):
        costs = profile().costs(planning_costs(workload, "model"))
        plan = policies.make_plan(args.policy, costs, **params)
    predicted = predict_chain(plan, costs).peak
    extra = {"workload": args.workload, "family": "chain", "sizes": dict(workload.sizes),
             "predicted_peak_bytes": predicted}
    moving = "bandwidth" in dict(plan.params)
    if moving:  # docs/chain_offload.md
        extra.update(time=plan_time(plan, costs), host_peak_bytes=host_peak_bytes(plan, costs))
    write_plan(args, plan, out, extra)
    if not args.json:
        words = _offload_words(extra) if moving else ""
        out.write(f"{args.workload}: {plan.n} stages; predicted peak (the executor on "
                  f"placeholders) {predicted:,} bytes{words}\n")
    return 0


def _offload_words(numbers: Mapping[str, Any]) -> str:
    """The predicted time (cost units) and host peak of a plan given a bandwidth."""
    return (f"; time {numbers['time']:g} cost units; host peak "
            f"{numbers['host_peak_bytes']:,} bytes")


def add_plan_command(commands: Any) -> None:
    """The ``plan`` command's arguments."""
    plan = new_command(
        commands, "plan", "print a policy's plan and its counts, without running anything",
        "Print the plan a policy makes, one action per line, with its counts: for a chain of "
        "n unit stages (--n), or for a named workload (--workload): a chain workload is "
        "profiled and planned by a chain policy with its own stage sizes and costs, a graph "
        "workload traced and planned by a graph policy.",
        "  checkpoint-ad plan --policy revolve --n 20 --slots 3\n"
        "  checkpoint-ad plan --policy sqrt_n --n 100 --json\n"
        "  checkpoint-ad plan --workload mlp --policy optimal --budget 300KiB\n"
        "  checkpoint-ad plan --workload residual --family graph --n 4 --policy optimal "
        "--budget-fraction 0.5 --json\n"
        "  checkpoint-ad plan --workload model.py:build --size n=8 --policy revolve --slots 3")
    plan.add_argument("--policy", required=True, help="a registered policy (see `list`): a "
                      "chain policy for --n and chain workloads, a graph policy for graph "
                      "workloads")
    plan.add_argument("--n", type=stage_count,
                      help=f"number of stages of a chain of unit stages (at most "
                           f"{MAX_STAGES:,}); with --workload, the workload's size n")
    plan.add_argument("--workload", help="plan a registered workload instead (see `list`), or "
                      "your own: FILE.py:FUNCTION or MODULE:FUNCTION, sized by --size KEY=VALUE "
                      "(docs/your_own_model.md)")
    plan.add_argument("--family", choices=FAMILIES,
                      help="the registry of --workload, for a name in both (residual means "
                           "the chain unless --family graph); your own workload's family is "
                           "what its function returns")
    plan.add_argument("--budget", type=byte_count, metavar="BYTES",
                      help=f"the policy's budget_bytes; {BYTES_HELP}")
    plan.add_argument("--budget-fraction", type=number, metavar="F",
                      help="budget_bytes as a fraction in (0, 1] of store_all's bytes (graph: its peak; "
                           "chain workload: its checkpoints and tapes, as in experiments)")
    plan.add_argument("--json", action="store_true",
                      help="print one JSON object: forward_evals, peak_stored, actions, ... "
                           "(graph: cost, peak_bytes, steps, parents, ops, ...)")
    plan.add_argument("--summary", action="store_true",
                      help=f"print the counts without the steps (plans of more than "
                           f"{MAX_LISTED_STEPS:,} steps are only summarized)")
    plan.add_argument("--planner-memory", type=byte_count, metavar="BYTES",
                      help=f"refuse, before planning, what the planner estimates to need more "
                           f"than BYTES for (default: half of this machine's memory); "
                           f"{BYTES_HELP}")
    add_policy_options(plan)
    add_graph_policy_options(plan)
    add_size_options(plan, skip=("n",))
