"""checkpoint_ad.torch: the chain executor driving torch modules.

Every policy on every model gives the gradients plain torch gives (bit for bit, float64 on the
CPU), holds exactly the activation bytes the symbolic run predicted, and keeps an optimal
plan's stored bytes within its budget; bad modules and budgets get the package's own errors.
"""
from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from checkpoint_ad import minimum_budget  # noqa: E402
from checkpoint_ad.errors import BudgetError, StageError  # noqa: E402
from checkpoint_ad.torch import CheckpointedSequential, profile  # noqa: E402
from checkpoint_ad.torch import models  # noqa: E402
from helpers import stored_bytes_peak  # noqa: E402

DOUBLE = torch.float64


def tiny_mlp():
    return models.mlp(5, 8, seed=1, dtype=DOUBLE), torch.randn(3, 8, dtype=DOUBLE)


def tiny_residual():
    return models.residual_net(4, 3, seed=2, dtype=DOUBLE), torch.randn(2, 3, 5, 5, dtype=DOUBLE)


def tiny_transformer():
    return (models.gpt(3, 8, 2, seed=3, dtype=DOUBLE), torch.randn(2, 5, 8, dtype=DOUBLE))


def tiny_dropout():
    return models.mlp(5, 8, dropout=0.3, seed=4, dtype=DOUBLE), torch.randn(3, 8, dtype=DOUBLE)


MODELS = {"mlp": tiny_mlp, "residual": tiny_residual, "transformer": tiny_transformer,
          "dropout": tiny_dropout}
POLICIES = [("store_all", {}), ("recompute_all", {}), ("sqrt_n", {}), ("revolve", {"slots": 2}),
            ("optimal", {"slots": 3}), ("optimal", {"budget": 4})]


def gradients(modules, x, policy=None, params=None, seed=0):
    """Loss, dL/dx and parameter gradients of ``sum(y²)`` through plain torch (policy None) or
    a CheckpointedSequential; the global RNG is seeded first (for dropout)."""
    modules = copy.deepcopy(modules)
    x = x.clone().requires_grad_(True)
    model = (torch.nn.Sequential(*modules) if policy is None
             else CheckpointedSequential(modules, policy, **(params or {})))
    torch.manual_seed(seed)
    loss = model(x).square().sum()
    loss.backward()
    return [loss.detach(), x.grad] + [p.grad for p in model.parameters()], model


def budget_for(policy, params, modules, x):
    """``{"budget": k}`` means k states' bytes more than the least the module accepts."""
    if "budget" not in params:
        return params, None
    costs = profile(modules, x)
    budget = costs.state_bytes[0] + costs.tape_bytes[-1] + params["budget"] * costs.state_bytes[1]
    return {"budget_bytes": budget}, budget


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("policy, params", POLICIES,
                         ids=[f"{p}{v}" if v else p for p, v in POLICIES])
def test_every_policy_gives_plain_torchs_gradients_and_the_predicted_bytes(name, policy, params):
    modules, x = MODELS[name]()
    params, budget = budget_for(policy, params, modules, x)
    expected, _ = gradients(modules, x)
    got, model = gradients(modules, x, policy, params)
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected):
        assert mine.dtype == DOUBLE and torch.equal(mine, theirs)
    stats = model.stats
    assert stats.peak_bytes == stats.predicted_peak_bytes > 0
    assert stats.forward_evals == model.plan.forward_evals
    assert sum(stats.peak_bytes_by_kind.values()) == stats.peak_bytes
    if budget is not None:
        assert stored_bytes_peak(model.plan, model.prepare(x).costs.profile) <= budget


def test_recomputing_policies_evaluate_more_and_hold_less_than_store_all():
    modules, x = models.mlp(12, 16, dtype=DOUBLE), torch.randn(4, 16, dtype=DOUBLE)
    stats = {policy: gradients(modules, x, policy, params)[1].stats
             for policy, params in [("store_all", {}), ("revolve", {"slots": 2})]}
    assert stats["store_all"].forward_evals == 12 < stats["revolve"].forward_evals
    assert stats["revolve"].peak_bytes < stats["store_all"].peak_bytes


def test_the_profile_counts_saved_bytes_and_finds_random_stages():
    width, batch = 8, 3
    stages = [torch.nn.Linear(width, width).double(), torch.nn.Tanh(), torch.nn.Dropout(0.5)]
    x = torch.randn(batch, width, dtype=DOUBLE)
    state = torch.get_rng_state()
    costs = profile(stages, x)
    assert torch.equal(torch.get_rng_state(), state)  # profiling leaves the RNG alone
    one = batch * width * 8
    assert costs.state_bytes == (one,) * 4
    # Linear saves its input (the weight is a parameter, left out); tanh its output; dropout
    # its mask only (on the CPU in the input's dtype), neither its input nor its output
    assert costs.saved_bytes == (one, one, one)
    keeps = [(s.keeps_input, s.keeps_output, s.private_tape_bytes) for s in costs.profile.stages]
    assert keeps == [(True, False, 0), (False, True, 0), (False, False, one)]
    assert costs.tape_bytes == (2 * one, one, 2 * one)
    assert costs.tape_input_bytes == (one, 0, 0)
    assert costs.random_stages == (3,)
    assert all(u > 0 for u in costs.compute)


