"""checkpoint_ad against PyTorch autograd and torch.utils.checkpoint on a dense MLP chain.

The chain: n layers x_t = tanh(x_{t-1} W_t + b_t), width 512, batch 256, loss = sum(x_n),
gradients for x_0 and every W_t, b_t. Same weights, same input, same loss in both engines.

Pairs compared (each configuration runs alone in a fresh Python process, one after another,
so peaks and allocator caches never leak from one into the next):

* our ``store_all``  vs  plain torch autograd (everything saved);
* our ``sqrt_n``     vs  ``checkpoint_sequential(model, ceil(sqrt(n)), x, use_reentrant=False)``.
  Not quite equal work: torch never recomputes its last segment (2n - L_last evaluations),
  while sqrt_n follows Chen et al. (2n);
* at equal memory, our ``optimal`` (``budget_bytes``) and ``revolve`` (``slots``), each given
  the largest budget whose activation peak still fits under the peak torch's checkpoint run
  showed (the mapping is explained in benchmarks/README.md and printed with the results).

Per configuration: median wall time of ``--repeats`` runs after one warm-up; forward
evaluations; memory three ways: our Meter's exact ``peak_bytes`` (activations only), the
activation peak each engine's own allocator shows (ours: tracemalloc over the run's baseline;
torch: the profiler's memory timeline, every category but parameters and ``.grad``; torch
allocations are invisible to tracemalloc), and the process's RSS increase (peak VmHWM over the
RSS after setup, parameter gradients included for both). Parameter bytes are printed apart.
Then one cProfile of our engine (n=64, float64, sqrt_n) summarized as shares.

BLAS threads are pinned to ``--threads`` (default 1) in both engines: on a shared 2-core
machine two-thread BLAS under foreign load is erratic. Not a test: nothing is asserted; only
the ratios measured side by side mean something, not the absolute times.

    PYTHONPATH=. python benchmarks/vs_torch.py                      # full grid, ~10 min here
    PYTHONPATH=. python benchmarks/vs_torch.py --n 16 64 --dtype float32 --repeats 3
"""
from __future__ import annotations

import argparse
import cProfile
import ctypes
import gc
import importlib.util
import json
import linecache
import math
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WIDTH, BATCH, SEED = 512, 256, 0
MARK = "@@result "
ROOT = Path(__file__).resolve().parent.parent
TORCH = ("torch_autograd", "torch_checkpoint")
MIB = 2.0 ** 20


# -- the workload, built the same way in every process -------------------------------------

def weights(n: int, dtype: str, width: int = WIDTH, batch: int = BATCH
            ) -> tuple[list[tuple[Any, Any]], Any]:
    """Layer weights (W_t of shape in x out, b_t) and the input x_0, from a fixed seed."""
    import numpy as np
    generator = np.random.default_rng(SEED)
    layers = [((generator.standard_normal((width, width)) / math.sqrt(width)).astype(dtype),
               (generator.standard_normal(width) * 0.1).astype(dtype)) for _ in range(n)]
    return layers, generator.standard_normal((batch, width)).astype(dtype)


def dense(x: Any, params: Any) -> Any:
    """One stage of our chain: tanh(x W + b)."""
    import checkpoint_ad as ca
    w, b = params
    return ca.tanh(x @ w + b)


# -- process-level memory probes -------------------------------------------------------------

def _status(field: str) -> int:
    """A /proc/self/status field in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak_rss() -> int:
    """Collect garbage, hand free heap memory back to the OS (glibc keeps freed blocks, which
    later allocations would reuse without raising RSS), reset VmHWM to the current RSS where
    the kernel allows it, and return that RSS: the baseline of :func:`peak_rss_increase`."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the baseline may then include reusable free memory
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass  # VmHWM then still holds setup's peak; the baseline below keeps deltas honest
    return _status("VmRSS")


def peak_rss_increase(baseline: int) -> int:
    return _status("VmHWM") - baseline


def run_times(run: Any, repeats: int, reset: Any = None) -> list[float]:
    """Seconds of ``repeats`` calls of ``run`` (a warm-up is the caller's job)."""
    times = []
    for _ in range(repeats):
        if reset is not None:
            reset()
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


# -- workers: one configuration per process ---------------------------------------------------

