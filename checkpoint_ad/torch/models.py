"""Small torch models built as chains of stages (lists of modules), and the lab's workloads as
torch modules.

``mlp``, ``residual_net`` and ``gpt`` build deep models in plain torch from a seed (no
downloads): a dense MLP, a ResNet-style stack of convolutional residual blocks, and a GPT-style
stack of transformer blocks (causal self-attention, layer norm, MLP). ``from_workload`` rebuilds
a lab workload (``chain``, ``mlp``, ``residual``, ``hetero_mlp``) as torch modules with the very
same weights, for the CLI's ``--backend torch``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from checkpoint_ad.errors import ExperimentError
from ..workloads.chain_models import TORCH_EQUIVALENTS


class Dense(nn.Module):
    """``tanh(x W + b)``, or ``x + tanh(x W + b) / 2`` when ``residual`` (W is in × out)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, residual: bool = False) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(bias)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(x @ self.weight + self.bias)
        return x + y * 0.5 if self.residual else y


class Elementwise(nn.Module):
    """An elementwise function by name (sin, cos, tanh, sigmoid, relu)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(torch, self.name)(x)


class ConvBlock(nn.Module):
    """A ResNet-style block ``relu(x + conv(relu(conv(x))))``, 3×3 convolutions."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = nn.Conv2d(channels, channels, 3, padding=1)
        self.second = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.second(torch.relu(self.first(x))))


class TransformerBlock(nn.Module):
    """A GPT-style block: ``x + attention(ln(x))`` then ``+ mlp(ln(.))``, causal, with dropout."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.project = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width), nn.Dropout(dropout))
        self.dropout = nn.Dropout(dropout)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        mask = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        weights = self.dropout(scores.masked_fill(mask, float("-inf")).softmax(-1))
        mixed = (weights @ v).transpose(1, 2).reshape(batch, length, width)
        return self.dropout(self.project(mixed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _build(make: Any, depth: int, seed: int, dtype: torch.dtype) -> list[nn.Module]:
    """``depth`` modules ``make()`` with weights drawn from ``seed`` (the global RNG is left
    untouched): matrices and kernels uniform in ±1/sqrt(fan-in), biases in ±0.1, norms' scales
    kept at 1; cast to ``dtype``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        modules = [make() for _ in range(depth)]
    with torch.no_grad():
        for module in modules:
            for name, parameter in module.named_parameters():
                if parameter.dim() > 1:
                    bound = 1 / math.sqrt(parameter[0].numel())
                    parameter.uniform_(-bound, bound, generator=generator)
                elif name.endswith("bias"):
                    parameter.uniform_(-0.1, 0.1, generator=generator)
    return [module.to(dtype) for module in modules]


def mlp(depth: int, width: int, *, dropout: float = 0.0, seed: int = 0,
        dtype: torch.dtype = torch.float32) -> list[nn.Module]:
    """``depth`` stages Linear-Tanh (then Dropout when ``dropout`` > 0), ``width`` units."""
    return _build(lambda: nn.Sequential(nn.Linear(width, width), nn.Tanh(),
                                        *([nn.Dropout(dropout)] if dropout else [])),
                  depth, seed, dtype)


def residual_net(depth: int, channels: int, *, seed: int = 0,
                 dtype: torch.dtype = torch.float32) -> list[nn.Module]:
    """``depth`` ResNet-style convolutional residual blocks of ``channels`` channels."""
    return _build(lambda: ConvBlock(channels), depth, seed, dtype)


def gpt(depth: int, width: int, heads: int, *, dropout: float = 0.0, seed: int = 0,
        dtype: torch.dtype = torch.float32) -> list[nn.Module]:
    """``depth`` GPT-style transformer blocks of ``width`` features and ``heads`` heads."""
    return _build(lambda: TransformerBlock(width, heads, dropout), depth, seed, dtype)


def check_workload(name: str) -> None:
    """Refuse, in one line, a lab workload without a torch equivalent."""
    if name not in TORCH_EQUIVALENTS:
        raise ExperimentError(f"workload {name!r} has no torch equivalent; --backend torch "
                              f"runs: {', '.join(TORCH_EQUIVALENTS)}")


def from_workload(workload: Any) -> tuple[list[nn.Module], torch.Tensor]:
    """A lab workload's chain as torch modules with the same weights, and its input."""
    check_workload(workload.name)
    stages = []
    for stage in workload.chain.stages:
        if workload.name == "chain":
            stages.append(Elementwise(workload.sizes["f"]))
        else:
            weight, bias = (torch.from_numpy(a.copy()) for a in stage.params)
            stages.append(Dense(weight, bias, residual=workload.name == "residual"))
    return stages, torch.from_numpy(workload.x0.copy())
