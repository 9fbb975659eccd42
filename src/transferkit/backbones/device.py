"""Device and mixed-precision choice shared by the backbones and the extractor.

Importing this module does not import torch; the functions do.
"""

from __future__ import annotations

from transferkit.validation import TransferKitInputError

__all__ = ["select_device", "autocast_dtype"]


def select_device(device="auto") -> str:
    """``"auto"``/``None``: CUDA if available, else Apple MPS, else CPU; other values as given.

    A CUDA device when CUDA is not available raises
    :class:`~transferkit.validation.TransferKitInputError`.
    """
    import torch

    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TransferKitInputError(f"device={device!r} but CUDA is not available; use 'auto'.")
    return device


def autocast_dtype(device: str) -> str | None:
    """Autocast dtype name on CUDA (``"bfloat16"`` where supported, else ``"float16"``).

    ``None`` (float32) on the CPU and MPS.
    """
    if not device.startswith("cuda"):
        return None
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
