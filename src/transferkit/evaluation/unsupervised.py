"""Unsupervised validation when the target has no labels (weaker evidence).

Without target labels nothing can be measured on the target directly.
Importance-weighted cross-validation (IWCV; Sugiyama, Krauledat & Mueller,
2007) estimates the *target* risk from held-out *source* rows re-weighted by
the density ratio :math:`w(x) = p_t(x) / p_s(x)`:

.. math::

    \\hat R_t = \\frac{\\sum_{i \\in \\text{fold}} w(x_i)\\, \\ell(y_i, \\hat f(x_i))}
                     {\\sum_{i \\in \\text{fold}} w(x_i)},

which is (asymptotically) unbiased for the target risk under covariate shift
(:math:`p_t(y|x) = p_s(y|x)`), but only then, and with a variance that grows
with the spread of the weights.  Treat it as weaker evidence than any score
on labelled target rows: results carry the flag :data:`EVIDENCE`.

Scheme (:class:`SourceSplitter`): K-fold over the labelled *source* rows; the
estimator trains on the other source rows plus all target rows (it sees the
tagged ``y``, so a transfer method can use the unlabelled target rows) and is
scored on the held-out source rows with weights :math:`w`.

Density ratio (:func:`density_ratio_weights`).  A probabilistic domain
classifier (standardisation + logistic regression) estimates
:math:`\\pi(x) = P(\\text{target} \\mid x)`; by Bayes' rule

.. math::

    w(x) = \\frac{n_s}{n_t} \\, \\frac{\\pi(x)}{1 - \\pi(x)}.

Each row's :math:`\\pi(x)` is *cross-fitted* (predicted by a classifier that
did not see that row), which avoids the over-confident extreme weights an
in-sample fit produces.  The weights are then normalised to mean 1 over the
source rows, clipped at ``min(max_weight, quantile_{clip_quantile}(w))``
(default the 99th percentile, at most 20) and renormalised to mean 1 over the
source rows (so after the last step the largest weight can exceed the cap
slightly).  Several source domains are pooled into one source distribution.
The weights use features only, never labels, so computing them once on all
rows leaks no label information into the folds.

References
----------
M. Sugiyama, M. Krauledat and K.-R. Mueller (2007), "Covariate shift
adaptation by importance weighted cross validation", JMLR 8:985-1005.
S. Bickel, M. Brueckner and T. Scheffer (2009), "Discriminative learning
under covariate shift", JMLR 10:2137-2155 (density ratio from a domain
classifier).

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains
>>> from transferkit.evaluation.unsupervised import density_ratio_weights
>>> rng = np.random.default_rng(0)
>>> X, y = stack_domains(rng.normal(0, 1, (200, 1)), rng.normal(size=200),
...                      rng.normal(1, 1, (200, 1)))
>>> w = density_ratio_weights(X, y, random_state=0)
>>> src = ~y["is_target"].to_numpy()
>>> round(float(w[src].mean()), 6), bool(np.corrcoef(X[src, 0], w[src])[0, 1] > 0.5)
(1.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from transferkit.domains import DomainInfo, read_domains
from transferkit.evaluation.protocol import (
    _check_indices,
    _fit_predict,
    _LabelledRowSplitter,
    _metrics,
    _resolve_labels,
)
from transferkit.validation import TransferKitInputError, check_matrix

__all__ = [
    "EVIDENCE",
    "SourceSplitter",
    "density_ratio_weights",
    "effective_sample_size",
    "iwcv_fit_and_score",
    "importance_weighted_score",
    "IWCVResult",
]

#: Flag attached to every unsupervised result.
EVIDENCE = "unsupervised (importance-weighted source validation; weaker than target labels)"

_EPS = 1e-6


class SourceSplitter(_LabelledRowSplitter):
    """Repeated (stratified) K-fold over the labelled *source* rows of a tagged ``y``.

    Test = one fold of the labelled source rows; train = every other row
    (the other source rows and all target rows).  Parameters as in
    :class:`~transferkit.evaluation.protocol.TargetSplitter` (stratified by
    label, pooled across source domains).

    Examples
    --------
    >>> SourceSplitter(n_splits=4, random_state=0).get_n_splits()
    4
    """

    _what = "labelled source rows"

    def _pool(self, info: DomainInfo) -> np.ndarray:
        return info.labelled_source

    def _no_rows_hint(self) -> str:
        return "Importance-weighted validation needs labelled source rows."


def effective_sample_size(weights) -> float:
    """Kish's effective sample size :math:`(\\sum w)^2 / \\sum w^2`.

    Equals ``n`` for equal weights and shrinks as the weights spread; a small
    value means the importance-weighted estimate rests on a few rows.

    >>> effective_sample_size([1, 1, 1, 1]), effective_sample_size([4, 0, 0, 0])
    (4.0, 1.0)
    """
    w = np.asarray(weights, dtype=float)
    denom = float(np.sum(w**2))
    return float(np.sum(w) ** 2 / denom) if denom > 0 else 0.0


def density_ratio_weights(
    X,
    y,
    *,
    n_splits: int = 5,
    clip_quantile: float = 0.99,
    max_weight: float = 20.0,
    domain_classifier=None,
    random_state=None,
) -> np.ndarray:
    """Cross-fitted density-ratio weights :math:`p_t(x)/p_s(x)` for every row.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n, d)
        Numeric features of all domains.
    y : DataFrame
        Tagged ``y``; only ``is_target`` is used.
    n_splits : int, default=5
        Folds for cross-fitting the domain classifier (reduced to the size of
        the smaller domain when that is smaller; at least 2).
    clip_quantile : float in (0, 1], default=0.99
        Weights above this quantile of the source weights are clipped.
    max_weight : float, default=20.0
        Absolute cap on the weights (after normalising to mean 1).
    domain_classifier : classifier with predict_proba, optional
        Default ``make_pipeline(StandardScaler(), LogisticRegression())``.
    random_state : int, RandomState or None
        Controls the cross-fitting folds.

    Returns
    -------
    ndarray of shape (n,)
        Weights with mean 1 over the source rows.  Target rows get the same
        formula (handy for diagnostics; IWCV uses source rows only).
    """
    info = read_domains(y)
    Xm = check_matrix(X, name="X")
    if Xm.shape[0] != len(y):
        raise TransferKitInputError(f"X has {Xm.shape[0]} rows but y has {len(y)}.")
    if not 0.0 < clip_quantile <= 1.0:
        raise TransferKitInputError(f"clip_quantile must be in (0, 1], got {clip_quantile}.")
    if not max_weight > 1.0:
        raise TransferKitInputError(f"max_weight must be > 1, got {max_weight}.")
    domain = info.is_target.astype(int)
    n_t = int(domain.sum())
    n_s = int(domain.size - n_t)
    k = min(int(n_splits), n_s, n_t)
    if k < 2:
        raise TransferKitInputError(
            f"Cross-fitting the domain classifier needs at least 2 source and 2 target rows "
            f"(got {n_s} source, {n_t} target) and n_splits >= 2."
        )
    base = (
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        if domain_classifier is None
        else domain_classifier
    )
    prob = np.empty(domain.size)
    folds = StratifiedKFold(k, shuffle=True, random_state=random_state)
    for fit_rows, pred_rows in folds.split(Xm, domain):
        clf = clone(base).fit(Xm[fit_rows], domain[fit_rows])
        col = list(np.asarray(clf.classes_)).index(1)
        prob[pred_rows] = clf.predict_proba(Xm[pred_rows])[:, col]
    prob = np.clip(prob, _EPS, 1.0 - _EPS)
    w = (n_s / n_t) * prob / (1.0 - prob)
    source = ~info.is_target
    w /= w[source].mean()
    cap = min(float(max_weight), float(np.quantile(w[source], clip_quantile)))
    w = np.minimum(w, cap)
    w /= w[source].mean()
    return w


def iwcv_fit_and_score(
    estimator, X, y, train, test, weights, task=None, positive_label=None
) -> dict:
    """One IWCV fold: fit on ``train``, score held-out labelled source rows weighted.

    Parameters
    ----------
    estimator : estimator
        Fitted as ``estimator.fit(X[train], y[train])`` with the tagged ``y``.
    X, y : features and tagged ``y`` of all rows.
    train, test : array of int
        E.g. from :class:`SourceSplitter`; test rows must be labelled source
        rows, none of them in ``train``.
    weights : array-like of shape (n,)
        Density-ratio weights of every row (:func:`density_ratio_weights`).
    task, positive_label
        As in :func:`~transferkit.evaluation.protocol.fit_and_score`, decided
        from the labelled source rows.

    Returns
    -------
    dict
        Importance-weighted metrics under their usual names (``rmse``,
        ``balanced_accuracy``, ...), the plain source metrics as
        ``unweighted_<name>``, ``effective_sample_size`` of the test weights,
        ``fit_seconds``, ``n_train``, ``n_test`` and ``evidence``.
    """
    info = read_domains(y)
    train, test = _check_indices(train, test, len(y))
    if not info.labelled_source[test].all():
        bad = test[~info.labelled_source[test]]
        raise TransferKitInputError(
            f"{bad.size} test row(s) are not labelled source rows (first: "
            f"{bad[:5].tolist()}); importance-weighted validation tests source rows."
        )
    w = np.asarray(weights, dtype=float).ravel()
    if w.shape[0] != len(y):
        raise TransferKitInputError(f"weights has {w.shape[0]} entries but y has {len(y)}.")
    task, classes, positive_label = _resolve_labels(
        info.labels[info.labelled_source], task, positive_label
    )
    y_pred, y_score, fit_seconds, predict_seconds = _fit_predict(
        estimator, X, y, train, test, task, classes, positive_label
    )
    y_true = info.labels[test]
    result = _metrics(task, y_true, y_pred, y_score, classes, positive_label, w[test])
    plain = _metrics(task, y_true, y_pred, y_score, classes, positive_label)
    result.update({f"unweighted_{k}": v for k, v in plain.items()})
    result["effective_sample_size"] = effective_sample_size(w[test])
    result["fit_seconds"] = fit_seconds
    result["predict_seconds"] = predict_seconds
    result["n_train"] = int(train.size)
    result["n_test"] = int(test.size)
    result["evidence"] = EVIDENCE
    return result


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


@dataclass
class IWCVResult:
    """Result of :func:`importance_weighted_score`.

    Attributes
    ----------
    scores : DataFrame
        One row per fold (see :func:`iwcv_fit_and_score`).
    mean : dict
        Fold means of every numeric column (NaN-aware).
    weights : ndarray of shape (n,)
        The density-ratio weights used.
    effective_sample_size : float
        Kish ESS of the weights over all labelled source rows, against their
        count ``n_source_labelled``.
    evidence : str
        Always :data:`EVIDENCE`: this is weaker than target-label evidence.
    """

    scores: pd.DataFrame
    mean: dict
    weights: np.ndarray
    effective_sample_size: float
    n_source_labelled: int
    evidence: str = field(default=EVIDENCE)


def importance_weighted_score(
    estimator,
    X,
    y,
    *,
    cv=None,
    weights=None,
    task=None,
    positive_label=None,
    n_jobs=None,
    random_state=None,
    **weight_params,
) -> IWCVResult:
    """Importance-weighted cross-validation of ``estimator`` (unsupervised target).

    Parameters
    ----------
    estimator : estimator
        Reads the tagged ``y`` (a transferkit estimator or a Pipeline ending
        in one).
    X : array-like or DataFrame of shape (n, d)
        Numeric features of all domains.
    y : DataFrame
        Tagged ``y``; target rows may all be unlabelled.
    cv : splitter, default=SourceSplitter(5, random_state=random_state)
    weights : array-like of shape (n,), optional
        Precomputed density-ratio weights; default
        :func:`density_ratio_weights` ``(X, y, random_state=random_state,
        **weight_params)``.
    task, positive_label
        As in :func:`iwcv_fit_and_score`.
    n_jobs : int or None
        Folds in parallel (joblib).
    random_state : int, RandomState or None

    Returns
    -------
    IWCVResult
        ``result.mean["rmse"]`` (say) estimates the target RMSE; compare with
        ``result.mean["unweighted_rmse"]``, the plain source estimate.
    """
    if weights is None:
        weights = density_ratio_weights(X, y, random_state=random_state, **weight_params)
    elif weight_params:
        raise TransferKitInputError(
            f"Options {sorted(weight_params)} configure the weight estimate; they cannot "
            "be combined with precomputed weights."
        )
    weights = np.asarray(weights, dtype=float).ravel()
    if weights.shape[0] != len(y) or not np.all(np.isfinite(weights)) or (weights < 0).any():
        raise TransferKitInputError(
            "weights must be finite, non-negative, one per row of X."
        )
    cv = SourceSplitter(n_splits=5, random_state=random_state) if cv is None else cv
    splits = list(cv.split(X, y))
    rows = Parallel(n_jobs=n_jobs)(
        delayed(iwcv_fit_and_score)(
            estimator, X, y, train, test, weights, task, positive_label
        )
        for train, test in splits
    )
    scores = pd.DataFrame(rows)
    scores.insert(0, "fold", np.arange(len(rows)))
    numeric = scores.drop(columns=["fold", "evidence"]).select_dtypes("number")
    mean = {c: _nanmean(numeric[c].to_numpy(dtype=float)) for c in numeric.columns}
    labelled_source = read_domains(y).labelled_source
    return IWCVResult(
        scores=scores,
        mean=mean,
        weights=weights,
        effective_sample_size=effective_sample_size(weights[labelled_source]),
        n_source_labelled=int(labelled_source.sum()),
    )
