"""Deep transfer learning on torch: the one training engine and what trains on it.

Importing :mod:`transferkit` does not import torch; importing this package does
(install the ``deep`` extra).

* :class:`Trainer`: AdamW, warm-up + cosine, clipping, parameter groups,
  early stopping with best-weights restore, a time budget, mixed precision on
  CUDA, atomic safetensors checkpoints and exact resume
  (:mod:`transferkit.deep.engine`).
"""

from transferkit.deep.engine import Trainer, TrainResult, classification_loss, regression_loss

__all__ = ["Trainer", "TrainResult", "classification_loss", "regression_loss"]
