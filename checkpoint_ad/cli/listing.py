"""The ``checkpoint-ad list`` command: the registered workloads with their sizes, the policies
with their parameters, and the shipped experiments."""
from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from typing import Any, TextIO

from ..chains import policies
from ..errors import CheckpointADError
from ..graphs import policies as graph_policies
from ..lab.specs import iter_experiments, load_experiment
from ..workloads import chain_models, graph_models
from .options import new_command


def _entry(out: TextIO, name: str, text: str, indent: int = 2) -> None:
    """``name`` then ``text`` wrapped to 100 columns, continuation lines aligned."""
    lead = " " * indent + (f"{name:<14}" if name else " " * 16)
    out.write(textwrap.fill(text, 100, initial_indent=lead,
                            subsequent_indent=" " * (len(lead) + (0 if name else 2))) + "\n")


def command_list(args: argparse.Namespace, out: TextIO) -> int:
    out.write("Workloads (checkpoint-ad compare --workload NAME --SIZE VALUE ...):\n")
    _list_workloads(out, chain_models.names(), chain_models.get_workload)
    out.write("\nPolicies (checkpoint-ad plan --policy NAME --PARAMETER VALUE ...):\n")
    _list_policies(out, policies.names(), policies.get_policy)
    out.write("\nGraph workloads (checkpoint-ad compare|plan|recommend --workload NAME "
              "[--family graph] --budget BYTES; a name that is also a chain workload needs "
              "--family graph; in Python: checkpoint_ad.workloads.graph_models.build_graph):\n")
    _list_workloads(out, graph_models.graph_names(), graph_models.get_graph_workload)
    out.write("\nYour own workload (docs/your_own_model.md): --workload FILE.py:FUNCTION or "
              "MODULE:FUNCTION, whose FUNCTION(**sizes) returns (chain, x0) or (fn, args), "
              "sized by --size KEY=VALUE ...\n")
    out.write("\nGraph policies (checkpoint-ad compare --workload unet --policies "
              "NAME:PARAMETER=VALUE,...; in Python: checkpoint_ad.plan_graph(NAME, costs, "
              "PARAMETER=VALUE) or backprop_graph(..., policy=NAME)):\n")
    _list_policies(out, graph_policies.names(), graph_policies.get_policy)
    out.write("\nExperiments (checkpoint-ad run NAME [--quick]):\n")
    for name, loaded in iter_experiments():
        if isinstance(loaded, CheckpointADError):
            _entry(out, name, f"(cannot be loaded: {loaded})")
            continue
        quick = len(load_experiment(name, quick=True).tasks())
        _entry(out, name, loaded.description)
        what = "; ".join(f"{'graph workloads' if part.family == 'graph' else 'workload'} "
                         f"{part.workload}" for part in (loaded, *loaded.parts))
        _entry(out, "", f"{what}, {len(loaded.tasks())} points ({quick} with --quick)")
    return 0


def _list_workloads(out: TextIO, names: Sequence[str], get: Any) -> None:
    for name in names:
        spec = get(name)
        _entry(out, name, spec.summary)
        for p in spec.parameters:
            choices = f"; one of {', '.join(p.choices)}" if p.choices else ""
            _entry(out, "", f"--{p.name} {p.default}: {p.help}{choices}")


def _list_policies(out: TextIO, names: Sequence[str], get: Any) -> None:
    for name in names:
        spec = get(name)
        _entry(out, name, spec.summary)
        for p in spec.parameters:
            default = "" if p.default is None else f", default {p.default}"
            _entry(out, "", f"{p.name} ({p.kind.__name__}{default}): {p.help}")


def add_list_command(commands: Any) -> None:
    """The ``list`` command's arguments."""
    new_command(commands, "list", "list workloads, policies (with parameters) and experiments",
             "List the registered workloads with their sizes, the policies with their "
             "parameters, and the shipped experiments.", "  checkpoint-ad list")
