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

Flattening.  Shimodaira (2000) also proposed training with the *flattened*
weights :math:`w(x)^\\lambda`, :math:`0 \\le \\lambda \\le 1`: :math:`\\lambda = 1`
is the full correction (unbiased but high-variance when a few rows carry most
of the weight), :math:`\\lambda = 0` ignores the weights (every source row
counts once, as in pooled training).  Sugiyama, Krauledat & Müller (2007,
"Covariate shift adaptation by importance weighted cross validation", JMLR
8:985-1005) choose :math:`\\lambda` by validation.  With labelled target rows
the validation here is the target protocol itself: cross-validation over the
labelled target rows, every source row always in training (see
:func:`choose_flattening`).

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
>>> float(model.flattening_) in (0.0, 0.5, 1.0)
True
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import clone
from sklearn.utils import _safe_indexing

from transferkit.base import RowSelectingTransfer
from transferkit.domains import DomainInfo, tag_domains
from transferkit.evaluation.tuning import (
    OutOfFoldScorer,
    check_cv,
    scoring_metric,
    target_folds,
)
from transferkit.instance_based.discriminative import DiscriminativeWeights
from transferkit.validation import TransferKitInputError

__all__ = ["ImportanceWeighted", "flatten_weights", "FLATTENING_GRID"]

#: Exponents :math:`\lambda` searched by ``flattening="auto"``.
FLATTENING_GRID = (0.0, 0.5, 1.0)


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


def flatten_weights(weights: np.ndarray, exponent: float) -> np.ndarray:
    """Flattened weights :math:`w^\\lambda`, rescaled to the mean of ``weights``.

    The rescaling keeps the total weight of the rows (so the balance between
    source and target rows does not change with :math:`\\lambda`).
    :math:`\\lambda = 0` gives every row the mean weight, also rows of weight 0;
    :math:`\\lambda = 1` returns the weights unchanged.

    >>> flatten_weights(np.array([0.0, 1.0, 3.0]), 0.5).round(3)
    array([0.   , 1.464, 2.536])
    """
    weights = np.asarray(weights, dtype=float)
    mean = weights.mean() if weights.size else 0.0
    if exponent == 1 or mean <= 0:
        return weights.copy()
    if exponent == 0:
        return np.full_like(weights, mean)
    flat = weights**exponent
    return flat * (mean / flat.mean())


def _check_exponent(value, name: str) -> float:
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not 0 <= value <= 1):
        raise TransferKitInputError(f"{name} must be a number in [0, 1], got {value!r}.")
    return float(value)


def _check_flattening_grid(grid) -> np.ndarray:
    try:
        values = [_check_exponent(v, "each flattening_grid value") for v in grid]
    except TypeError:
        raise TransferKitInputError(
            f"flattening_grid must be a sequence of numbers in [0, 1], got {grid!r}."
        ) from None
    if not values:
        raise TransferKitInputError("flattening_grid is empty; give at least one exponent.")
    return np.unique(values)[::-1]  # largest first: ties go to the fuller correction


class ImportanceWeighted(RowSelectingTransfer):
    """Importance-weighted training on source plus labelled target rows.

    Source rows are weighted by the weighter's ratio estimate, flattened to
    :math:`w^\\lambda` (see the module docstring), labelled target rows by
    ``target_weight``.

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
        Seeds the default weighter, the folds and the resample fallback.
    flattening : "auto" or float in [0, 1], default="auto"
        Exponent :math:`\\lambda` of the source weights.  ``"auto"``: chosen
        from ``flattening_grid`` by ``cv``-fold cross-validation over the
        labelled target rows (see :func:`choose_flattening`); with fewer than
        10 labelled target rows, or a class with fewer than 2
        (:func:`~transferkit.evaluation.tuning.target_folds`), the largest
        exponent of the grid (1, the full weights, by default).  The search
        costs ``cv * len(flattening_grid)`` extra fits of the estimator (the
        weighter is fitted once).
    flattening_grid : sequence of float, default=(0, 0.5, 1)
    cv : int, default=3
        Folds of the target cross-validation of ``flattening="auto"``
        (stratified for classification; fewer when the smallest class has
        fewer labelled target rows).
    scoring : str, optional
        Metric of that cross-validation, computed on the out-of-fold
        predictions of all labelled target rows together: a name of
        :data:`transferkit.evaluation.METRICS` (``"roc_auc"`` needs the
        estimator's ``predict_proba`` or ``decision_function``).  Default:
        ``"balanced_accuracy"`` (classification) or ``"rmse"``
        (regression), the autopilot's defaults; the autopilot passes its own
        ``metric``.
    positive_label : optional
        The class scored by ``*_pos`` metrics and a binary ROC AUC.  Default
        for a binary task: the minority class of the labelled target rows.

    Attributes
    ----------
    weighter_ : the fitted weighter.
    flattening_ : float, the exponent used.
    flattening_scores_ : ndarray, the cross-validated score of each exponent of
        ``flattening_grid`` in ascending order (empty when nothing was searched).
    chosen_params_ : dict, ``{"flattening": flattening_}`` when it was chosen by
        target CV, else empty.
    training_weights_ : ndarray, the weight each row got (0 = unused).
    """

    def __init__(self, estimator=None, weighter=None, target_weight: float = 1.0,
                 task: str = "auto", random_state=None, flattening="auto",
                 flattening_grid=FLATTENING_GRID, cv: int = 3, scoring=None,
                 positive_label=None):
        super().__init__(estimator=estimator, task=task, random_state=random_state)
        self.weighter = weighter
        self.target_weight = target_weight
        self.flattening = flattening
        self.flattening_grid = flattening_grid
        self.cv = cv
        self.scoring = scoring
        self.positive_label = positive_label

    def _training_weights(self, X, info: DomainInfo) -> np.ndarray:
        weighter = _fit_weighter(self, X, info)
        source = np.asarray(weighter.weights_, dtype=float)[info.labelled_source]
        if isinstance(self.flattening, str):
            if self.flattening != "auto":
                raise TransferKitInputError(
                    f"flattening must be 'auto' or a number in [0, 1], got "
                    f"{self.flattening!r}.")
            exponent, scores = choose_flattening(self, X, info, source)
        else:
            exponent = _check_exponent(self.flattening, "flattening")
            scores = np.empty(0)
        self.flattening_, self.flattening_scores_ = exponent, scores
        self.chosen_params_ = {"flattening": exponent} if scores.size else {}
        return _row_weights(info, flatten_weights(source, exponent), self.target_weight)


