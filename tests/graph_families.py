"""The graph families of docs/graph_model.md as GraphCosts (unit sizes and costs), and random
small DAGs with mixed residual kinds, costs and sizes."""
from __future__ import annotations

import random

from checkpoint_ad import GraphCosts


def _finish(parents: list, residuals: list, last: int) -> GraphCosts:
    parents.append((last,))
    residuals.append(())  # the loss (sum) saves nothing
    return GraphCosts(parents, [1] * len(parents), residuals=residuals)


def fig69_chain(n: int) -> GraphCosts:
    parents = [()] + [(t - 1,) for t in range(1, n + 1)]
    return _finish(parents, [()] + [(t - 1,) for t in range(1, n + 1)], n)


def tanh_mlp(n: int) -> GraphCosts:
    parents: list = [()] * (n + 1)  # x0, W_1..W_n
    residuals: list = [()] * (n + 1)
    h = 0
    for layer in range(1, n + 1):
        a = len(parents)
        parents.append((h, layer)); residuals.append((h, layer))
        h = len(parents)
        parents.append((a,)); residuals.append((h,))
    return _finish(parents, residuals, h)


def resnet(k: int) -> GraphCosts:
    parents: list = [()]
    residuals: list = [()]
    h = 0
    for _ in range(k):
        a = len(parents); parents.append((h,)); residuals.append((h,))
        b = len(parents); parents.append((a,)); residuals.append((a,))
        parents.append((b, h)); residuals.append(())
        h = len(parents) - 1
    return _finish(parents, residuals, h)


def unet(d: int) -> GraphCosts:
    parents: list = [()]
    residuals: list = [()]
    encoder = [0]
    for _ in range(d):
        parents.append((encoder[-1],)); residuals.append((encoder[-1],))
        encoder.append(len(parents) - 1)
    h = encoder[d]
    for j in range(d, 0, -1):
        s = len(parents); parents.append((h,)); residuals.append((h,))
        parents.append((s, encoder[j])); residuals.append((s, encoder[j]))
        h = len(parents) - 1
    return _finish(parents, residuals, h)


# name -> (graph, (store_all evals, peak), (recompute_all evals, peak), {budget: least cost})
GROUND_TRUTH = {
    "fig69_chain(6)": (fig69_chain(6), (7, 8), (22, 3),
                       {3: 22, 4: 12, 5: 10, 6: 9, 7: 8, 8: 7}),
    "tanh_mlp(3)": (tanh_mlp(3), (7, 6), (25, 3), {3: 19, 4: 11, 5: 9, 6: 7}),
    "resnet(3)": (resnet(3), (10, 8), (31, 5), {5: 15, 6: 12, 7: 11, 8: 10}),
    "unet(3)": (unet(3), (10, 11), (46, 7), {7: 16, 8: 14, 9: 12, 10: 11, 11: 10}),
}


def random_dag(ops: int, seed: int, inputs: int = 2) -> GraphCosts:
    """A random DAG of ``ops`` ops (plus a final sum of the dangling ones): each op reads 1-3
    of the 4 nodes before it and saves its inputs, its output, both or nothing."""
    draw = random.Random(seed)
    parents: list = [()] * inputs
    residuals: list = [()] * inputs
    for i in range(inputs, inputs + ops):
        window = list(range(max(0, i - 4), i))
        chosen = tuple(sorted(draw.sample(window, min(draw.choice([1, 1, 2, 3]), len(window)))))
        parents.append(chosen)
        kind = draw.choice(["inputs", "output", "both", "nothing"])
        residuals.append({"inputs": chosen, "output": (i,), "both": chosen + (i,),
                          "nothing": ()}[kind])
    read = {p for ps in parents for p in ps}
    parents.append(tuple(i for i in range(inputs, len(parents)) if i not in read))
    residuals.append(())
    sizes = [draw.choice([1, 2, 3]) for _ in parents]
    costs = [0] * inputs + [draw.choice([1, 2, 5]) for _ in range(ops + 1)]
    return GraphCosts(parents, sizes, costs, residuals)
