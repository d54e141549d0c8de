"""CheckpointedSequential against what a torch user would pick instead, on three torch models.

Models (plain torch, built from a seed, no downloads; float32): a deep MLP (Linear-Tanh
stages), a ResNet-style stack of convolutional residual blocks, a GPT-style stack of
transformer blocks (causal attention, layer norm, MLP). Loss ``sum(y²)``.

Side by side, for each model, in one process (one after another, never two at once):

* ``plain``: plain torch autograd (stores everything);
* ``ckpt_seq sqrt``: ``torch.utils.checkpoint.checkpoint_sequential(..., use_reentrant=False)``
  with ceil(sqrt(n)) segments, the usual choice (the function has no default);
* ``ckpt_seq best``: among 2, 3, 4, 6 and 8 segments (profiling every count is slow), the one
  whose measured activation peak is the lowest;
* ``optimal =mem(X)``: this package's ``optimal`` with the largest ``budget_bytes`` whose
  *predicted* activation peak (Meter, before running) is at most X's measured one — the same
  memory, fewer evaluations;
* ``optimal =evals(X)``: the smallest budget whose plan evaluates no more stages than X —
  the same recomputation, less memory;
* ``optimal +offload =mem(sqrt)``: ``optimal`` at the budget of ``optimal =mem(sqrt)`` with
  ``--bandwidth`` (bytes per second, default 12e9: PCIe 3.0 x16) on measured stage times, so
  that tapes and checkpoints may move to host memory (docs/chain_offload.md; pinned memory and
  a side stream on CUDA, a second buffer on the CPU, where it shows the copies' cost only).

Measured the same way for every configuration: ``time`` is the median of ``--repeats`` steps
(forward + backward, gradients set to None before each) after a warm-up; ``evals`` counts stage
forward calls with forward pre-hooks; ``act peak`` is torch's own activation memory at its peak
during one step: on the CPU from the profiler's categorized memory timeline (input + activation +
autograd_detail: the input, saved tensors, checkpoints, cotangents; ``alloc peak`` adds op
temporaries: every tensor byte but parameters and gradients), on CUDA
``torch.cuda.max_memory_allocated`` over the step's start (gradients included, so ``act peak``
is not split there). Not a test: nothing is asserted.

    PYTHONPATH=. python benchmarks/torch_models.py [--repeats 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import datetime
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

MIB = 2.0 ** 20
SEGMENT_COUNTS = (2, 3, 4, 6, 8)
MODELS = {  # name: (builder arguments, input shape)
    "mlp": ("mlp", dict(depth=16, width=256), (64, 256)),
    "resnet": ("residual_net", dict(depth=12, channels=16), (4, 16, 16, 16)),
    "gpt": ("gpt", dict(depth=8, width=128, heads=4), (4, 64, 128)),
}


def build(name: str, device: str) -> tuple[list[Any], Any]:
    import torch
    from checkpoint_ad.torch import models
    builder, arguments, shape = MODELS[name]
    stages = [s.to(device) for s in getattr(models, builder)(**arguments, seed=0)]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1)).to(device)
    return stages, x


def count_evaluations(stages: list[Any]) -> list[int]:
    counter = [0]
    for stage in stages:
        stage.register_forward_pre_hook(lambda module, inputs: counter.__setitem__(
            0, counter[0] + 1))
    return counter


def activation_peak(step: Callable[[], Any], device: str) -> tuple[int, int]:
    """(act peak, alloc peak) of one step, bytes (see the module docstring)."""
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - start
        return peak, peak
    from vs_torch import torch_activation_peak
    metered, allocated, _ = torch_activation_peak(step)
    return metered, allocated


def measure(model: Any, stages: list[Any], x: Any, counter: list[int], repeats: int,
            device: str) -> dict[str, Any]:
    """Time, evaluations and peaks of ``sum(model(x)²)`` steps."""
    import torch

    def step() -> None:
        for stage in stages:
            stage.zero_grad(set_to_none=True)
        model(x).square().sum().backward()

    def synced() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    step()  # warm-up (and, for ours, profiling and planning)
    counter[0] = 0
    step()
    evaluations = counter[0]
    times = []
    for _ in range(repeats):
        began = synced()
        step()
        times.append(synced() - began)
    act, alloc = activation_peak(step, device)
    return {"time": statistics.median(times), "evals": evaluations, "act": act, "alloc": alloc}


def checkpointed(segments: int, stages: list[Any]) -> Callable[[Any], Any]:
    from torch.utils.checkpoint import checkpoint_sequential
    import torch
    sequential = torch.nn.Sequential(*stages)
    return lambda x: checkpoint_sequential(sequential, segments, x, use_reentrant=False)


def optimal(stages: list[Any], budget: int) -> Any:
    """This package's optimal policy (unit costs: the stages of each model are alike, and
    planning on unit costs keeps the plan independent of timing noise)."""
    from checkpoint_ad.torch import CheckpointedSequential
    return CheckpointedSequential(stages, "optimal", costs="unit", budget_bytes=budget)


def fit_budget(stages: list[Any], x: Any, accept: Callable[[Any], bool]) -> int | None:
    """The largest budget (bytes, to 0.5 %) whose prepared plan ``accept`` takes, ``accept``
    holding for small budgets and not for large ones; None if it fails at the least budget."""
    import dataclasses
    from checkpoint_ad import minimum_budget
    from checkpoint_ad.torch import profile
    costs = profile(stages, x)
    unit = dataclasses.replace(costs, compute=(1.0,) * costs.n, backward_costs=())
    low = max(costs.state_bytes[0] + costs.tape_bytes[-1], minimum_budget(unit))
    high = low + sum(costs.tape_bytes)
    if not accept(optimal(stages, low).prepare(x)):
        return None
    while high - low > max(1, low // 200):
        middle = (low + high) // 2
        if accept(optimal(stages, middle).prepare(x)):
            low = middle
        else:
            high = middle
    return low


def run_model(name: str, repeats: int, device: str, bandwidth: float = 12e9
              ) -> list[dict[str, Any]]:
    import torch
    stages, x = build(name, device)
    counter = count_evaluations(stages)
    n = len(stages)
    rows = [{"config": "plain", **measure(torch.nn.Sequential(*stages), stages, x, counter,
                                           repeats, device)}]
    sqrt_segments = math.ceil(math.sqrt(n))
    scanned = {s: measure(checkpointed(s, stages), stages, x, counter, 1, device)
               for s in SEGMENT_COUNTS if s <= n}
    best = min(scanned, key=lambda s: (scanned[s]["act"], s))
    for label, segments in (("sqrt", sqrt_segments), ("best", best)):
        row = measure(checkpointed(segments, stages), stages, x, counter, repeats, device)
        rows.append({"config": f"ckpt_seq {label} ({segments} seg)", **row})
    for target in rows[1:3]:
        label = target["config"].split(" (")[0].replace("ckpt_seq ", "")
        budgets = {
            f"optimal =mem({label})": fit_budget(
                stages, x, lambda p, t=target: p.predicted.peak <= t["act"]),
            f"optimal =evals({label})": _least_budget(stages, x, target["evals"]),
        }
        for config, budget in budgets.items():
            if budget is None:
                rows.append({"config": config, "time": None})
                continue
            model = optimal(stages, budget)
            rows.append({"config": config, "budget": budget,
                         **measure(model, stages, x, counter, repeats, device)})
    budget = next((row.get("budget") for row in rows if row["config"] == "optimal =mem(sqrt)"),
                  None)
    if budget is not None:
        from checkpoint_ad.torch import CheckpointedSequential
        model = CheckpointedSequential(stages, "optimal", budget_bytes=budget,
                                       bandwidth=bandwidth)
        rows.append({"config": "optimal +offload =mem(sqrt)", "budget": budget,
                     **measure(model, stages, x, counter, repeats, device)})
    return rows


def _least_budget(stages: list[Any], x: Any, evaluations: int) -> int | None:
    """The smallest budget whose plan evaluates at most ``evaluations`` stages."""
    from checkpoint_ad.torch import profile
    costs = profile(stages, x)
    everything = costs.state_bytes[0] + sum(costs.tape_bytes)
    fitted = fit_budget(stages, x, lambda p: p.plan.forward_evals > evaluations)
    if fitted is None:  # even the least budget evaluates few enough
        return costs.state_bytes[0] + costs.tape_bytes[-1]
    return min(everything, fitted + max(1, fitted // 200))


def print_table(name: str, rows: list[dict[str, Any]]) -> None:
    """One model's rows; ratios are to plain torch."""
    plain = rows[0]
    print(f"\n{name}")
    header = (f"{'configuration':<30}{'time ms':>9}{'x plain':>8}{'evals':>7}"
              f"{'act peak MiB':>14}{'x plain':>8}{'alloc peak MiB':>16}")
    print(header + "\n" + "-" * len(header))
    sys.stdout.flush()
    for row in rows:
        if row.get("time") is None:
            print(f"{row['config']:<30}  (no budget fits)")
            continue
        budget = f"  budget {row['budget'] / MIB:.2f} MiB" if "budget" in row else ""
        print(f"{row['config']:<30}{row['time'] * 1e3:>9.1f}{row['time'] / plain['time']:>8.2f}"
              f"{row['evals']:>7}{row['act'] / MIB:>14.2f}{row['act'] / plain['act']:>8.2f}"
              f"{row['alloc'] / MIB:>16.2f}{budget}", flush=True)


