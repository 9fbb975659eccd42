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

Density ratio: by default
:class:`~transferkit.instance_based.DiscriminativeWeights` with a
standardisation + logistic regression domain classifier estimates
:math:`\\pi(x) = P(\\text{target} \\mid x)`; by Bayes' rule

.. math::

    w(x) = \\frac{n_s}{n_t} \\, \\frac{\\pi(x)}{1 - \\pi(x)}.

Each row's :math:`\\pi(x)` is cross-fitted and the ratio clipped and
normalised to mean 1 over the source rows (see that class).  Several source
domains are pooled into one source distribution.  The weights use features
only, never labels, so computing them once on all rows leaks no label
information into the folds.

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
>>> from sklearn.linear_model import LogisticRegression
>>> from transferkit.baselines import SourceOnly
>>> from transferkit.domains import stack_domains
>>> from transferkit.evaluation.unsupervised import importance_weighted_score
>>> rng = np.random.default_rng(0)
>>> Xs, Xt = rng.normal(0, 1, (200, 2)), rng.normal(1, 1, (100, 2))
>>> X, y = stack_domains(Xs, (Xs[:, 0] > 0).astype(int), Xt)
>>> result = importance_weighted_score(SourceOnly(), X, y, random_state=0)
>>> 0.5 < result.mean["accuracy"] <= 1.0
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
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
from transferkit.instance_based.discriminative import DiscriminativeWeights
from transferkit.validation import TransferKitInputError

__all__ = [
    "EVIDENCE",
    "SourceSplitter",
    "effective_sample_size",
    "iwcv_fit_and_score",
    "importance_weighted_score",
    "IWCVResult",
]

#: Flag attached to every unsupervised result.
EVIDENCE = "unsupervised (importance-weighted source validation; weaker than target labels)"


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
        Density-ratio weights of every row (e.g.
        ``DiscriminativeWeights().fit(X, y).weights_``).
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
        info.labels_of(info.labelled_source), task, positive_label
    )
    y_pred, y_score, fit_seconds, predict_seconds, _, _ = _fit_predict(
        estimator, X, y, train, test, task, classes, positive_label
    )
    y_true = info.labels_of(test)
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
        Precomputed density-ratio weights; default the ``weights_`` of
        ``DiscriminativeWeights(classifier=StandardScaler + LogisticRegression,
        random_state=random_state, **weight_params)`` fitted on ``X, y``.
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
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        weights = DiscriminativeWeights(classifier=classifier, random_state=random_state,
                                        **weight_params).fit(X, y).weights_
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
