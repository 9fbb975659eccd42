"""The fitted ensemble the autopilot ships when ensemble selection wins.

:class:`WeightedEnsemble` holds fitted models (each refitted on all rows) and
their weights from :func:`~transferkit.autopilot.selection.greedy_ensemble`.
It predicts

.. math::

    \\hat p(c \\mid x) = \\sum_k a_k\\, p_k(c \\mid x) \\Big/ \\sum_k a_k, \\qquad
    \\hat y = \\arg\\max_c \\hat p(c \\mid x)

for classification (a member without ``predict_proba`` adds the one-hot of
its prediction) and :math:`\\hat y = \\sum_k a_k \\hat y_k / \\sum_k a_k` for
regression: the same combination the out-of-fold evaluation scored.

Example
-------
>>> import numpy as np
>>> from sklearn.linear_model import LogisticRegression
>>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
>>> members = [LogisticRegression().fit(X, y), LogisticRegression(C=0.1).fit(X, y)]
>>> WeightedEnsemble(members, [2, 1], "classification", (0, 1)).predict(X).tolist()
[0, 0, 1, 1]
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if

from transferkit.evaluation.metrics import _positive_scores
from transferkit.validation import TransferKitInputError

__all__ = ["WeightedEnsemble"]


class WeightedEnsemble(BaseEstimator):
    """Weighted mean of fitted models' probabilities or predictions.

    Parameters
    ----------
    estimators : list of fitted estimators
    weights : sequence of float
        Positive weights, one per estimator.
    task : {"classification", "regression"}
    classes : tuple
        The task's classes (the column order of ``predict_proba``).
    names : sequence of str, optional
        The members' strategy names (for reports).
    inputs : sequence of {"features", "raw"}, optional
        What each member predicts from (default: the features ``X`` for all);
        ``predict(X, raw=...)`` gives a ``"raw"`` member the raw inputs (texts or
        image paths) instead.
    """

    def __init__(self, estimators, weights, task, classes=(), names=None, inputs=None):
        self.estimators = estimators
        self.weights = weights
        self.task = task
        self.classes = classes
        self.names = names
        self.inputs = inputs

    @property
    def classes_(self):
        return np.asarray(self.classes, dtype=object)

    @property
    def needs_raw(self) -> bool:
        """Whether a member predicts from the raw inputs (``predict(X, raw=...)``)."""
        return "raw" in (self.inputs or ())

    def _members(self, X, raw):
        """(weight, model, its input) for each member."""
        if self.needs_raw:
            if raw is None:
                raise TransferKitInputError(
                    "This model includes a fine-tuned network that predicts from the raw "
                    "inputs: pass them too, model.predict(X, raw=texts_or_image_paths).")
            if len(raw) != len(X):
                raise TransferKitInputError(
                    f"raw has {len(raw)} entries but X has {len(X)} rows; give one raw "
                    f"input per row.")
        kinds = self.inputs or ["features"] * len(self.estimators)
        return [(w, m, raw if kind == "raw" else X)
                for w, m, kind in zip(self._weights(), self.estimators, kinds)]

    def _weights(self) -> np.ndarray:
        w = np.asarray(self.weights, dtype=float)
        return w / w.sum()

    @available_if(lambda self: self.task == "classification")
    def predict_proba(self, X, raw=None) -> np.ndarray:
        """Weighted mean of the members' class probabilities, columns in ``classes``."""
        classes = list(self.classes)
        total = np.zeros((len(X), len(classes)))
        for weight, model, rows in self._members(X, raw):
            proba = _positive_scores(model, rows, classes, None)
            if proba is None or proba.ndim != 2:
                predicted = np.asarray(model.predict(rows)).tolist()
                proba = np.zeros((len(X), len(classes)))
                proba[np.arange(len(X)), [classes.index(v) for v in predicted]] = 1.0
            total += weight * proba
        return total

    def predict(self, X, raw=None) -> np.ndarray:
        if self.task == "regression":
            return sum(w * np.asarray(m.predict(rows), dtype=float)
                       for w, m, rows in self._members(X, raw))
        return self.classes_[self.predict_proba(X, raw).argmax(axis=1)]
