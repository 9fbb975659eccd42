"""Metrics for transfer experiments, a metric registry and a target-only scorer.

Classification (:func:`classification_metrics`)
    ``accuracy``, ``balanced_accuracy`` (mean per-class recall over the
    classes present in ``y_true``), ``precision_macro``, ``recall_macro``,
    ``f1_macro`` (unweighted means over the classes seen in ``y_true`` or
    ``y_pred``), per-class recall ``recall[<class>]``, and for a binary task
    (or whenever ``positive_label`` is given) ``precision_pos``,
    ``recall_pos``, ``f1_pos`` for the positive class; ``roc_auc`` when scores
    are given.

Regression (:func:`regression_metrics`)
    ``rmse`` :math:`\\sqrt{\\sum_i w_i (y_i-\\hat y_i)^2 / \\sum_i w_i}`,
    ``mae`` :math:`\\sum_i w_i |y_i-\\hat y_i| / \\sum_i w_i` and ``r2``
    :math:`1 - \\sum_i w_i (y_i-\\hat y_i)^2 / \\sum_i w_i (y_i-\\bar y_w)^2`.

Edge cases, chosen so that small target folds give numbers, not warnings:

* a ratio with a zero denominator (precision of a class never predicted,
  recall of a class absent from ``y_true``, F1 with both zero) is ``0``,
  as with scikit-learn's ``zero_division=0``;
* ``roc_auc`` is ``NaN`` when ``y_true`` holds a single class (ROC AUC is
  undefined there); average it with :func:`numpy.nanmean`;
* ``r2`` is ``NaN`` with fewer than two rows; with a constant ``y_true`` it
  follows scikit-learn (1 for a perfect fit, else 0).

Every function takes an optional ``sample_weight`` (used by the
importance-weighted validation of :mod:`transferkit.evaluation.unsupervised`).

Example
-------
>>> from transferkit.evaluation.metrics import classification_metrics
>>> m = classification_metrics([0, 0, 0, 1], [0, 0, 1, 1])
>>> m["accuracy"], m["recall_pos"], m["precision_pos"]
(0.75, 1.0, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support, r2_score, roc_auc_score
from sklearn.utils import _safe_indexing

from transferkit.validation import TransferKitInputError

__all__ = [
    "MetricSpec",
    "METRICS",
    "get_metric",
    "classification_metrics",
    "regression_metrics",
    "default_positive_label",
    "target_scorer",
    "TargetScorer",
]


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class MetricSpec:
    """Description of one metric.

    Attributes
    ----------
    name : str
        Key in the dicts returned by the metric functions.
    task : {"classification", "regression"}
    greater_is_better : bool
    description : str
    binary_only : bool
        Needs a positive class (binary task or explicit ``positive_label``).
    needs_score : bool
        Needs scores / probabilities, not only predicted labels.
    """

    name: str
    task: str
    greater_is_better: bool
    description: str
    binary_only: bool = False
    needs_score: bool = False


_SPECS = [
    MetricSpec("accuracy", "classification", True, "Fraction of rows predicted correctly."),
    MetricSpec(
        "balanced_accuracy",
        "classification",
        True,
        "Mean over the classes present in y_true of the per-class recall.",
    ),
    MetricSpec(
        "precision_macro", "classification", True, "Unweighted mean of per-class precision."
    ),
    MetricSpec("recall_macro", "classification", True, "Unweighted mean of per-class recall."),
    MetricSpec("f1_macro", "classification", True, "Unweighted mean of per-class F1."),
    MetricSpec(
        "precision_pos",
        "classification",
        True,
        "Precision of the positive class (default: the minority class).",
        binary_only=True,
    ),
    MetricSpec(
        "recall_pos",
        "classification",
        True,
        "Recall of the positive class (default: the minority class).",
        binary_only=True,
    ),
    MetricSpec(
        "f1_pos",
        "classification",
        True,
        "F1 of the positive class (default: the minority class).",
        binary_only=True,
    ),
    MetricSpec(
        "roc_auc",
        "classification",
        True,
        "Area under the ROC curve (binary: positive-class score; multiclass: macro "
        "one-vs-rest); NaN when y_true has a single class.",
        needs_score=True,
    ),
    MetricSpec("rmse", "regression", False, "Root mean squared error."),
    MetricSpec("mae", "regression", False, "Mean absolute error."),
    MetricSpec("r2", "regression", True, "Coefficient of determination R^2."),
]

#: Registry of metric names -> :class:`MetricSpec` (per-class recall excluded).
METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}


def get_metric(name: str | MetricSpec, task: str | None = None) -> MetricSpec:
    """Look up a metric by name, optionally checking it fits ``task``.

    Parameters
    ----------
    name : str or MetricSpec
        A key of :data:`METRICS`.
    task : {"classification", "regression"} or None
        When given, the metric must belong to this task.

    Returns
    -------
    MetricSpec

    Raises
    ------
    TransferKitInputError
        Unknown name, or a metric of the other task; the message lists the
        valid names.
    """
    if isinstance(name, MetricSpec):
        spec = name
    else:
        spec = METRICS.get(name)  # type: ignore[arg-type]
        if spec is None:
            valid = [n for n, s in METRICS.items() if task is None or s.task == task]
            raise TransferKitInputError(
                f"Unknown metric {name!r}. Valid metrics"
                f"{'' if task is None else ' for ' + task}: {', '.join(valid)}."
            )
    if task is not None:
        if task not in ("classification", "regression"):
            raise TransferKitInputError(
                f"Unknown task {task!r}; use 'classification' or 'regression'."
            )
        if spec.task != task:
            valid = [n for n, s in METRICS.items() if s.task == task]
            raise TransferKitInputError(
                f"Metric {spec.name!r} is a {spec.task} metric but the task is {task}. "
                f"Valid metrics for {task}: {', '.join(valid)}."
            )
    return spec


# --------------------------------------------------------------------------- helpers
def _as_1d(values, name: str) -> np.ndarray:
    if isinstance(values, (pd.Series, pd.DataFrame)):
        values = values.to_numpy()
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise TransferKitInputError(f"{name} must be 1-D, got shape {array.shape}.")
    return array


def _weights(sample_weight, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=float).ravel()
    if w.shape[0] != n:
        raise TransferKitInputError(
            f"sample_weight has {w.shape[0]} entries but there are {n} rows."
        )
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise TransferKitInputError("sample_weight must be finite and non-negative.")
    return w


def _sorted_classes(values) -> list:
    """Sorted distinct labels as Python objects (1 and 1.0 count as one class)."""
    seen: dict = {}
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise TransferKitInputError(
                "Labels contain missing values (NaN/None); score only labelled rows."
            )
        seen.setdefault(v, v)
    try:
        return sorted(seen)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in seen})
        raise TransferKitInputError(
            f"Labels mix types {kinds} that cannot be compared (e.g. 1 and '1'); code "
            "the labels the same way in every domain and in the predictions."
        ) from None


def _class_name(value) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def default_positive_label(y_true, classes=None):
    """The positive class by default: the least frequent class of ``y_true``.

    Classes listed in ``classes`` but absent from ``y_true`` count as having
    zero rows.  Ties go to the class that sorts last (``1`` over ``0``,
    ``"yes"`` over ``"no"``).

    >>> default_positive_label(["a", "b", "b"])
    'a'
    >>> default_positive_label([0, 1, 0, 1])
    1
    """
    values = _as_1d(y_true, "y_true").tolist()
    candidates = _sorted_classes(list(values) + list(classes if classes is not None else []))
    counts = {c: 0 for c in candidates}
    for v in values:
        counts[v] += 1
    # Stable: iterate sorted, keep the last of the minimum counts.
    best = None
    for c in candidates:
        if best is None or counts[c] <= counts[best]:
            best = c
    return best


def _roc_auc(codes: np.ndarray, y_score, task_codes: list, pos_code, weights) -> float:
    """ROC AUC on integer-coded labels (see :func:`classification_metrics`)."""
    score = np.asarray(y_score, dtype=float)
    n = codes.shape[0]
    if score.shape[0] != n:
        raise TransferKitInputError(f"y_score has {score.shape[0]} rows but y_true has {n}.")
    if score.ndim == 2 and score.shape[1] == 1:
        score = score[:, 0]
    if score.ndim not in (1, 2):
        raise TransferKitInputError(f"y_score must be 1-D or 2-D, got shape {score.shape}.")
    if not np.all(np.isfinite(score)):
        raise TransferKitInputError("y_score contains NaN or infinite values.")
    if score.ndim == 2:
        if score.shape[1] != len(task_codes):
            raise TransferKitInputError(
                f"y_score has {score.shape[1]} columns but the task has {len(task_codes)} "
                "classes; give one column per class (in the order of `classes`), or a "
                "1-D score of the positive class."
            )
        if len(task_codes) == 2 and pos_code in task_codes:
            score = score[:, task_codes.index(pos_code)]
        else:
            if len(np.unique(codes)) < 2:
                return float("nan")
            aucs = []
            for k, code in enumerate(task_codes):  # macro one-vs-rest
                is_k = codes == code
                if is_k.any() and not is_k.all():
                    aucs.append(roc_auc_score(is_k, score[:, k], sample_weight=weights))
            return float(np.mean(aucs)) if aucs else float("nan")
    if pos_code is None:
        raise TransferKitInputError(
            "A 1-D y_score is the score of the positive class, which needs a binary "
            "task or an explicit positive_label; for multiclass pass one column per class."
        )
    is_pos = codes == pos_code
    if is_pos.all() or not is_pos.any():
        return float("nan")  # ROC AUC is undefined with a single class
    return float(roc_auc_score(is_pos, score, sample_weight=weights))


# --------------------------------------------------------------------------- metrics
def classification_metrics(
    y_true,
    y_pred,
    y_score=None,
    positive_label=None,
    *,
    classes=None,
    sample_weight=None,
) -> dict[str, float]:
    """All classification metrics of one prediction, as a flat dict.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels (no missing values).
    y_score : array-like of shape (n,) or (n, n_classes), optional
        1-D: score (e.g. probability) of the positive class.  2-D: one
        column per class, in the order of ``classes``.  Adds ``roc_auc``.
    positive_label : optional
        Class scored by ``*_pos``.  Default for a binary task: the minority
        class of ``y_true`` (see :func:`default_positive_label`).  Giving it
        also adds the ``*_pos`` metrics (one-vs-rest) in a multiclass task.
    classes : sequence, optional
        The class set of the task (decides binary vs multiclass, the
        ``recall[<class>]`` keys and the ``y_score`` columns).  Default: the
        sorted union of ``y_true`` and ``y_pred``.  Pass it when scoring
        folds, so every fold reports the same keys.
    sample_weight : array-like of shape (n,), optional
        Row weights; every metric becomes its weighted version.

    Returns
    -------
    dict of str -> float
        ``accuracy`` :math:`\\sum_i w_i [y_i=\\hat y_i]/\\sum_i w_i`;
        ``balanced_accuracy`` = mean over classes present in ``y_true`` of
        recall; ``precision_macro`` / ``recall_macro`` / ``f1_macro`` over the
        classes seen in ``y_true`` or ``y_pred`` (zero division -> 0);
        ``recall[<c>]`` for each class (0 when ``c`` is absent from
        ``y_true``); binary: ``precision_pos``, ``recall_pos``, ``f1_pos``;
        with ``y_score``: ``roc_auc`` (NaN if ``y_true`` has one class).

    Examples
    --------
    >>> m = classification_metrics(["a", "b", "b", "b"], ["a", "b", "a", "b"],
    ...                            y_score=[0.9, 0.2, 0.6, 0.1])
    >>> m["recall[a]"], m["recall[b]"], m["roc_auc"]
    (1.0, 0.6666666666666666, 1.0)
    """
    yt = _as_1d(y_true, "y_true")
    yp = _as_1d(y_pred, "y_pred")
    if yt.shape[0] != yp.shape[0]:
        raise TransferKitInputError(
            f"y_true has {yt.shape[0]} rows but y_pred has {yp.shape[0]}."
        )
    if yt.shape[0] == 0:
        raise TransferKitInputError("Cannot compute metrics on 0 rows.")
    w = _weights(sample_weight, yt.shape[0])
    task_classes = _sorted_classes(
        list(classes) if classes is not None else yt.tolist() + yp.tolist()
    )
    extra = [] if positive_label is None else [positive_label]
    all_classes = _sorted_classes(task_classes + yt.tolist() + yp.tolist() + extra)
    code_of = {c: k for k, c in enumerate(all_classes)}
    ct = np.array([code_of[v] for v in yt.tolist()], dtype=int)
    cp = np.array([code_of[v] for v in yp.tolist()], dtype=int)
    if positive_label is None and len(task_classes) <= 2:
        positive_label = default_positive_label(yt, task_classes)
    pos_code = None if positive_label is None else code_of[positive_label]

    total = w.sum()
    out: dict[str, float] = {}
    out["accuracy"] = float(w[ct == cp].sum() / total) if total > 0 else 0.0

    # Per-class counts (weighted) over every class we know of.
    k_all = len(all_classes)
    true_w = np.bincount(ct, weights=w, minlength=k_all)
    hit_w = np.bincount(ct[ct == cp], weights=w[ct == cp], minlength=k_all)
    present = true_w > 0
    recall = np.divide(hit_w, true_w, out=np.zeros(k_all), where=present)
    out["balanced_accuracy"] = float(recall[present].mean()) if present.any() else 0.0

    seen = np.unique(np.concatenate([ct, cp]))
    p, r, f, _ = precision_recall_fscore_support(
        ct, cp, labels=seen, average="macro", zero_division=0, sample_weight=w
    )
    out["precision_macro"], out["recall_macro"], out["f1_macro"] = float(p), float(r), float(f)
    for c in task_classes:
        out[f"recall[{_class_name(c)}]"] = float(recall[code_of[c]])
    if pos_code is not None:
        p, r, f, _ = precision_recall_fscore_support(
            ct, cp, labels=[pos_code], average=None, zero_division=0, sample_weight=w
        )
        out["precision_pos"], out["recall_pos"], out["f1_pos"] = (
            float(p[0]),
            float(r[0]),
            float(f[0]),
        )
    if y_score is not None:
        task_codes = [code_of[c] for c in task_classes]
        out["roc_auc"] = _roc_auc(ct, y_score, task_codes, pos_code, w)
    return out


def regression_metrics(y_true, y_pred, *, sample_weight=None) -> dict[str, float]:
    """RMSE, MAE and R^2 of one prediction (optionally weighted).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
    sample_weight : array-like of shape (n,), optional

    Returns
    -------
    dict with ``rmse``, ``mae``, ``r2`` (``r2`` is NaN for fewer than 2 rows).

    Examples
    --------
    >>> m = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    >>> round(m["rmse"], 4), round(m["mae"], 4), m["r2"]
    (1.1547, 0.6667, -1.0)
    """
    try:
        yt = _as_1d(y_true, "y_true").astype(float)
        yp = _as_1d(y_pred, "y_pred").astype(float)
    except (TypeError, ValueError) as exc:
        raise TransferKitInputError(f"Regression targets must be numeric ({exc}).") from None
    if yt.shape[0] != yp.shape[0]:
        raise TransferKitInputError(
            f"y_true has {yt.shape[0]} rows but y_pred has {yp.shape[0]}."
        )
    if yt.shape[0] == 0:
        raise TransferKitInputError("Cannot compute metrics on 0 rows.")
    if not (np.all(np.isfinite(yt)) and np.all(np.isfinite(yp))):
        raise TransferKitInputError(
            "y_true or y_pred contains NaN/inf; score only labelled rows with finite "
            "predictions."
        )
    w = _weights(sample_weight, yt.shape[0])
    total = w.sum()
    if total <= 0:
        raise TransferKitInputError("sample_weight sums to 0.")
    err = yp - yt
    out = {
        "rmse": float(np.sqrt(np.sum(w * err**2) / total)),
        "mae": float(np.sum(w * np.abs(err)) / total),
    }
    out["r2"] = float(r2_score(yt, yp, sample_weight=w)) if yt.shape[0] >= 2 else float("nan")
    return out


# --------------------------------------------------------------------------- scores
def _positive_scores(estimator, X, classes: list, positive_label) -> np.ndarray | None:
    """Scores for ROC AUC from a fitted estimator, aligned to the task's classes.

    Binary (``positive_label`` not None and 2 classes): 1-D score of the
    positive class, from ``predict_proba`` or else ``decision_function``.
    Multiclass: ``predict_proba`` columns reordered to ``classes`` (a class
    the model never saw gets a zero column).  ``None`` when the estimator
    offers no usable scores.
    """
    model_classes = getattr(estimator, "classes_", None)
    if model_classes is None:
        return None
    model_classes = list(np.asarray(model_classes).tolist())
    binary = positive_label is not None and len(classes) == 2
    proba = None
    if hasattr(estimator, "predict_proba"):
        try:
            proba = np.asarray(estimator.predict_proba(X), dtype=float)
        except (AttributeError, NotImplementedError):
            proba = None
    if proba is not None and proba.ndim == 2 and proba.shape[1] == len(model_classes):
        if binary:
            if positive_label not in model_classes:
                return None
            return proba[:, model_classes.index(positive_label)]
        aligned = np.zeros((proba.shape[0], len(classes)))
        for k, c in enumerate(classes):
            if c in model_classes:
                aligned[:, k] = proba[:, model_classes.index(c)]
        return aligned
    if binary and len(model_classes) == 2 and hasattr(estimator, "decision_function"):
        try:
            decision = np.asarray(estimator.decision_function(X), dtype=float).ravel()
        except (AttributeError, NotImplementedError):
            return None
        if positive_label == model_classes[1]:
            return decision
        if positive_label == model_classes[0]:
            return -decision
    return None


# --------------------------------------------------------------------------- scorer
def _is_tagged(y) -> bool:
    return isinstance(y, pd.DataFrame) and list(y.columns[:3]) == [
        "label",
        "domain",
        "is_target",
    ]


class TargetScorer:
    """sklearn scorer that scores only the labelled *target* rows of a tagged ``y``.

    Build it with :func:`target_scorer`.  Calling ``scorer(estimator, X, y)``
    predicts the rows of ``X`` whose tag is ``is_target`` and whose label is
    present and returns the metric, negated when smaller is better (like
    scikit-learn's ``neg_*`` scorers), so "greater is better" always holds.
    A plain label vector ``y`` is scored on all its labelled rows.  With no
    labelled target rows the score is ``NaN``.
    """

    def __init__(self, metric: str, positive_label=None):
        self.metric = metric
        self.positive_label = positive_label
        self.spec = get_metric(metric)
        self.sign = 1.0 if self.spec.greater_is_better else -1.0

    def __repr__(self) -> str:
        extra = "" if self.positive_label is None else f", positive_label={self.positive_label!r}"
        return f"target_scorer({self.metric!r}{extra})"

    def __call__(self, estimator, X, y, sample_weight=None, **kwargs: Any) -> float:
        if _is_tagged(y):
            keep = y["is_target"].to_numpy(dtype=bool) & y["label"].notna().to_numpy()
            rows = np.flatnonzero(keep)
            # the labelled rows alone: a nullable integer column gives integers
            y_true = y["label"].iloc[rows].to_numpy()
        else:
            labels = _as_1d(y, "y")
            keep = ~np.asarray(pd.isna(pd.Series(labels, dtype=object)), dtype=bool)
            rows = np.flatnonzero(keep)
            y_true = labels[rows]
        if rows.size == 0:
            return float("nan")
        X_rows = _safe_indexing(X, rows)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)[rows]
        y_pred = np.asarray(estimator.predict(X_rows))
        if self.spec.task == "regression":
            value = regression_metrics(y_true, y_pred, sample_weight=w)[self.metric]
            return self.sign * value
        model_classes = getattr(estimator, "classes_", None)
        classes = (
            list(np.asarray(model_classes).tolist())
            if model_classes is not None
            else _sorted_classes(y_true.tolist() + y_pred.tolist())
        )
        classes = _sorted_classes(classes + y_true.tolist())
        positive = self.positive_label
        if positive is None and len(classes) <= 2:
            positive = default_positive_label(y_true, classes)
        if self.spec.binary_only and positive is None:
            raise TransferKitInputError(
                f"Metric {self.metric!r} needs a positive class but the task has "
                f"{len(classes)} classes; pass target_scorer({self.metric!r}, "
                "positive_label=...)."
            )
        y_score = None
        if self.spec.needs_score:
            y_score = _positive_scores(estimator, X_rows, classes, positive)
            if y_score is None:
                raise TransferKitInputError(
                    f"Metric {self.metric!r} needs predict_proba or decision_function, "
                    f"which {type(estimator).__name__} does not provide."
                )
        values = classification_metrics(
            y_true, y_pred, y_score, positive, classes=classes, sample_weight=w
        )
        return self.sign * values[self.metric]


def target_scorer(metric: str = "balanced_accuracy", positive_label=None) -> TargetScorer:
    """A scorer for ``scoring=`` that evaluates labelled target rows only.

    Works with ``cross_validate``, ``GridSearchCV`` etc. on tagged ``y`` (see
    :mod:`transferkit.domains`) without metadata routing.  The returned value
    is the metric, negated when smaller is better (``rmse``, ``mae``).

    Parameters
    ----------
    metric : str
        A key of :data:`METRICS`.
    positive_label : optional
        Positive class for ``*_pos`` metrics.  Default: the minority class of
        the scored rows; pass it explicitly so every fold scores the same class.

    Examples
    --------
    >>> scorer = target_scorer("rmse")
    >>> scorer
    target_scorer('rmse')
    >>> scorer.sign
    -1.0
    """
    return TargetScorer(metric, positive_label)