def summary(name: str, rows: list[dict[str, Any]]) -> list[str]:
    """Plain-text lines: optimal against each checkpoint_sequential row, at its memory (time
    and evaluations) and at its evaluations (memory)."""
    by_config = {row["config"].split(" (")[0]: row for row in rows}
    lines = []
    for label in ("sqrt", "best"):
        torch_row = by_config[f"ckpt_seq {label}"]
        at_memory = by_config[f"optimal =mem({label})"]
        at_evals = by_config[f"optimal =evals({label})"]
        if at_memory.get("time") is not None:
            lines.append(f"{name}: at checkpoint_sequential {label}'s memory, optimal takes "
                         f"{at_memory['time'] / torch_row['time']:.2f}x its time "
                         f"({at_memory['evals']} evaluations against {torch_row['evals']}), in "
                         f"{at_memory['act'] / torch_row['act']:.2f}x its activation peak")
        if at_evals.get("time") is not None:
            lines.append(f"{name}: at checkpoint_sequential {label}'s evaluations, optimal holds "
                         f"{at_evals['act'] / torch_row['act']:.2f}x its activation peak "
                         f"({at_evals['evals']} evaluations against {torch_row['evals']}), in "
                         f"{at_evals['time'] / torch_row['time']:.2f}x its time")
    return lines


def main(argv: list[str] | None = None, device: str = "cpu") -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--bandwidth", type=float, default=12e9,
                        help="bytes per second between device and host (the offload row)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install -e \".[torch]\" from a clone); nothing to do.")
        return 0
    torch.set_num_threads(args.threads)
    print(f"{platform.node()} ({platform.machine()}, {torch.get_num_threads()} threads), "
          f"torch {torch.__version__}, {device}, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"command: {' '.join(sys.argv)}", flush=True)
    lines = []
    for name in args.models:
        rows = run_model(name, args.repeats, device, args.bandwidth)
        print_table(name, rows)
        lines += summary(name, rows)
    print("\nsummary (ratios to checkpoint_sequential):\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
