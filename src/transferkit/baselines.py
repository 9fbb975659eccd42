"""The reference strategies every transfer method is compared with.

* :class:`TargetOnly` trains on the labelled target rows only: the baseline
  that a transfer strategy must beat to be worth shipping.
* :class:`SourceOnly` trains on the labelled source rows only ("no
  adaptation"): shows how far the source alone carries.
* :class:`Pooled` trains on every labelled row of every domain, with an
  optional extra weight on target rows.

Example
-------
>>> import numpy as np
>>> from transferkit.baselines import Pooled
>>> rng = np.random.default_rng(0)
>>> Xs, ys = rng.normal(size=(40, 2)), np.tile([0, 1], 20)
>>> Xt, yt = rng.normal(size=(10, 2)), np.tile([0, 1], 5)
>>> Pooled().fit_domains(Xs, ys, Xt, yt).predict(Xt).shape
(10,)
"""

from __future__ import annotations

import numpy as np

from transferkit.base import RowSelectingTransfer
from transferkit.domains import DomainInfo
from transferkit.validation import TransferKitInputError

__all__ = ["TargetOnly", "SourceOnly", "Pooled"]


class TargetOnly(RowSelectingTransfer):
    """Fit ``estimator`` on the labelled target rows only (no transfer).

    Parameters
    ----------
    estimator : sklearn estimator, optional
        Default: balanced logistic regression (classification) or ridge.
    task : {"auto", "classification", "regression"}
    random_state : int, optional
        Only used for the weighted-resample fallback (see
        :mod:`transferkit.base`).
    """

    uses_source_labels = False

    def _training_weights(self, X, info: DomainInfo) -> np.ndarray:
        return info.labelled_target.astype(float)


class SourceOnly(RowSelectingTransfer):
    """Fit ``estimator`` on the labelled source rows only (no adaptation)."""

    def _training_weights(self, X, info: DomainInfo) -> np.ndarray:
        return info.labelled_source.astype(float)


class Pooled(RowSelectingTransfer):
    """Fit ``estimator`` on all labelled rows, source and target together.

    Parameters
    ----------
    estimator : sklearn estimator, optional
    target_weight : float, default=1.0
        Weight of each labelled target row relative to a source row (> 0).
    task : {"auto", "classification", "regression"}
    random_state : int, optional
    """

    def __init__(self, estimator=None, target_weight: float = 1.0, task: str = "auto",
                 random_state=None):
        super().__init__(estimator=estimator, task=task, random_state=random_state)
        self.target_weight = target_weight

    def _training_weights(self, X, info: DomainInfo) -> np.ndarray:
        if not np.isfinite(self.target_weight) or self.target_weight <= 0:
            raise TransferKitInputError(
                f"target_weight must be a positive number, got {self.target_weight!r}."
            )
        weights = info.labelled.astype(float)
        weights[info.labelled_target] = float(self.target_weight)
        return weights
