"""Instance selection: train on the source rows most relevant to the target.

Instead of re-weighting every source row by its estimated density ratio
:math:`\\hat w(x) \\approx p_t(x)/p_s(x)` (importance weighting), keep the
labelled source rows with the largest :math:`\\hat w` and drop the rest, then
train the estimator with equal weights on the kept source rows and all
labelled target rows.  Selection has lower variance than weighting (no row
gets a huge weight) at the price of a hard cut-off; it is the "select the
relevant source instances" strategy of the instance-based family (Pan & Yang
2010, "A survey on transfer learning", IEEE TKDE 22(10), instance transfer; the
relevance score is any density-ratio weighter, by default the
domain-classifier ratio of Bickel, Brückner & Scheffer 2007, ICML).

How many rows (``n_keep``):

* an ``int`` ``k``: the ``k`` labelled source rows with the largest weight;
* a ``float`` ``f`` in (0, 1]: the top ``ceil(f * n)`` of the ``n``
  labelled source rows;
* ``"auto"`` (default): every labelled source row with
  :math:`\\hat w(x) \\ge 1`.  Weights are normalised to mean 1 over the
  source rows, and :math:`\\mathbb{E}_s[p_t/p_s] = 1`, so :math:`\\hat w \\ge 1`
  estimates :math:`p_t(x) \\ge p_s(x)`: the rows lying where the target is at
  least as dense as the source.  At least ``min_fraction`` (default 10%) of
  the labelled source rows are kept (the top ones by weight), so an almost
  perfectly separating weighter cannot leave the source nearly empty.

* a list or tuple of the above: the one with the best target
  cross-validated score (``cv``-fold over the labelled target rows, the
  ``scoring`` metric; see
  :func:`~transferkit.instance_based.weighted.choose_by_target_cv`); the
  first wins a tie and is used when there are too few labelled target rows
  to choose (fewer than 10, or a class with fewer than 2).

Ties in the weight are broken by row order.  Labelled target rows are always
kept (weight ``target_weight``).

Example
-------
>>> import numpy as np
>>> from transferkit.instance_based import InstanceSelection
>>> rng = np.random.default_rng(0)
>>> Xs, ys = rng.normal(size=(100, 2)), np.tile([0, 1], 50)
>>> Xt, yt = rng.normal(1.0, 1, size=(20, 2)), np.tile([0, 1], 10)
>>> model = InstanceSelection(n_keep=0.5, random_state=0).fit_domains(Xs, ys, Xt, yt)
>>> int(model.selected_.sum()), model.predict(Xt).shape
(50, (20,))
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from transferkit.base import RowSelectingTransfer
from transferkit.domains import DomainInfo
from transferkit.instance_based.weighted import _fit_weighter, choose_by_target_cv
from transferkit.validation import TransferKitInputError

__all__ = ["InstanceSelection"]


class InstanceSelection(RowSelectingTransfer):
    """Keep the labelled source rows a weighter ranks highest; train on them and the target.

    See the module docstring for the selection rule.

    Parameters
    ----------
    estimator : sklearn estimator, optional
        Default: balanced logistic regression (classification) or ridge.
    weighter : weighter, optional
        Anything with ``fit(X, y_tagged)`` setting ``weights_`` (source rows:
        density ratio normalised to mean 1), e.g.
        :class:`~transferkit.instance_based.DiscriminativeWeights` (default),
        :class:`~transferkit.instance_based.KLIEP`,
        :class:`~transferkit.instance_based.NearestNeighbourWeights` (keeps the
        source rows that are nearest neighbours of many target rows).
    n_keep : "auto", int, float or a list of them, default="auto"
    min_fraction : float in (0, 1], default=0.1
        Least fraction of labelled source rows kept by ``"auto"``.
    target_weight : float, default=1.0
        Weight of each labelled target row (kept source rows have weight 1).
    task : {"auto", "classification", "regression"}
    random_state : int, optional
        Passed to the default weighter; seeds the folds of a list ``n_keep``.
    cv : int, default=3
        Folds of the target cross-validation of a list ``n_keep``.
    scoring : str, optional
        Its metric (see :class:`~transferkit.instance_based.ImportanceWeighted`;
        default balanced accuracy or RMSE).
    positive_label : optional
        The class scored by ``*_pos`` metrics and a binary ROC AUC (default:
        the minority class of the labelled target rows).

    Attributes
    ----------
    weighter_ : the fitted weighter.
    selected_ : ndarray of bool, shape (n_rows,)
        The kept source rows.
    n_selected_ : int
    n_keep_ : the ``n_keep`` used (the chosen one of a list).
    n_keep_scores_ : ndarray, the cross-validated score of each ``n_keep`` of a
        list, in its order (empty when nothing was compared).
    chosen_params_ : dict, ``{"n_keep": n_keep_}`` when it was chosen by target
        CV, else empty.
    training_weights_ : ndarray, the weight each row got (0 = unused).
    """

    def __init__(self, estimator=None, weighter=None, n_keep="auto",
                 min_fraction: float = 0.1, target_weight: float = 1.0, task: str = "auto",
                 random_state=None, cv: int = 3, scoring=None, positive_label=None):
        super().__init__(estimator=estimator, task=task, random_state=random_state)
        self.weighter = weighter
        self.n_keep = n_keep
        self.min_fraction = min_fraction
        self.target_weight = target_weight
        self.cv = cv
        self.scoring = scoring
        self.positive_label = positive_label

    def _number_to_keep(self, scores: np.ndarray, keep) -> int:
        n = scores.shape[0]
        if isinstance(keep, str):
            if keep != "auto":
                raise TransferKitInputError(
                    f"n_keep must be 'auto', an int >= 1 or a fraction in (0, 1], got {keep!r}.")
            frac = self.min_fraction
            if (not isinstance(frac, numbers.Real) or isinstance(frac, bool)
                    or not 0 < frac <= 1):
                raise TransferKitInputError(
                    f"min_fraction must be a number in (0, 1], got {frac!r}.")
            return max(int(np.sum(scores >= 1.0)), math.ceil(frac * n))
        if isinstance(keep, numbers.Integral) and not isinstance(keep, bool):
            if keep < 1:
                raise TransferKitInputError(f"n_keep must be >= 1, got {keep!r}.")
            return min(int(keep), n)
        if isinstance(keep, numbers.Real) and not isinstance(keep, bool):
            if not 0 < keep <= 1:
                raise TransferKitInputError(
                    f"A fractional n_keep must lie in (0, 1], got {keep!r}.")
            return math.ceil(float(keep) * n)
        raise TransferKitInputError(
            f"n_keep must be 'auto', an int >= 1 or a fraction in (0, 1], got {keep!r}.")

    def _training_weights(self, X, info: DomainInfo) -> np.ndarray:
        weighter = _fit_weighter(self, X, info)
        rows = np.flatnonzero(info.labelled_source)
        scores = np.asarray(weighter.weights_, dtype=float)[rows]
        order = np.argsort(-scores, kind="stable")
        options = list(self.n_keep) if isinstance(self.n_keep, (list, tuple)) else [self.n_keep]
        if not options:
            raise TransferKitInputError("n_keep is an empty list; give at least one rule.")
        candidates = []
        for keep in options:
            kept = np.zeros(rows.size)
            kept[order[:self._number_to_keep(scores, keep)]] = 1.0
            candidates.append(kept)
        best, self.n_keep_scores_ = choose_by_target_cv(self, X, info, candidates)
        self.n_keep_ = options[best]
        self.chosen_params_ = {"n_keep": self.n_keep_} if self.n_keep_scores_.size else {}
        selected = np.zeros(len(info.labels), dtype=bool)
        selected[rows] = candidates[best] > 0
        self.selected_ = selected
        self.n_selected_ = int(selected.sum())
        weights = selected.astype(float)
        weights[info.labelled_target] = float(self.target_weight)
        return weights
