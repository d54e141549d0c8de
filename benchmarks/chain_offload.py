"""POFO's headline on a chain: at the same device memory, offload removes a large part of the
recompute overhead (docs/chain_offload.md).

The chain: a transformer of ``--layers`` layers, each an attention stage and an MLP stage,
with ``--tokens`` tokens (batch x sequence, ``--sequence`` a sequence) of width ``--width``,
numbers of ``--element`` bytes, between an embedding stage and a head. Costs are GPU
milliseconds at ``--tflops`` sustained (one cost unit = 1 ms):

* attention: 8·T·d² + 4·T·s·d flops (projections, and scores and values with flash attention:
  no s² probabilities kept); tape 6 states (the input, its norm, Q, K, V, the attention out);
* MLP: 16·T·d² flops (d -> 4d -> d); tape 9 states (the input, its norm, 4d before and after
  the activation);
* embedding: a lookup, 0.1 ms, tape 1 state; head: 2·T·d·vocab flops, tape 1 state plus the
  logits (T·vocab, fp16).

Backward steps take twice their stage (the model's default). The bandwidth is PCIe-like,
``--pcie`` GB/s per direction: bytes per cost unit = GB/s x 1e9 x 1e-3 (12 GB/s = 1.2e7 bytes
per ms). The defaults are POFO's setting: a BERT-large-like model (width 1024, 8 sequences of
512 tokens, fp32) on a V100 (14 TFLOP/s sustained) over PCIe 3.0 x16 (12 GB/s). What matters
is the ratio of a stage's transfer time to its compute time: an activation of T·d numbers
moves in T·d·e / bandwidth and a dense layer on it computes in 2·T·d² / flops, a ratio of
e·flops / (2·d·bandwidth): 2.3 here; on an A100 in fp16 (100 TFLOP/s sustained, width 2048,
PCIe 4.0 at 25 GB/s: ``--element 2 --tflops 100 --width 2048 --tokens 8192 --sequence 2048
--pcie 25``) it is 2.0, the same regime. The table compares, at 30%, 40% and 50% of store_all's whole peak, the least time
of recompute-only ``optimal`` against ``optimal(bandwidth=...)``: the overhead over store_all's
time, and how much of it offload removes. Planning only: nothing runs on a GPU here.

    PYTHONPATH=. python benchmarks/chain_offload.py [--layers 8] [--pcie 25] [--tflops 100]
"""
from __future__ import annotations

import argparse
import time

import checkpoint_ad as ca
from checkpoint_ad.chains.replay import host_peak_bytes, peak_bytes, plan_time


def transformer_chain(layers: int, tokens: int, width: int, sequence: int, vocab: int,
                      tflops: float, element: int = 2) -> ca.ChainCosts:
    """The chain's costs (ms) and sizes (bytes, ``element`` bytes a number), as the module
    docstring derives them."""
    state = tokens * width * element
    per_ms = tflops * 1e12 / 1e3
    attention = (8 * tokens * width ** 2 + 4 * tokens * sequence * width) / per_ms
    mlp = 16 * tokens * width ** 2 / per_ms
    head = 2 * tokens * width * vocab / per_ms
    compute = [0.1] + [attention, mlp] * layers + [head]
    tapes = [state] + [6 * state, 9 * state] * layers + [state + tokens * vocab * element]
    return ca.ChainCosts(len(compute), tuple(compute), (state,) * (len(compute) + 1),
                         tuple(tapes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--sequence", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=30522)
    parser.add_argument("--element", type=int, default=4, help="bytes a number")
    parser.add_argument("--tflops", type=float, default=14.0)
    parser.add_argument("--pcie", type=float, default=12.0, help="GB/s per direction")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.4, 0.5])
    args = parser.parse_args(argv)
    costs = transformer_chain(args.layers, args.tokens, args.width, args.sequence, args.vocab,
                              args.tflops, args.element)
    bandwidth = args.pcie * 1e9 * 1e-3
    store_all = ca.plan("store_all", costs=costs)
    full, base = peak_bytes(store_all, costs), plan_time(store_all, costs)
    print(f"chain: n={costs.n} stages, store_all: {base:.1f} ms, whole peak {full / 2**30:.2f} "
          f"GiB; bandwidth {args.pcie:g} GB/s = {bandwidth:.3g} bytes per ms")
    rows = []
    for fraction in args.fractions:
        budget = int(full * fraction)
        started = time.perf_counter()
        alone = ca.plan("optimal", costs=costs, budget_bytes=budget)
        moved = ca.plan("optimal", costs=costs, budget_bytes=budget, bandwidth=bandwidth)
        seconds = time.perf_counter() - started
        t_alone, t_moved = plan_time(alone, costs), plan_time(moved, costs)
        over_alone, over_moved = t_alone / base - 1, t_moved / base - 1
        removed = 1 - over_moved / over_alone if over_alone > 0 else 0.0
        rows.append((fraction, budget, t_alone, over_alone, t_moved, over_moved, removed,
                     peak_bytes(moved, costs), host_peak_bytes(moved, costs),
                     moved.action_counts().get("offload", 0), seconds))
    print(f"{'budget':>8} {'GiB':>6} {'recompute ms':>13} {'overhead':>9} {'offload ms':>11} "
          f"{'overhead':>9} {'removed':>8} {'peak GiB':>9} {'host GiB':>9} {'moves':>6} "
          f"{'plan s':>7}")
    for (fraction, budget, t_alone, over_alone, t_moved, over_moved, removed, peak, host,
         moves, seconds) in rows:
        print(f"{fraction:>8.0%} {budget / 2**30:>6.2f} {t_alone:>13.1f} {over_alone:>9.1%} "
              f"{t_moved:>11.1f} {over_moved:>9.1%} {removed:>8.0%} {peak / 2**30:>9.2f} "
              f"{host / 2**30:>9.2f} {moves:>6} {seconds:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
