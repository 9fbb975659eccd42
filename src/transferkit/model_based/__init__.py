"""Model-based transfer: reuse a source *model* (its weights or its trees) on the target.

* :class:`RegularizedTransferRegressor`, :class:`RegularizedTransferClassifier`:
  linear / logistic models pulled towards the source model's weights
  (biased regularisation, the linear case of L2-SP).
* :class:`ContinuedBoostingRegressor`, :class:`ContinuedBoostingClassifier`:
  gradient-boosted trees fitted on the source, then further trees on the target.

Every estimator takes the tagged ``y`` of :mod:`transferkit.domains` in
``fit`` (or separate arrays through ``fit_domains``) and predicts plain ``X``.
"""

from transferkit.model_based.boosting import (
    ContinuedBoostingClassifier,
    ContinuedBoostingRegressor,
)
from transferkit.model_based.regularized import (
    RegularizedTransferClassifier,
    RegularizedTransferRegressor,
)

__all__ = [
    "ContinuedBoostingClassifier",
    "ContinuedBoostingRegressor",
    "RegularizedTransferClassifier",
    "RegularizedTransferRegressor",
]
