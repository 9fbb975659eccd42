"""Train an estimator on source and target rows with source importance weights.

:class:`ImportanceWeighted` fits a *weighter* (by default
:class:`~transferkit.instance_based.discriminative.DiscriminativeWeights`)
on all rows, source and target, labelled or not, and then fits the plain
estimator on every labelled row: source rows weighted by their estimated
density ratio ``p_t(x)/p_s(x)``, labelled target rows with weight
``target_weight``.  This is importance-weighted empirical risk minimisation
under covariate shift (Shimodaira 2000, "Improving predictive inference under
covariate shift by weighting the log-likelihood function", J. Stat. Plan.
Inference 90:227-244).

Any weighter with ``fit(X, y_tagged)`` and a ``weights_`` attribute (one
weight per row, source rows meaningful) plugs in.

Example
-------
>>> import numpy as np
>>> from transferkit.instance_based import ImportanceWeighted
>>> rng = np.random.default_rng(0)
>>> Xs, ys = rng.normal(size=(60, 2)), np.tile([0, 1], 30)
>>> Xt, yt = rng.normal(0.5, 1, size=(20, 2)), np.tile([0, 1], 10)
>>> model = ImportanceWeighted(random_state=0).fit_domains(Xs, ys, Xt, yt)
>>> model.predict(Xt).shape
(20,)
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from transferkit.base import RowSelectingTransfer
from transferkit.domains import DomainInfo, tag_domains
from transferkit.instance_based.discriminative import DiscriminativeWeights
from transferkit.validation import TransferKitInputError

__all__ = ["ImportanceWeighted"]


def _fit_weighter(self, X, info: DomainInfo):
    """Check ``self.target_weight``, fit (a clone of) ``self.weighter`` on all rows.

    The default weighter is ``DiscriminativeWeights(random_state=self.random_state)``.
    Sets and returns ``self.weighter_``.
    """
    if not np.isfinite(self.target_weight) or self.target_weight <= 0:
        raise TransferKitInputError(
            f"target_weight must be a positive number, got {self.target_weight!r}."
        )
    weighter = (clone(self.weighter) if self.weighter is not None
                else DiscriminativeWeights(random_state=self.random_state))
    weighter.fit(X, tag_domains(info.labels, info.domains, info.is_target))
    self.weighter_ = weighter
    return weighter


class ImportanceWeighted(RowSelectingTransfer):
    """Importance-weighted training on source plus labelled target rows.

    Parameters
    ----------
    estimator : sklearn estimator, optional
        Default: balanced logistic regression (classification) or ridge.
    weighter : weighter, optional
        Default: ``DiscriminativeWeights(random_state=random_state)``.
    target_weight : float, default=1.0
        Weight of each labelled target row.
    task : {"auto", "classification", "regression"}
    random_state : int, optional

    Attributes
    ----------
    weighter_ : the fitted weighter.
    training_weights_ : ndarray, the weight each row got (0 = unused).
    """

    def __init__(self, estimator=None, weighter=None, target_weight: float = 1.0,
                 task: str = "auto", random_state=None):
        super().__init__(estimator=estimator, task=task, random_state=random_state)
        self.weighter = weighter
        self.target_weight = target_weight

    def _training_weights(self, X, info: DomainInfo) -> np.ndarray:
        weighter = _fit_weighter(self, X, info)
        weights = np.where(info.labelled_source, weighter.weights_, 0.0)
        weights[info.labelled_target] = float(self.target_weight)
        return weights