def ours_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Our engine: time (``mode`` "time") or memory and counts (``mode`` "memory")."""
    import numpy as np
    import checkpoint_ad as ca
    from checkpoint_ad.chains.chain import profile_chain
    policy, budgeted = config["impl"], config["impl"] in ("optimal", "revolve")
    layers, x0 = weights(config["n"], config["dtype"])
    chain = ca.Chain([ca.Stage(dense, layer, f"dense{t}") for t, layer in enumerate(layers, 1)])
    params, choice = config.get("params", {}), {}
    if budgeted and config["mode"] == "memory":
        params, choice = fit_budget(policy, profile_chain(chain, x0, SEED), config["target"])

    def run(trace: bool = False) -> Any:
        return ca.backprop(chain, x0, policy=policy, seed=SEED, trace_memory=trace, **params)

    toy_layers, toy_x = weights(2, config["dtype"], width=8, batch=4)  # lazy initialization
    ca.backprop([ca.Stage(dense, layer) for layer in toy_layers], toy_x, policy=policy,
                seed=SEED, **({"slots": 2} if budgeted else {}))
    if config["mode"] == "time":
        run()
        executor_times: list[float] = []
        times = run_times(lambda: executor_times.append(run().stats.wall_s), config["repeats"])
        return {"seconds": statistics.median(times), "min_seconds": min(times),
                "executor_seconds": statistics.median(executor_times)}
    baseline = reset_peak_rss()
    run()
    rss = peak_rss_increase(baseline)
    result = run(trace=True)
    s = result.stats
    return {"evaluations": s.forward_evals, "peak_bytes": s.peak_bytes,
            "predicted_peak_bytes": s.predicted_peak_bytes, "peak_stored": s.peak_stored,
            "allocator_peak": s.measured_peak_bytes, "rss_increase": rss,
            "parameter_bytes": s.parameter_bytes,
            "parameter_gradient_bytes": s.parameter_gradient_bytes,
            "params": params, "choice": choice, "by_kind": s.peak_bytes_by_kind,
            "probe": probe(float(result.value), np.asarray(result.grad_input),
                           result.grad_params[0][0])}


def fit_budget(policy: str, profile: Any, target: int) -> tuple[dict, dict]:
    """The largest budget whose predicted Meter peak fits under ``target`` bytes.

    The budget is ``slots`` for revolve and ``budget_bytes`` = units x (bytes of one state) for
    optimal. The prediction runs the plan through the executor symbolically; it equals the
    real run's ``peak_bytes`` exactly. The peak grows with the budget, so a bisection finds it.
    """
    from checkpoint_ad.chains.executor import predict_meter
    from checkpoint_ad.chains.policies import make_plan
    costs = profile.costs("unit")
    state = costs.state_bytes[0]

    def params_for(units: int) -> dict[str, Any]:
        return {"slots": units} if policy == "revolve" else {"budget_bytes": units * state}

    def peak(units: int) -> int:
        return predict_meter(make_plan(policy, costs, **params_for(units)), profile).peak

    low, high = 1, (costs.n if policy == "revolve" else 2 * costs.n + 2)
    if peak(low) > target:
        return params_for(low), {"units": low, "fits": False}
    while high - low > 1:  # invariant: peak(low) fits; the answer is below high
        middle = (low + high) // 2
        low, high = (middle, high) if peak(middle) <= target else (low, middle)
    return params_for(low), {"units": low, "fits": True}


def torch_worker(config: dict[str, Any]) -> dict[str, Any]:
    import torch
    from torch.utils.checkpoint import checkpoint_sequential
    torch.set_num_threads(config["threads"])
    n = config["n"]
    dtype = getattr(torch, config["dtype"])

    class Dense(torch.nn.Module):
        def __init__(self, w: Any, b: Any) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(*w.shape, dtype=dtype)
            with torch.no_grad():
                self.linear.weight.copy_(torch.from_numpy(w.T.copy()))
                self.linear.bias.copy_(torch.from_numpy(b))

        def forward(self, x: Any) -> Any:
            return torch.tanh(self.linear(x))

    def build(layers: list, x0: Any) -> tuple[Any, Any]:
        return (torch.nn.Sequential(*(Dense(w, b) for w, b in layers)),
                torch.from_numpy(x0).requires_grad_(True))

    model, x = build(*weights(n, config["dtype"]))
    segments = math.isqrt(n - 1) + 1
    checkpointed = config["impl"] == "torch_checkpoint"

    def step(model: Any = model, x: Any = x, segments: int = segments) -> Any:
        out = (checkpoint_sequential(model, segments, x, use_reentrant=False) if checkpointed
               else model(x))
        loss = out.sum()
        loss.backward()
        return loss

    def reset() -> None:
        model.zero_grad(set_to_none=True)
        x.grad = None

    step(*build(*weights(2, config["dtype"], width=8, batch=4)), segments=2)  # lazy imports
    if config["mode"] == "time":
        step()
        times = run_times(step, config["repeats"], reset)
        return {"seconds": statistics.median(times), "min_seconds": min(times),
                "executor_seconds": None}
    baseline = reset_peak_rss()
    step()
    rss = peak_rss_increase(baseline)
    reset()
    calls = [0]
    hooks = [block.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
             for block in model]
    value = step()
    for hook in hooks:
        hook.remove()
    grad_x, grad_w1 = x.grad.numpy().copy(), model[0].linear.weight.grad.numpy().T.copy()
    reset()
    meter_peak, peak, by_category = torch_activation_peak(step)
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"evaluations": calls[0], "peak_bytes": meter_peak, "allocator_peak": peak,
            "by_category": by_category, "rss_increase": rss, "parameter_bytes": parameter_bytes,
            "parameter_gradient_bytes": parameter_bytes,
            "segments": segments if checkpointed else None,
            "probe": probe(float(value), grad_x, grad_w1)}


def torch_activation_peak(step: Any) -> tuple[int, int, dict[str, int]]:
    """Torch's own view of one step, from the profiler's categorized memory timeline.

    Returns two peaks and the categories at the second: the peak of what our Meter would count
    (``input`` + ``activation`` + ``autograd_detail``: the input, every saved tensor and
    checkpoint, the cotangents), and the allocator peak of every tensor byte that is neither a
    parameter nor a ``.grad`` (the same plus op temporaries)."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler import _memory_profiler as memory_profiler
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as profiler:
        step()
    timeline = memory_profiler.MemoryProfileTimeline(profiler._memory_profile())
    _, sizes = timeline._coalesce_timeline("cpu")
    names = ["unknown" if c is None else c.name.lower()
             for c in memory_profiler._CATEGORY_TO_INDEX]  # column 0 of sizes is padding
    skip = {"parameter", "gradient", "optimizer_state"}
    metered = {"input", "activation", "autograd_detail"}
    best, meter_best, at = 0, 0, [0] * (len(names) + 1)
    for row in sizes:
        live = sum(size for name, size in zip(names, row[1:]) if name not in skip)
        meter_best = max(meter_best, sum(size for name, size in zip(names, row[1:])
                                         if name in metered))
        if live > best:
            best, at = live, row
    return meter_best, best, {name: size for name, size in zip(names, at[1:])
                              if size and name not in skip}


