"""The evaluation protocol: cross-validation on the labelled target rows.

A transfer method is judged by how well it predicts the *target* domain, so
its test rows must be labelled target rows that it never saw.  With ``X``
holding every domain's rows and ``y`` the tagged table of
:mod:`transferkit.domains`, :class:`TargetSplitter` splits like this, for each
repeat :math:`r = 1..R` and fold :math:`k = 1..K`::

    labelled target rows  L = L_1 u ... u L_K      (a random partition)
    test  = L_k
    train = every other row: all source rows, all unlabelled target rows
            and the labelled target rows of the other K - 1 folds

The folds over ``L`` are stratified by label for classification and plain
shuffled K-fold for regression.  Every labelled target row is tested exactly
once per repeat; source rows are never tested.  The splitter is a normal
scikit-learn CV splitter (``split`` / ``get_n_splits``), so it plugs into
``cross_validate`` and ``GridSearchCV`` with
:func:`~transferkit.evaluation.metrics.target_scorer`.

:func:`fit_and_score` runs one fold (fit a clone on the train rows, score the
test rows) and :func:`cross_evaluate` runs them all and returns one row per
fold, ready for the paired comparison of
:mod:`transferkit.evaluation.comparison`.

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains
>>> from transferkit.evaluation import TargetSplitter
>>> X, y = stack_domains(np.zeros((6, 1)), [0, 1] * 3, np.zeros((8, 1)),
...                      [0, 1, 0, 1, 0, 1, None, None])
>>> cv = TargetSplitter(n_splits=3, random_state=0)
>>> [(len(train), len(test)) for train, test in cv.split(X, y)]
[(12, 2), (12, 2), (12, 2)]
"""

from __future__ import annotations

import numbers
import time
from collections import Counter

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import _safe_indexing, check_random_state

from transferkit.domains import DomainInfo, infer_task, read_domains
from transferkit.evaluation.metrics import (
    _class_name,
    _positive_scores,
    _sorted_classes,
    classification_metrics,
    default_positive_label,
    regression_metrics,
)
from transferkit.evaluation.tuning import chosen_params, class_codes, shuffled_folds
from transferkit.validation import TransferKitInputError

__all__ = ["TargetSplitter", "fit_and_score", "cross_evaluate"]

_AUTO_MAX_SPLITS = 5


def _check_task(task):
    if task not in (None, "classification", "regression"):
        raise TransferKitInputError(
            f"Unknown task {task!r}; use 'classification', 'regression' or None (infer)."
        )


