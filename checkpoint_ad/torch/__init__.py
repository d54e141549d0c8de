"""Checkpointed back-propagation through torch models: the chain executor over torch modules.

``profile(modules, x)`` measures a chain of ``torch.nn.Module`` stages (times, output bytes,
bytes saved for backward, random stages) as :class:`TorchChainCosts`;
``CheckpointedSequential(modules, policy, **params)`` is a module whose forward and backward
follow that policy's plan. Needs PyTorch (``pip install -e ".[torch]"`` from a clone); nothing
else in the package imports it.
"""
from __future__ import annotations

from checkpoint_ad.torch.module import CheckpointedSequential, TorchStats
from checkpoint_ad.torch.profile import TorchChainCosts, profile
from checkpoint_ad.torch.runner import Storage, TorchRunner, storage_of

__all__ = ["CheckpointedSequential", "Storage", "TorchChainCosts", "TorchRunner", "TorchStats",
           "profile", "storage_of"]