def test_dropout_leaves_the_global_rng_where_plain_torch_leaves_it():
    modules, x = tiny_dropout()
    gradients(modules, x)
    plain = torch.get_rng_state()
    gradients(modules, x, "recompute_all")
    assert torch.equal(torch.get_rng_state(), plain)


def test_the_plan_is_made_once_per_input_signature_and_reused():
    modules, x = tiny_mlp()
    model = CheckpointedSequential(modules, "revolve", slots=2)
    for _ in range(2):
        model(x.clone().requires_grad_(True)).sum().backward()
    first = model.plan
    model(torch.randn(5, 8, dtype=DOUBLE, requires_grad=True)).sum().backward()
    assert len(model._prepared) == 2 and model.plan is not first
    model(x.clone().requires_grad_(True)).sum().backward()
    assert model.plan is first


def test_without_autograd_the_modules_just_run():
    modules, x = tiny_mlp()
    model = CheckpointedSequential(modules, "revolve", slots=2)
    with torch.no_grad():
        y = model(x)
    assert torch.equal(y, torch.nn.Sequential(*modules)(x)) and model.stats is None


def test_parameters_alone_requiring_grad_still_get_gradients():
    modules, x = tiny_mlp()
    expected = copy.deepcopy(modules)
    torch.nn.Sequential(*expected)(x).sum().backward()
    CheckpointedSequential(modules, "recompute_all")(x).sum().backward()
    for mine, theirs in zip(torch.nn.Sequential(*modules).parameters(),
                            torch.nn.Sequential(*expected).parameters()):
        assert torch.equal(mine.grad, theirs.grad)


