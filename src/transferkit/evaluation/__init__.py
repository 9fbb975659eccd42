"""Evaluation: metrics, the target cross-validation protocol, paired comparison
against the target-only baseline, and unsupervised validation.

* :mod:`~transferkit.evaluation.metrics`: :func:`classification_metrics`,
  :func:`regression_metrics`, the registry :data:`METRICS` and
  :func:`target_scorer` (an sklearn ``scoring=`` that scores labelled target
  rows only).
* :mod:`~transferkit.evaluation.protocol`: :class:`TargetSplitter` (K-fold over
  labelled target rows; every other row trains), :func:`fit_and_score`,
  :func:`cross_evaluate`.
* :mod:`~transferkit.evaluation.comparison`: Nadeau-Bengio corrected resampled
  t-test, :func:`summarise_scores`, :func:`transfer_verdict`.
* :mod:`~transferkit.evaluation.unsupervised`: importance-weighted
  cross-validation on source rows when the target has no labels (weaker
  evidence).
* :mod:`~transferkit.evaluation.tuning`: :class:`TargetGridSearch`
  (hyper-parameters chosen by cross-validation over the labelled target rows).

Example
-------
>>> from transferkit.evaluation import TargetSplitter, target_scorer
>>> cv, scoring = TargetSplitter(n_splits=5, random_state=0), target_scorer("f1_macro")
"""

from transferkit.evaluation.comparison import (
    NEGATIVE_TRANSFER,
    NO_DIFFERENCE,
    TRANSFER_HELPS,
    ScoreSummary,
    TTestResult,
    Verdict,
    corrected_resampled_ttest,
    summarise_scores,
    transfer_verdict,
)
from transferkit.evaluation.metrics import (
    METRICS,
    MetricSpec,
    TargetScorer,
    classification_metrics,
    default_positive_label,
    get_metric,
    regression_metrics,
    target_scorer,
)
from transferkit.evaluation.protocol import TargetSplitter, cross_evaluate, fit_and_score
from transferkit.evaluation.tuning import TargetGridSearch
from transferkit.evaluation.unsupervised import (
    EVIDENCE,
    IWCVResult,
    SourceSplitter,
    effective_sample_size,
    importance_weighted_score,
    iwcv_fit_and_score,
)

__all__ = [
    "METRICS",
    "MetricSpec",
    "TargetScorer",
    "classification_metrics",
    "default_positive_label",
    "get_metric",
    "regression_metrics",
    "target_scorer",
    "TargetSplitter",
    "cross_evaluate",
    "fit_and_score",
    "TargetGridSearch",
    "TTestResult",
    "ScoreSummary",
    "Verdict",
    "TRANSFER_HELPS",
    "NO_DIFFERENCE",
    "NEGATIVE_TRANSFER",
    "corrected_resampled_ttest",
    "summarise_scores",
    "transfer_verdict",
    "EVIDENCE",
    "IWCVResult",
    "SourceSplitter",
    "effective_sample_size",
    "importance_weighted_score",
    "iwcv_fit_and_score",
]
