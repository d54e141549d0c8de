"""The torch_models.py table on a CUDA device, with torch.cuda memory statistics.

Runs unchanged on a machine with a GPU: the same models, configurations and measurements as
benchmarks/torch_models.py, on ``cuda`` (activation peaks from ``torch.cuda.max_memory_allocated``
over each step's start, times after ``torch.cuda.synchronize``), the offload row among them
(``optimal +offload``: pinned host memory and a side stream), then a plain-text summary. On a
machine without CUDA (or without torch) it says so in one line and exits 0.

    PYTHONPATH=. python benchmarks/gpu_check.py [--repeats 5] [--models mlp resnet gpt]
        [--bandwidth 12e9]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    try:
        import torch
    except ImportError:
        print("gpu_check: PyTorch is not installed; nothing to do.")
        return 0
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing to do.")
        return 0
    import torch_models
    print(f"GPU: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}")
    return torch_models.main(sys.argv[1:], device="cuda")


if __name__ == "__main__":
    raise SystemExit(main())
