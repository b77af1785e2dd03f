"""Training in PyTorch: the seed's networks, COCO targets, loss, loop, DDP and ONNX export.

PyTorch is an optional extra (`pip install '.[train]'` in the checkout); `import pafpose`
never needs it.
"""

from __future__ import annotations

from ..errors import MissingDependencyError


def require_torch() -> None:
    """Raise a one-line MissingDependencyError when PyTorch is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "training needs PyTorch: pip install '.[train]' in the pafpose checkout "
            "(see DEVELOPERS.md)"
        ) from None