def probe(value: float, grad_x: Any, grad_w1: Any) -> list[float]:
    """A few numbers that any two correct engines agree on (for the gradient check)."""
    import numpy as np
    return [value, float(np.abs(grad_x).sum()), float(np.abs(grad_w1).sum()),
            *map(float, np.ravel(grad_x)[:3]), *map(float, np.ravel(grad_w1)[:3])]


# -- the profile of our engine ----------------------------------------------------------------

CATEGORIES = ("BLAS matmul", "elementwise ops", "allocation/copies", "Python overhead")
PHASES = {"profile_chain": "profiling sweep (sizes)", "make_plan": "planning",
          "predict_meter": "byte prediction", "forward": "executor forward",
          "reverse": "executor reverse (with loss)"}


ALLOCATING = ("copy", "zeros", "empty", "ascontiguousarray", "numpy.array", "astype", "full")
ELEMENTWISE_HOSTS = {("ops.py", "_forward"), ("ops.py", "unbroadcast"), ("executor.py", "backward")}


def category(filename: str, line: int, function: str) -> str:
    """Which kind of work a function's *own* time (cProfile's tottime) is.

    numpy ufuncs and the ``@`` operator are not calls cProfile records, so their time lands in
    the Python function that invoked them: ``ops._forward`` runs the tanh and add ufuncs,
    ``primitives._matmul_forward`` and the VJP lambdas containing ``@`` run BLAS, the other
    VJP lambdas and ``ArrayRunner.backward`` (``total += g``) run elementwise arithmetic.
    """
    name = Path(filename).name
    if (name, function) == (Path(__file__).name, "dense"):
        return CATEGORIES[0]  # advancing: x @ w + b on raw arrays runs in the stage's frame
    if name == "primitives.py":
        if function == "_matmul_forward" or (
                function == "<lambda>" and "@" in linecache.getline(filename, line)):
            return CATEGORIES[0]
        if function == "<lambda>":
            return CATEGORIES[1]
    if (name, function) in ELEMENTWISE_HOSTS or "of 'numpy.ufunc' objects" in function:
        return CATEGORIES[1]
    if any(word in function for word in ALLOCATING):
        return CATEGORIES[2]
    return CATEGORIES[3]