def _row_weights(info: DomainInfo, source: np.ndarray, target_weight: float,
                 held_out=None) -> np.ndarray:
    """Per-row training weights: ``source`` on the labelled source rows,
    ``target_weight`` on the labelled target rows but ``held_out``, 0 elsewhere."""
    weights = np.zeros(len(info.is_target))
    weights[info.labelled_source] = source
    weights[info.labelled_target] = float(target_weight)
    if held_out is not None:
        weights[held_out] = 0.0
    return weights


def choose_by_target_cv(model: RowSelectingTransfer, X, info: DomainInfo,
                        candidates: list) -> tuple[int, np.ndarray]:
    """Which candidate source weights give the best target cross-validated score.

    ``candidates`` are weight vectors for the labelled source rows.  For each
    candidate and each fold of the labelled target rows
    (:func:`~transferkit.evaluation.tuning.target_folds` with ``model.cv``),
    ``model``'s estimator is fitted on the labelled source rows with those
    weights plus the labelled target rows of the other folds (weight
    ``model.target_weight``), and predicts the fold.  The metric
    (``model.scoring``, positive class ``model.positive_label``) of each
    candidate is computed once, on the out-of-fold outputs of all labelled
    target rows (:class:`~transferkit.evaluation.tuning.OutOfFoldScorer`).
    Returns the index of the best candidate (the first on a tie) and the
    scores; ``(0, empty)`` when there is one candidate or too few labelled
    target rows to choose.
    """
    scoring_metric(model.scoring, model.task_)  # a bad name fails even without a search
    check_cv(model.cv)
    if len(candidates) == 1:
        return 0, np.empty(0)
    folds = target_folds(info, model.task_, model.cv, model.random_state)
    if folds is None:
        return 0, np.empty(0)
    scorer = OutOfFoldScorer.for_target(model.scoring, model.task_, info, model.positive_label)
    truth = info.labels_of(np.concatenate(folds))
    scores = np.empty(len(candidates))
    for i, source in enumerate(candidates):
        outputs = [
            scorer.outputs(model._fit_estimator(
                X, info, _row_weights(info, source, model.target_weight, held_out=test)
            ), _safe_indexing(X, test))
            for test in folds
        ]
        scores[i] = scorer.score(truth, outputs)
    return scorer.best(scores), scores


def choose_flattening(model: ImportanceWeighted, X, info: DomainInfo,
                      source: np.ndarray) -> tuple[float, np.ndarray]:
    """The exponent of ``model.flattening_grid`` with the best target cross-validated score.

    Each exponent's candidate weights are ``flatten_weights(source, lambda)``
    (the weighter was fitted once, on all rows, and uses no labels), compared
    by :func:`choose_by_target_cv`; the largest exponent wins a tie and is
    used when the labelled target rows are too few to choose.  Returns
    ``(exponent, scores)`` with the scores in ascending exponent order (empty
    when nothing was compared).
    """
    grid = _check_flattening_grid(model.flattening_grid)  # largest first
    best, scores = choose_by_target_cv(
        model, X, info, [flatten_weights(source, exponent) for exponent in grid])
    return float(grid[best]), scores[::-1].copy()
