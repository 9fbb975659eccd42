"""Density-ratio weights from a probabilistic domain classifier.

For covariate shift (``p_s(y|x) = p_t(y|x)``, ``p_s(x) != p_t(x)``) a source
row should count with weight ``w(x) = p_t(x) / p_s(x)``.  With a classifier
estimating ``P(target | x)`` on ``n_s`` source and ``n_t`` target rows, Bayes'
rule gives

.. math::

    w(x) = \\frac{n_s}{n_t} \\, \\frac{P(\\text{target} \\mid x)}{1 - P(\\text{target} \\mid x)}

(Bickel, Brückner & Scheffer 2007, "Discriminative learning for differing
training and test distributions", ICML; Sugiyama, Suzuki & Kanamori 2012,
*Density Ratio Estimation in Machine Learning*, ch. 4).  The weights of the
rows the classifier was fitted on are cross-fitted (each row's probability
comes from a model that did not see it), which keeps an over-fitted
classifier from pushing every weight to 0 or infinity.  Weights are clipped
to ``[0, clip]`` and then normalised to mean 1 over the source rows.

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains
>>> from transferkit.instance_based.discriminative import DiscriminativeWeights
>>> rng = np.random.default_rng(0)
>>> X, y = stack_domains(rng.normal(0, 1, (200, 1)), np.zeros(200),
...                      rng.normal(1, 1, (100, 1)))
>>> w = DiscriminativeWeights(random_state=0).fit(X, y).weights_
>>> bool(w[:200][X[:200, 0] > 1].mean() > w[:200][X[:200, 0] < 0].mean())
True
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted

from transferkit.domains import read_domains
from transferkit.validation import TransferKitInputError, check_matrix, check_scale

__all__ = ["DiscriminativeWeights"]

_EPS = 1e-6


class DiscriminativeWeights(BaseEstimator):
    """Importance weights ``p_t(x)/p_s(x)`` from a domain classifier.

    Parameters
    ----------
    classifier : sklearn classifier with ``predict_proba``, optional
        Default: ``LogisticRegression(C=1.0)``.
    calibration : {None, "sigmoid", "isotonic"}, default=None
        Wrap ``classifier`` in ``CalibratedClassifierCV`` with this method;
        use it for classifiers whose probabilities are poorly calibrated
        (trees, SVMs).  Logistic regression needs none.
    clip : float, default=20.0
        Upper bound on a weight before normalisation (the ratio is unbounded
        where the source has little mass; clipping trades bias for variance).
    n_splits : int, default=5
        Folds for the cross-fitted weights of the fitted rows.
    random_state : int, optional

    Attributes
    ----------
    weights_ : ndarray of shape (n_rows,)
        Weight of each row seen in ``fit``: the ratio for source rows
        (normalised to mean 1 over source rows) and 1 for target rows.
    classifier_ : fitted classifier used by :meth:`compute_weights`.
    """

    def __init__(self, classifier=None, calibration=None, clip: float = 20.0,
                 n_splits: int = 5, random_state=None):
        self.classifier = classifier
        self.calibration = calibration
        self.clip = clip
        self.n_splits = n_splits
        self.random_state = random_state

    def _make_classifier(self):
        base = clone(self.classifier) if self.classifier is not None else LogisticRegression(
            C=1.0, max_iter=2000)
        if self.calibration is None:
            return base
        if self.calibration not in ("sigmoid", "isotonic"):
            raise TransferKitInputError(
                f"calibration must be None, 'sigmoid' or 'isotonic', got {self.calibration!r}."
            )
        return CalibratedClassifierCV(base, method=self.calibration, cv=3)

    def _ratio(self, p_target: np.ndarray) -> np.ndarray:
        p = np.clip(p_target, _EPS, 1 - _EPS)
        ratio = self.prior_ratio_ * p / (1 - p)
        return np.minimum(ratio, self.clip)

    def fit(self, X, y):
        if not np.isfinite(self.clip) or self.clip <= 0:
            raise TransferKitInputError(f"clip must be a positive number, got {self.clip!r}.")
        info = read_domains(y, n_rows=len(X))
        X = check_scale(check_matrix(X, name="X"), "DiscriminativeWeights")
        is_target = info.is_target.astype(int)
        n_t, n_s = int(is_target.sum()), int((1 - is_target).sum())
        self.prior_ratio_ = n_s / n_t
        folds = min(self.n_splits, n_t, n_s)
        if folds < 2:
            raise TransferKitInputError(
                "Domain-classifier weights need at least 2 source and 2 target rows."
            )
        cv = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        p_oof = cross_val_predict(self._make_classifier(), X, is_target, cv=cv,
                                  method="predict_proba")[:, 1]
        weights = np.ones(len(is_target))
        source = ~info.is_target
        raw = self._ratio(p_oof[source])
        self.normaliser_ = float(raw.mean()) if raw.mean() > 0 else 1.0
        weights[source] = raw / self.normaliser_
        self.weights_ = weights
        self.classifier_ = self._make_classifier().fit(X, is_target)
        return self

    def compute_weights(self, X) -> np.ndarray:
        """Weights of new rows taken as source rows (same normalisation as fit)."""
        check_is_fitted(self, "classifier_")
        p = self.classifier_.predict_proba(X)[:, 1]
        return self._ratio(p) / self.normaliser_
