"""The cut points of a graph: where it splits into a sequence of blocks (the hierarchical
``optimal``, :mod:`.block_options`).

A **cut** is an op c such that no edge jumps over it: every op after c reads only ops from c
on (inputs are pinned and do not count). Consecutive cuts c_{t-1} < c_t bound **block t** =
the ops in (c_{t-1}, c_t]; the last cut is the output. Block t reads only its own ops, c_{t-1}
and inputs. A residual stack becomes one block per residual unit; a chain, one block per op; a
graph whose skips span everything (a U-Net's) stays few blocks.
"""
from __future__ import annotations

from ..costs import GraphCosts


def cuts(costs: GraphCosts) -> list[int]:
    """The cut ops in increasing order (the output, always a cut, last): c is a cut when no
    op before it has a consumer after it."""
    found, reach = [], -1
    for node in costs.op_nodes:
        if reach <= node:
            found.append(node)
        reach = max(reach, max(costs.consumers[node], default=node))
    return found