class Growing(torch.nn.Module):
    """Returns one more row on every call: its output shape changes between calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.cat([x] * self.calls)


class Pair(torch.nn.Module):
    def forward(self, x):
        return x * 2, x


def run(stages, x, policy="recompute_all", **params):
    CheckpointedSequential(stages, policy, **params)(x.requires_grad_(True)).sum().backward()


def test_a_module_whose_output_shape_changes_is_refused():
    with pytest.raises(StageError, match=r"stage 2 \(Growing\) returned shape .* when profiled"):
        run([torch.nn.Tanh(), Growing(), torch.nn.Tanh()], torch.randn(2, 3))


def test_a_non_tensor_output_is_refused():
    with pytest.raises(StageError, match=r"stage 1 \(Pair\) returned tuple; .* one tensor"):
        run([Pair(), torch.nn.Tanh()], torch.randn(2, 3))


def test_an_in_place_module_is_refused():
    with pytest.raises(StageError, match=r"stage 2 \(ReLU\) modifies its input in place"):
        run([torch.nn.Linear(3, 3), torch.nn.ReLU(inplace=True)], torch.randn(2, 3))


def test_a_budget_below_the_minimum_is_refused():
    modules, x = tiny_mlp()
    costs = profile(modules, x)
    least = minimum_budget(costs)  # the whole peak, the last stage's held tape included
    with pytest.raises(BudgetError, match=f"budget_bytes={least - 1} is below the minimum of "
                                          f"{least:,} bytes"):
        run(modules, x, "optimal", budget_bytes=least - 1)
    model = CheckpointedSequential(modules, "optimal", budget_bytes=least)
    model(x.requires_grad_(True)).sum().backward()
    assert model.stats.peak_bytes == model.stats.predicted_peak_bytes <= least


def test_an_input_that_is_not_a_floating_point_tensor_is_refused():
    model = CheckpointedSequential([torch.nn.Linear(3, 3)])
    for x in (torch.ones(2, 3, dtype=torch.int64), [[1.0, 2.0, 3.0]]):
        with pytest.raises(StageError, match="the input must be a floating-point tensor"):
            model.prepare(x)


def test_modules_on_mixed_devices_are_refused():
    meta = torch.nn.Linear(3, 3, device="meta")
    with pytest.raises(StageError, match="one device, found: cpu, meta"):
        run([torch.nn.Linear(3, 3), meta], torch.randn(2, 3))


@pytest.mark.parametrize("modules", [torch.nn.Tanh(), [], [torch.nn.Tanh(), "tanh"]],
                         ids=["a module", "empty", "not a module"])
def test_modules_must_be_a_sequence_of_modules(modules):
    with pytest.raises(StageError, match="modules"):
        CheckpointedSequential(modules)


def test_an_unknown_policy_is_refused_when_the_module_is_built():
    from checkpoint_ad.errors import UnknownNameError
    with pytest.raises(UnknownNameError, match="unknown policy 'fastest'"):
        CheckpointedSequential([torch.nn.Tanh()], "fastest")


@pytest.mark.parametrize("workload", ["chain", "mlp", "residual", "hetero_mlp"])
def test_the_lab_measures_a_workload_on_torch_modules_with_the_same_weights(workload):
    import dataclasses
    from checkpoint_ad.lab.measure import measure_point
    from checkpoint_ad.lab.points import PointTask
    sizes = {"chain": {"n": 4, "width": 6},
             "hetero_mlp": {"n": 4, "batch": 2, "wide": 8, "narrow": 3, "period": 2}}
    task = PointTask("unit", workload, sizes.get(workload, {"n": 4, "width": 5, "batch": 2}),
                     "revolve", {"slots": 2}, repeats=1, backend="torch")
    record = measure_point(task)
    numpy_record = measure_point(dataclasses.replace(task, backend="numpy"))
    assert record.backend == "torch" and numpy_record.backend == "numpy"
    assert record.max_grad_diff == 0.0  # against plain torch on the same modules
    assert record.peak_bytes == record.predicted_peak_bytes > 0
    assert record.measured_peak_bytes is None
    assert record.forward_evals == numpy_record.forward_evals == 8
    assert record.loss == pytest.approx(numpy_record.loss, rel=1e-12)
    for ours in (record, numpy_record):  # the offload fields, without a bandwidth
        assert ours.bandwidth is None and ours.host_peak_bytes == 0 and ours.budget_bytes is None
        assert ours.predicted_time > ours.store_all_time > 0 and ours.store_all_cost == 4


def test_the_lab_records_a_torch_run_with_offload_like_a_numpy_run():
    import dataclasses
    from checkpoint_ad.lab.measure import measure_point
    from checkpoint_ad.lab.points import PointTask
    task = PointTask("unit", "mlp", {"n": 5, "width": 8, "batch": 4}, "optimal",
                     {"budget_fraction": 0.9, "bandwidth": 1e9}, seed=3, repeats=1,
                     backend="torch")
    record, numpy_record = (measure_point(dataclasses.replace(task, backend=backend))
                            for backend in ("torch", "numpy"))
    assert record.max_grad_diff == 0.0
    assert record.host_peak_bytes == record.predicted_host_peak_bytes > 0  # measured = predicted
    for name in ("bandwidth", "predicted_time", "store_all_time", "budget_bytes",
                 "store_all_peak_bytes", "predicted_host_peak_bytes", "host_peak_bytes"):
        assert getattr(record, name) == getattr(numpy_record, name), name
    # below store_all's peak, an effectively infinite link: store_all's time, values moved
    assert record.peak_bytes <= record.budget_bytes < record.store_all_peak_bytes
    assert record.predicted_time == record.store_all_time == 15.0  # 5 stages + 10 backward


def test_the_cli_refuses_a_workload_without_a_torch_equivalent(capsys):
    from checkpoint_ad.cli.main import main
    assert main(["compare", "--workload", "rnn", "--backend", "torch"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err == ("checkpoint-ad: error: workload 'rnn' has no torch equivalent; "
                            "--backend torch runs: chain, mlp, residual, hetero_mlp\n")


def test_the_cli_compares_policies_on_torch_modules(capsys):
    import json
    from checkpoint_ad.cli.main import main
    argv = ["compare", "--workload", "mlp", "--n", "3", "--width", "4", "--batch", "2",
            "--policies", "store_all,recompute_all", "--repeats", "1", "--backend", "torch",
            "--no-progress", "--json"]
    assert main(argv) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["policy"], r["backend"], r["forward_evals"]) for r in records] == \
        [("store_all", "torch", 3), ("recompute_all", "torch", 6)]
    assert all(r["max_grad_diff"] == 0.0 for r in records)


@pytest.mark.parametrize("depth", [5, 10])
def test_offload_plans_move_values_and_keep_torchs_gradients(depth):
    modules, x = models.mlp(depth, 8, seed=1, dtype=DOUBLE), torch.randn(3, 8, dtype=DOUBLE)
    expected, _ = gradients(modules, x)
    low = profile(modules, x)
    everything = low.state_bytes[0] + sum(low.tape_bytes)
    moved = 0
    for fraction in (0.4, 0.7):
        params = {"budget_bytes": int(everything * fraction), "bandwidth": 1e12,
                  "costs": "unit"}
        try:
            got, model = gradients(modules, x, "optimal", params)
        except BudgetError:
            continue
        assert all(torch.equal(a, b) for a, b in zip(got, expected))
        stats = model.stats
        assert stats.peak_bytes == stats.predicted_peak_bytes <= params["budget_bytes"]
        assert stats.host_peak_bytes == stats.predicted_host_peak_bytes
        moved += stats.host_peak_bytes > 0
    assert moved  # some plan really moved tapes or checkpoints to the host


def test_a_bandwidth_with_another_policy_is_refused():
    modules, x = tiny_mlp()
    from checkpoint_ad.errors import PolicyError
    with pytest.raises(PolicyError, match="policies that do: optimal"):
        gradients(modules, x, "sqrt_n", {"bandwidth": 1e9})
