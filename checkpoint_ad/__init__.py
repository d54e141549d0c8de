"""checkpoint_ad: reverse-mode AD on numpy with pluggable store-versus-recompute policies."""
from __future__ import annotations

__version__ = "0.1.0"