class _LabelledRowSplitter(BaseCrossValidator):
    """Repeated (stratified) K-fold over one subset of rows; all other rows train.

    Subclasses say which rows form the pool (:meth:`_pool`) and how to name
    it in messages (``_what``).
    """

    _what = "rows"

    def __init__(self, n_splits=5, n_repeats=1, stratify=True, random_state=None, task=None):
        self.n_splits = n_splits
        self.n_repeats = n_repeats
        self.stratify = stratify
        self.random_state = random_state
        self.task = task

    # -- to override
    def _pool(self, info: DomainInfo) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _no_rows_hint(self) -> str:  # pragma: no cover - abstract
        return ""

    # -- helpers
    def _plan(self, y):
        """Return (pool indices, pool labels, task, stratified, n_splits)."""
        info = read_domains(y)
        _check_task(self.task)
        if not isinstance(self.n_repeats, numbers.Integral) or self.n_repeats < 1:
            raise TransferKitInputError(
                f"n_repeats must be a positive integer, got {self.n_repeats!r}."
            )
        pool = np.flatnonzero(self._pool(info))
        if pool.size == 0:
            raise TransferKitInputError(f"No {self._what}. {self._no_rows_hint()}")
        labels = info.labels_of(pool)
        task = self.task or infer_task(labels)
        stratified = bool(self.stratify) and task == "classification"
        auto = isinstance(self.n_splits, str)
        if auto and self.n_splits != "auto":
            raise TransferKitInputError(
                f"n_splits must be an integer >= 2 or 'auto', got {self.n_splits!r}."
            )
        if not auto and (
            not isinstance(self.n_splits, numbers.Integral) or self.n_splits < 2
        ):
            raise TransferKitInputError(
                f"n_splits must be an integer >= 2 or 'auto', got {self.n_splits!r}."
            )
        if stratified:
            classes = _sorted_classes(labels.tolist())
            counts = Counter(labels.tolist())
            per_class = {c: int(counts[c]) for c in classes}
            smallest = min(per_class.values())
            shown = ", ".join(f"{_class_name(c)}: {n}" for c, n in per_class.items())
            if auto:
                n_splits = min(_AUTO_MAX_SPLITS, smallest)
                if n_splits < 2:
                    raise TransferKitInputError(
                        f"Cannot stratify the {self._what}: a class has fewer than 2 rows "
                        f"(rows per class: {shown}). Label more rows of that class, or "
                        "use stratify=False."
                    )
            else:
                n_splits = int(self.n_splits)
                if smallest < n_splits:
                    hint = (
                        f"Use n_splits={smallest} (or n_splits='auto')"
                        if smallest >= 2
                        else "Use stratify=False"
                    )
                    raise TransferKitInputError(
                        f"n_splits={n_splits} is more than the number of {self._what} in "
                        f"the smallest class (rows per class: {shown}); each stratified "
                        f"fold needs at least one row of every class. {hint}, or label "
                        "more rows."
                    )
        else:
            if auto:
                n_splits = min(_AUTO_MAX_SPLITS, pool.size)
            else:
                n_splits = int(self.n_splits)
            if pool.size < max(n_splits, 2):
                raise TransferKitInputError(
                    f"Only {pool.size} {self._what}; {n_splits}-fold cross-validation "
                    f"needs at least {max(n_splits, 2)}. Use a smaller n_splits or label "
                    "more rows."
                )
        return pool, labels, task, stratified, n_splits

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of (train, test) pairs: ``n_splits * n_repeats``.

        With ``n_splits="auto"`` the tagged ``y`` is needed to know it.
        """
        if isinstance(self.n_splits, str):
            if y is None:
                raise TransferKitInputError(
                    "With n_splits='auto' the number of splits depends on the data; pass "
                    "the tagged y to get_n_splits."
                )
            return self._plan(y)[4] * int(self.n_repeats)
        return int(self.n_splits) * int(self.n_repeats)

    def split(self, X, y, groups=None):
        """Yield ``(train, test)`` integer index arrays.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Features of all domains (only its length is used).
        y : DataFrame
            The tagged ``y`` of :mod:`transferkit.domains`.
        groups : ignored
        """
        pool, labels, _task, stratified, n_splits = self._plan(y)
        n = len(y)
        if X is not None and len(X) != n:
            raise TransferKitInputError(f"X has {len(X)} rows but y has {n}.")
        rng = check_random_state(self.random_state)
        # Integer codes, so mixed float/int codings (0.0 vs 0) agree.
        codes = class_codes(labels) if stratified else None
        for _ in range(int(self.n_repeats)):
            seed = rng.randint(np.iinfo(np.int32).max)
            for test in shuffled_folds(pool, n_splits, seed, codes):
                train_mask = np.ones(n, dtype=bool)
                train_mask[test] = False
                yield np.flatnonzero(train_mask), test

    def _iter_test_indices(self, X=None, y=None, groups=None):  # pragma: no cover
        for _train, test in self.split(X, y, groups):
            yield test


class TargetSplitter(_LabelledRowSplitter):
    """Repeated (stratified) K-fold over the labelled target rows of a tagged ``y``.

    Test = one fold of the labelled target rows; train = every other row
    (all source rows, unlabelled target rows, the other labelled target
    folds).  See the module docstring for the scheme.

    Parameters
    ----------
    n_splits : int >= 2 or "auto", default=5
        Folds per repeat.  ``"auto"`` uses ``min(5, m)`` where ``m`` is the
        number of labelled target rows of the smallest class (stratified) or
        of all labelled target rows (not stratified); an integer is never
        changed silently: too few rows raise an error saying how many rows
        each class has.
    n_repeats : int, default=1
        Independent repetitions with different shuffles (K x R folds in all).
    stratify : bool, default=True
        Stratify by label (classification only; regression uses K-fold).
    random_state : int, RandomState or None
        Controls the shuffles.  Use an int to compare several estimators on
        the very same folds (paired comparison).
    task : {"classification", "regression"} or None
        Default: :func:`transferkit.domains.infer_task` on the labelled target
        labels.

    Examples
    --------
    >>> cv = TargetSplitter(n_splits=5, n_repeats=2, random_state=0)
    >>> cv.get_n_splits()
    10
    """

    _what = "labelled target rows"

    def _pool(self, info: DomainInfo) -> np.ndarray:
        return info.labelled_target

    def _no_rows_hint(self) -> str:
        return (
            "Target cross-validation needs some labelled target rows. Label a few, or "
            "use the unsupervised importance-weighted validation "
            "(transferkit.evaluation.importance_weighted_score), which is weaker evidence."
        )


# --------------------------------------------------------------------------- scoring
def _resolve_labels(labels: np.ndarray, task, positive_label):
    """Task, class list and positive class from the labelled rows of a domain."""
    _check_task(task)
    task = task or infer_task(labels)
    if task == "regression":
        return task, None, None
    classes = _sorted_classes(labels.tolist())
    if positive_label is None and len(classes) == 2:
        positive_label = default_positive_label(labels, classes)
    elif positive_label is not None and positive_label not in classes:
        raise TransferKitInputError(
            f"positive_label={positive_label!r} is not one of the classes {classes}."
        )
    return task, classes, positive_label


def _check_indices(train, test, n: int):
    train = np.asarray(train)
    test = np.asarray(test)
    for name, idx in (("train", train), ("test", test)):
        if idx.dtype == bool:
            raise TransferKitInputError(f"{name} must be integer row indices, not a mask.")
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise TransferKitInputError(f"{name} indices out of range for {n} rows.")
    train = np.mod(train.astype(int), n) if n else train.astype(int)
    test = np.mod(test.astype(int), n) if n else test.astype(int)
    if test.size == 0:
        raise TransferKitInputError("The test fold is empty.")
    leaked = np.intersect1d(train, test)
    if leaked.size:
        raise TransferKitInputError(
            f"{leaked.size} test row(s) are also in the training rows (first: "
            f"{leaked[:5].tolist()}); the evaluation would be optimistic. Use a splitter "
            "whose test rows are excluded from train, such as TargetSplitter."
        )
    return train, test


def _fit_predict(estimator, X, y, train, test, task, classes, positive_label):
    """Fit a clone on ``train``; return predictions (and scores) for ``test``, the fit
    and predict seconds, what the fit chose on the target (:func:`chosen_params`) and the
    fitted model."""
    model = clone(estimator)
    X_train, y_train = _safe_indexing(X, train), _safe_indexing(y, train)
    X_test = _safe_indexing(X, test)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    y_pred = np.asarray(model.predict(X_test))
    if y_pred.ndim != 1 or y_pred.shape[0] != test.size:
        raise TransferKitInputError(
            f"{type(estimator).__name__}.predict returned shape {y_pred.shape} for "
            f"{test.size} rows; expected ({test.size},)."
        )
    y_score = None
    if task == "classification":
        y_score = _positive_scores(model, X_test, classes, positive_label)
    predict_seconds = time.perf_counter() - start
    return y_pred, y_score, fit_seconds, predict_seconds, chosen_params(model), model


def _stopped(model) -> str:
    """What a fit cut short by its own time budget names in ``stopped_`` (the
    fine-tuning estimators), as text; "" for a complete fit."""
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    return ", ".join(getattr(final, "stopped_", None) or [])


def _metrics(task, y_true, y_pred, y_score, classes, positive_label, sample_weight=None):
    if task == "regression":
        return regression_metrics(y_true, y_pred, sample_weight=sample_weight)
    result = classification_metrics(
        y_true, y_pred, y_score, positive_label, classes=classes, sample_weight=sample_weight
    )
    result.setdefault("roc_auc", float("nan"))
    return result


def fit_and_score(estimator, X, y, train, test, task=None, positive_label=None,
                  return_predictions=False) -> dict:
    """Fit a clone of ``estimator`` on the ``train`` rows and score the ``test`` rows.

    Parameters
    ----------
    estimator : estimator
        Fitted as ``estimator.fit(X[train], y[train])`` with the tagged ``y``
        (a transferkit estimator, or a Pipeline ending in one).
    X : array-like or DataFrame of shape (n, d)
    y : DataFrame
        Tagged ``y`` (see :mod:`transferkit.domains`).
    train, test : array of int
        Row positions, e.g. from :class:`TargetSplitter`.  Every test row must
        be a labelled target row and none may be in ``train`` (checked).
    task : {"classification", "regression"} or None
        Default: inferred from the labelled target rows of ``y``.
    positive_label : optional
        Positive class of a binary task.  Default: the minority class among
        *all* labelled target rows of ``y`` (not just the fold), so every fold
        scores the same class.

    Returns
    -------
    dict
        The metrics of :func:`classification_metrics` (with ``roc_auc`` from
        ``predict_proba``, else ``decision_function``; NaN when neither exists
        or the fold has one class) or :func:`regression_metrics`, plus
        ``chosen`` (the hyper-parameters the fit chose on its labelled target
        rows, see :func:`~transferkit.evaluation.tuning.chosen_params`),
        ``stopped`` (what the fit's own time budget cut short, from the
        estimator's ``stopped_``; "" when nothing), ``fit_seconds``, ``predict_seconds``, ``n_train``, ``n_test`` and
        ``n_train_target`` (labelled target rows among the training rows; the
        ``n_train`` to use in :func:`~transferkit.evaluation.comparison.corrected_resampled_ttest`).
        With ``return_predictions=True`` also ``test`` (the test row positions),
        ``y_pred``, ``y_score`` (positive-class score of a binary task, else
        None) and ``proba`` (class probabilities, columns in the sorted class
        order of all labelled rows; None without ``predict_proba``), the
        out-of-fold outputs the autopilot's selection and its bootstrap
        estimate work from.
    """
    info = read_domains(y)
    train, test = _check_indices(train, test, len(y))
    if not info.labelled_target[test].all():
        bad = test[~info.labelled_target[test]]
        raise TransferKitInputError(
            f"{bad.size} test row(s) are not labelled target rows (first: "
            f"{bad[:5].tolist()}); transfer is evaluated on labelled target rows only."
        )
    task, classes, positive_label = _resolve_labels(
        info.labels_of(info.labelled_target), task, positive_label
    )
    y_pred, y_score, fit_seconds, predict_seconds, chosen, model = _fit_predict(
        estimator, X, y, train, test, task, classes, positive_label
    )
    result = _metrics(task, info.labels_of(test), y_pred, y_score, classes, positive_label)
    if return_predictions:
        result["test"], result["y_pred"], result["y_score"] = test, y_pred, y_score
        result["proba"] = None
        if task == "classification":
            every_class = _sorted_classes(info.labels_of(info.labelled).tolist())
            proba = _positive_scores(model, _safe_indexing(X, test), every_class, None)
            result["proba"] = proba if proba is not None and proba.ndim == 2 else None
    result["chosen"] = chosen
    result["stopped"] = _stopped(model)
    result["fit_seconds"] = fit_seconds
    result["predict_seconds"] = predict_seconds
    result["n_train"] = int(train.size)
    result["n_test"] = int(test.size)
    result["n_train_target"] = int(info.labelled_target[train].sum())
    return result


def cross_evaluate(
    estimator,
    X,
    y,
    cv=None,
    task=None,
    positive_label=None,
    n_jobs=None,
) -> pd.DataFrame:
    """Run :func:`fit_and_score` on every split of ``cv``; one row per fold.

    Parameters
    ----------
    estimator, X, y, task, positive_label
        As in :func:`fit_and_score`.
    cv : splitter, default=TargetSplitter(5, random_state=0)
        Any splitter whose test rows are labelled target rows.  Use the same
        ``cv`` (with an int ``random_state``) for every estimator you compare.
    n_jobs : int or None
        Folds run in parallel with joblib.

    Returns
    -------
    DataFrame
        Columns ``fold`` plus everything :func:`fit_and_score` returns.
    """
    cv = TargetSplitter(n_splits=5, random_state=0) if cv is None else cv
    splits = list(cv.split(X, y))
    results = Parallel(n_jobs=n_jobs)(
        delayed(fit_and_score)(estimator, X, y, train, test, task, positive_label)
        for train, test in splits
    )
    frame = pd.DataFrame(results)
    frame.insert(0, "fold", np.arange(len(results)))
    return frame