def profile_worker(config: dict[str, Any]) -> dict[str, Any]:
    """cProfile one backprop call (after a warm-up) and fold its functions into CATEGORIES."""
    import checkpoint_ad as ca
    n = config["n"]
    layers, x0 = weights(n, config["dtype"])
    chain = ca.Chain([ca.Stage(dense, layer) for layer in layers])

    def run() -> Any:
        return ca.backprop(chain, x0, policy=config["policy"], seed=SEED, trace_memory=False)

    run()
    plain = statistics.median(run_times(run, 3))
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(run)
    profiled = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    shares = dict.fromkeys(CATEGORIES, 0.0)
    phases = dict.fromkeys(PHASES.values(), 0.0)
    for (filename, line, function), (_, _, own, cumulative, _) in stats.items():
        shares[category(filename, line, function)] += own
        if function in PHASES and "checkpoint_ad" in filename:
            phases[PHASES[function]] += cumulative
    return {"plain_seconds": plain, "profiled_seconds": profiled, "shares": shares,
            "phases": phases, "total": sum(shares.values())}


# -- the driver --------------------------------------------------------------------------------

def spawn(config: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter; return its result dictionary.

    Memory runs fix glibc's mmap threshold at 64 KiB, so that every array or tensor of a
    state's size is mapped on allocation and unmapped when freed: RSS then follows live
    memory instead of what the heap keeps after frees (both engines allocate through malloc).
    Timed runs keep the default, whose reuse of freed blocks is part of normal speed.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[variable] = str(config["threads"])
    if config.get("mode") == "memory":
        env["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(config)], env=env,
                          capture_output=True, text=True)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"worker {config} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def worker(config: dict[str, Any]) -> None:
    if config["impl"] == "profile":
        result = profile_worker(config)
    elif config["impl"] in TORCH:
        result = torch_worker(config)
    else:
        result = ours_worker(config)
    print(MARK + json.dumps(result), flush=True)


def run_grid(args: argparse.Namespace) -> dict[tuple[int, str, str], dict[str, Any]]:
    results: dict[tuple[int, str, str], dict[str, Any]] = {}
    order = ("torch_autograd", "store_all", "torch_checkpoint", "sqrt_n", "optimal", "revolve")
    for dtype in args.dtype:
        for n in args.n:
            for impl in order:
                config = {"impl": impl, "n": n, "dtype": dtype, "repeats": args.repeats,
                          "threads": args.threads, "mode": "memory"}
                if impl in ("optimal", "revolve"):
                    config["target"] = results[(n, dtype, "torch_checkpoint")]["peak_bytes"]
                start = time.perf_counter()
                memory = spawn(config)
                timing = spawn({**config, "mode": "time", "params": memory.get("params", {})})
                results[(n, dtype, impl)] = {**memory, **timing}
                print(f"  done {dtype} n={n:<4} {impl:<17} in {time.perf_counter() - start:6.1f} s",
                      file=sys.stderr, flush=True)
    return results


def agreement(result: dict[str, Any], reference: dict[str, Any]) -> float:
    """Largest relative difference of the probe numbers against torch autograd's."""
    return max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(result["probe"], reference["probe"]))


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def print_details(results: dict[tuple[int, str, str], dict[str, Any]]) -> None:
    print("\nall configurations. median s: --repeats runs after a warm-up; exec s: our executor "
          "alone (Stats.wall_s). MiB; Meter: checkpoints + tapes/saved tensors + working value + "
          "cotangents (torch: profiler categories input + activation + autograd_detail); alloc: "
          "the same plus temporaries (ours: tracemalloc; torch: profiler, all but parameters and "
          ".grad); RSS+: peak RSS increase, parameter gradients included; grad diff: largest "
          "relative difference from torch autograd")
    print(f"{'dtype':<8}{'n':>5} {'implementation':<26}{'median s':>9}{'min s':>7}{'exec s':>7}"
          f"{'evals':>6}"
          f"{'Meter':>8}{'alloc':>8}{'RSS+':>8}{'params':>8}{'grad diff':>10}")
    for (n, dtype, impl), r in results.items():
        reference = results[(n, dtype, "torch_autograd")]
        label = impl
        if impl == "torch_checkpoint":
            label = f"torch ckpt_seq(k={r['segments']})"
        elif impl == "optimal":
            label = f"optimal(budget={r['choice']['units']} st.)"
        elif impl == "revolve":
            label = f"revolve(slots={r['choice']['units']})"
        if r.get("choice") and not r["choice"]["fits"]:
            label += " !"
        executor = "-" if r["executor_seconds"] is None else f"{r['executor_seconds']:.3f}"
        print(f"{dtype:<8}{n:>5} {label:<26}{r['seconds']:>9.3f}{r['min_seconds']:>7.3f}"
              f"{executor:>7}{r['evaluations']:>6}"
              f"{mib(r['peak_bytes']):>8}{mib(r['allocator_peak']):>8}{mib(r['rss_increase']):>8}"
              f"{mib(r['parameter_bytes']):>8}{agreement(r, reference):>10.1e}")


