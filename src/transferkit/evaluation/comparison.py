"""Paired comparison of a transfer strategy against the target-only baseline.

Fold scores from repeated K-fold cross-validation are *not* independent: the
training sets of two folds share most of their rows.  The plain paired t-test
ignores that and finds "significant" differences far too often.  Nadeau &
Bengio's corrected resampled t-test inflates the variance to account for it.
For :math:`J = K R` paired per-fold differences :math:`d_j` (strategy minus
baseline, both evaluated on the same folds),

.. math::

    \\bar d = \\frac1J \\sum_j d_j, \\qquad
    \\hat\\sigma^2 = \\frac{1}{J-1}\\sum_j (d_j - \\bar d)^2,

    t = \\frac{\\bar d}{\\sqrt{\\left(\\frac1J + \\frac{n_{test}}{n_{train}}\\right)
    \\hat\\sigma^2}}, \\qquad \\text{df} = J - 1,

with a two-sided p-value from Student's t and the matching interval
:math:`\\bar d \\pm t_{1-\\alpha/2,\\,J-1}\\sqrt{(1/J + n_{test}/n_{train})\\hat\\sigma^2}`.
Without the :math:`n_{test}/n_{train}` term this is the ordinary paired t-test
(:func:`scipy.stats.ttest_rel`).

Choice of :math:`n_{train}`.  In transferkit's protocol every fold trains on
*all* source rows and tests on labelled target rows; only the labelled target
rows are resampled between folds, and it is their overlap that correlates
the fold scores.  So :math:`n_{train}` is the number of labelled **target**
rows in each training set (``n_train_target`` from
:func:`~transferkit.evaluation.protocol.fit_and_score`; :math:`(K-1)/K` of the
labelled target rows) and :math:`n_{test}` the test-fold size, giving
:math:`n_{test}/n_{train} \\approx 1/(K-1)`.  Counting the source rows in
:math:`n_{train}` would shrink the correction towards zero and make the test
as over-confident as the uncorrected one.

Zero variance.  When all differences are equal the statistic is degenerate;
we return ``t = 0, p = 1`` if they are all zero (identical scores) and
``t = +/-inf, p = 0`` otherwise (a constant non-zero gain or loss, in the
direction of its sign), with a zero-width interval at :math:`\\bar d`.

Reference: C. Nadeau and Y. Bengio (2003), "Inference for the generalization
error", Machine Learning 52:239-281.  See also R. R. Bouckaert and E. Frank
(2004), "Evaluating the replicability of significance tests for comparing
learning algorithms", PAKDD.

Example
-------
>>> from transferkit.evaluation.comparison import transfer_verdict
>>> v = transfer_verdict([0.80, 0.82, 0.85, 0.81, 0.84], [0.70, 0.71, 0.73, 0.72, 0.70],
...                      n_train=40, n_test=10)
>>> v.label
'transfer helps'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from transferkit.validation import TransferKitInputError

__all__ = [
    "TTestResult",
    "ScoreSummary",
    "Verdict",
    "TRANSFER_HELPS",
    "NO_DIFFERENCE",
    "NEGATIVE_TRANSFER",
    "corrected_resampled_ttest",
    "summarise_scores",
    "transfer_verdict",
]

TRANSFER_HELPS = "transfer helps"
NO_DIFFERENCE = "no significant difference"
NEGATIVE_TRANSFER = "negative transfer"


@dataclass(frozen=True)
class TTestResult:
    """Result of :func:`corrected_resampled_ttest` (difference = a - b)."""

    mean_difference: float
    t_statistic: float
    df: int
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float
    n_pairs: int
    variance_factor: float  # 1/J + n_test/n_train (or 1/J uncorrected)


@dataclass(frozen=True)
class ScoreSummary:
    """Mean fold score with a corrected confidence interval (:func:`summarise_scores`)."""

    mean: float
    ci_low: float
    ci_high: float
    std: float
    n_folds: int
    confidence: float


@dataclass(frozen=True)
class Verdict:
    """Does transfer help?  See :func:`transfer_verdict`.

    ``mean_difference`` and the interval are oriented so that a positive value
    means the strategy is better than the baseline, whatever the metric's
    direction.
    """

    label: str
    p_value: float
    mean_difference: float
    t_statistic: float
    ci_low: float
    ci_high: float
    alpha: float
    n_pairs: int
    greater_is_better: bool

    @property
    def helps(self) -> bool:
        return self.label == TRANSFER_HELPS

    @property
    def hurts(self) -> bool:
        return self.label == NEGATIVE_TRANSFER


def _ratio(n_train, n_test) -> float:
    n_train = np.asarray(n_train, dtype=float)
    n_test = np.asarray(n_test, dtype=float)
    if np.any(n_train <= 0) or np.any(n_test <= 0):
        raise TransferKitInputError(
            "n_train and n_test must be positive (numbers of labelled target rows used to "
            "train and to test in each fold)."
        )
    return float(np.mean(n_test) / np.mean(n_train))


def _clean_pairs(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise TransferKitInputError(
            f"Paired scores need the same folds: got {a.size} and {b.size} scores. "
            "Evaluate both with the same splitter and random_state."
        )
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 2:
        raise TransferKitInputError(
            f"Need at least 2 folds with finite scores for both, got {int(keep.sum())}."
        )
    return a[keep], b[keep]


def _t_from_mean_var(mean, var, factor, n, confidence):
    df = n - 1
    scale = max(1.0, abs(mean))
    q = stats.t.ppf(0.5 + confidence / 2.0, df)
    if var <= (1e-12 * scale) ** 2:
        if abs(mean) <= 1e-12 * scale:
            return 0.0, 1.0, 0.0, 0.0, df
        return float(np.copysign(np.inf, mean)), 0.0, mean, mean, df
    se = np.sqrt(factor * var)
    t = mean / se
    p = float(2.0 * stats.t.sf(abs(t), df))
    return float(t), p, float(mean - q * se), float(mean + q * se), df


def corrected_resampled_ttest(
    scores_a,
    scores_b,
    n_train,
    n_test,
    confidence: float = 0.95,
    corrected: bool = True,
) -> TTestResult:
    """Nadeau-Bengio corrected resampled paired t-test of ``a - b``.

    Parameters
    ----------
    scores_a, scores_b : array-like of shape (J,)
        Per-fold scores of two estimators on the *same* folds.  Pairs with a
        non-finite score (e.g. a NaN ROC AUC) are dropped; ``n_pairs`` says
        how many remain.
    n_train, n_test : int or array-like of shape (J,)
        Labelled target training rows and test rows per fold (see the module
        docstring for why target rows only).  Arrays are averaged.
    confidence : float, default=0.95
        Level of the interval for the mean difference.
    corrected : bool, default=True
        ``False`` drops the :math:`n_{test}/n_{train}` term (the plain paired
        t-test, identical to :func:`scipy.stats.ttest_rel`; for reference only).

    Returns
    -------
    TTestResult

    Examples
    --------
    >>> r = corrected_resampled_ttest([3.0, 4.0, 5.0], [1.0, 1.0, 1.0], n_train=8, n_test=4)
    >>> round(r.t_statistic, 4)  # 3 / sqrt((1/3 + 1/2) * 1)
    3.2863
    """
    if not 0.0 < confidence < 1.0:
        raise TransferKitInputError(f"confidence must be in (0, 1), got {confidence}.")
    a, b = _clean_pairs(scores_a, scores_b)
    d = a - b
    n = d.size
    factor = 1.0 / n + (_ratio(n_train, n_test) if corrected else 0.0)
    t, p, lo, hi, df = _t_from_mean_var(
        float(d.mean()), float(d.var(ddof=1)), factor, n, confidence
    )
    return TTestResult(
        mean_difference=float(d.mean()),
        t_statistic=t,
        df=df,
        p_value=p,
        ci_low=lo,
        ci_high=hi,
        confidence=confidence,
        n_pairs=n,
        variance_factor=factor,
    )


def summarise_scores(scores, n_train, n_test, confidence: float = 0.95) -> ScoreSummary:
    """Mean of fold scores with a Nadeau-Bengio corrected confidence interval.

    .. math::

        \\bar s \\pm t_{1-\\alpha/2,\\,J-1}
        \\sqrt{\\left(\\frac1J + \\frac{n_{test}}{n_{train}}\\right) \\hat\\sigma^2_s}

    with :math:`\\hat\\sigma^2_s` the sample variance (ddof=1) of the ``J``
    finite fold scores and ``n_train`` the labelled target training rows per
    fold, as in :func:`corrected_resampled_ttest`.  The interval is for the
    expected score of the procedure trained on ``n_train`` target rows; it is
    wider than the naive :math:`\\hat\\sigma_s/\\sqrt J` one on purpose.

    Examples
    --------
    >>> s = summarise_scores([0.7, 0.8, 0.9], n_train=20, n_test=10)
    >>> round(s.mean, 3), s.ci_low < 0.7 < 0.9 < s.ci_high
    (0.8, True)
    """
    if not 0.0 < confidence < 1.0:
        raise TransferKitInputError(f"confidence must be in (0, 1), got {confidence}.")
    s = np.asarray(scores, dtype=float).ravel()
    s = s[np.isfinite(s)]
    if s.size < 2:
        raise TransferKitInputError(
            f"Need at least 2 finite fold scores for an interval, got {s.size}."
        )
    mean, var = float(s.mean()), float(s.var(ddof=1))
    factor = 1.0 / s.size + _ratio(n_train, n_test)
    half = stats.t.ppf(0.5 + confidence / 2.0, s.size - 1) * np.sqrt(factor * var)
    return ScoreSummary(
        mean=mean,
        ci_low=float(mean - half),
        ci_high=float(mean + half),
        std=float(np.sqrt(var)),
        n_folds=int(s.size),
        confidence=confidence,
    )


def transfer_verdict(
    strategy_scores,
    baseline_scores,
    n_train,
    n_test,
    greater_is_better: bool = True,
    alpha: float = 0.05,
) -> Verdict:
    """Decide whether a transfer strategy beats the target-only baseline.

    Runs :func:`corrected_resampled_ttest` on the oriented differences
    :math:`d_j = s_j - b_j` (or :math:`b_j - s_j` when smaller is better, e.g.
    RMSE), so that :math:`d > 0` always means "strategy better".

    * ``"transfer helps"``: :math:`p < \\alpha` and :math:`\\bar d > 0`;
    * ``"negative transfer"``: :math:`p < \\alpha` and :math:`\\bar d < 0`;
    * ``"no significant difference"`` otherwise.

    The interval has level :math:`1-\\alpha`, so it excludes 0 exactly when
    the label is not "no significant difference".  Degenerate zero-variance
    cases follow :func:`corrected_resampled_ttest` (identical scores: p = 1).

    Parameters
    ----------
    strategy_scores, baseline_scores : array-like of shape (J,)
        Fold scores on the same folds (e.g. one column of
        :func:`~transferkit.evaluation.protocol.cross_evaluate` for each).
    n_train, n_test : int or array-like
        Labelled target training / test rows per fold.
    greater_is_better : bool
        Direction of the metric (``METRICS[name].greater_is_better``).
    alpha : float
        Significance level.

    Returns
    -------
    Verdict
    """
    if not 0.0 < alpha < 1.0:
        raise TransferKitInputError(f"alpha must be in (0, 1), got {alpha}.")
    s, b = _clean_pairs(strategy_scores, baseline_scores)
    if not greater_is_better:
        s, b = -s, -b
    result = corrected_resampled_ttest(s, b, n_train, n_test, confidence=1.0 - alpha)
    if result.p_value < alpha and result.mean_difference > 0:
        label = TRANSFER_HELPS
    elif result.p_value < alpha and result.mean_difference < 0:
        label = NEGATIVE_TRANSFER
    else:
        label = NO_DIFFERENCE
    return Verdict(
        label=label,
        p_value=result.p_value,
        mean_difference=result.mean_difference,
        t_statistic=result.t_statistic,
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        alpha=alpha,
        n_pairs=result.n_pairs,
        greater_is_better=greater_is_better,
    )
