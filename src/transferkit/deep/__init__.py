"""Deep transfer learning on torch: the one training engine and what trains on it.

Importing :mod:`transferkit` does not import torch; importing this package does
(install the ``deep`` extra).

* :class:`Trainer`: AdamW, warm-up + cosine, clipping, parameter groups,
  early stopping with best-weights restore, a time budget, mixed precision on
  CUDA, atomic safetensors checkpoints and exact resume
  (:mod:`transferkit.deep.engine`).
* :class:`FineTuneClassifier`, :class:`FineTuneRegressor`: linear probe,
  partial, full (layer-wise rates), L2-SP and LP-FT over a pretrained
  backbone, saved as safetensors model folders (:mod:`transferkit.deep.finetune`).
"""

from transferkit.deep.engine import Trainer, TrainResult, classification_loss, regression_loss
from transferkit.deep.finetune import FineTuneClassifier, FineTuneRegressor, load_finetuned

__all__ = ["Trainer", "TrainResult", "classification_loss", "regression_loss",
           "FineTuneClassifier", "FineTuneRegressor", "load_finetuned"]