def print_profile(profile: dict[str, Any], config: dict[str, Any]) -> None:
    total = profile["total"]
    print(f"\nwhere our time goes: n={config['n']} {config['dtype']} {config['policy']} "
          f"(cProfile own time; profiled {profile['profiled_seconds']:.2f} s vs "
          f"{profile['plain_seconds']:.2f} s unprofiled)")
    print(f"{'category':<30}{'seconds':>9}{'share':>8}")
    for name, seconds in profile["shares"].items():
        print(f"{name:<30}{seconds:>9.3f}{seconds / total:>8.1%}")
    print(f"{'phase (cumulative)':<30}{'seconds':>9}{'share':>8}")
    for name, seconds in profile["phases"].items():
        print(f"{name:<30}{seconds:>9.3f}{seconds / total:>8.1%}")


def print_ratios(results: dict[tuple[int, str, str], dict[str, Any]]) -> None:
    pairs = (("store_all", "torch_autograd"), ("sqrt_n", "torch_checkpoint"),
             ("optimal", "torch_checkpoint"), ("revolve", "torch_checkpoint"))
    keys = list(dict.fromkeys((n, dtype) for n, dtype, _ in results))
    print("\nratios ours / torch. time: our whole backprop call (profiling sweep and planning "
          "included), exec: our executor only; evals: ours/torch; memory: Meter-equivalent "
          "activation peak, allocator activation peak, RSS increase")
    print(f"{'dtype':<8}{'n':>5} {'ours vs torch':<32}{'time':>7}{'exec':>7}{'evals':>11}"
          f"{'Meter':>7}{'alloc':>7}{'RSS':>7}")
    for n, dtype in keys:
        for ours, theirs in pairs:
            a, b = results[(n, dtype, ours)], results[(n, dtype, theirs)]
            name = f"{ours} vs {'autograd' if theirs == 'torch_autograd' else 'ckpt_sequential'}"
            evals = f"{a['evaluations']}/{b['evaluations']}"
            print(f"{dtype:<8}{n:>5} {name:<32}{a['seconds'] / b['seconds']:>7.2f}"
                  f"{a['executor_seconds'] / b['seconds']:>7.2f}{evals:>11}"
                  f"{a['peak_bytes'] / b['peak_bytes']:>7.2f}"
                  f"{a['allocator_peak'] / b['allocator_peak']:>7.2f}"
                  f"{a['rss_increase'] / max(b['rss_increase'], 1):>7.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"],
                        choices=["float64", "float32"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads in both engines")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile summary")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if importlib.util.find_spec("torch") is None:
        print("vs_torch: PyTorch is not installed, nothing to compare against "
              "(pip install torch==2.13.0 installs the CPU build). Skipped.")
        return 0
    started = time.perf_counter()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; BLAS threads: {args.threads}",
          file=sys.stderr)
    results = run_grid(args)
    profile_config = {"impl": "profile", "n": 64, "dtype": "float64", "policy": "sqrt_n",
                      "threads": args.threads}
    print_details(results)
    if not args.no_profile:
        print_profile(spawn(profile_config), profile_config)
    print_ratios(results)
    print(f"\n{time.perf_counter() - started:.0f} s in all; load average at the end: "
          f"{os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
