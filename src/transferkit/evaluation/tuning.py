"""Hyper-parameters chosen by the target protocol: cross-validation over labelled target rows.

A transfer method's hyper-parameters should be judged where the method is
used: on the target domain.  :class:`TargetGridSearch` tries each candidate
of a parameter grid with the scheme of
:class:`~transferkit.evaluation.TargetSplitter`, nested inside whatever
evaluation runs outside it::

    labelled target rows  L = L_1 u ... u L_K      (a random partition)
    for each candidate and each fold k:
        fit on every row but L_k (all source rows, unlabelled target rows,
        the other labelled target folds), predict L_k
    score each candidate once, on the out-of-fold predictions of all of L

Scoring the pooled out-of-fold predictions, not averaging per-fold scores,
keeps metrics such as balanced accuracy meaningful when a fold holds only a
few rows of a rare class.  The best candidate is refitted on all rows; on a
tie the earlier candidate of the grid wins, so list the default first.  With
fewer than :data:`MIN_ROWS_TO_CHOOSE` labelled target rows (or a class with
fewer than 2 of them) nothing is searched and the estimator is fitted with
its own parameters: out-of-fold scores of so few rows cannot tell the
candidates apart.

:func:`target_folds` and :class:`OutOfFoldScorer` are the two pieces, also
used by :class:`~transferkit.instance_based.ImportanceWeighted` to choose the
flattening of its weights.  The criterion is any metric of
:data:`~transferkit.evaluation.METRICS` (``scoring``; the autopilot passes its
own ``metric`` and positive class, so a search optimises what the leaderboard
ranks by).  Metrics of scores (ROC AUC) use the folds' ``predict_proba`` (else
``decision_function``), pooled like the predictions.

What was chosen.  An estimator that chooses hyper-parameters on the labelled
target rows records them, after ``fit``, in ``chosen_params_`` (a dict; empty
when nothing was chosen, e.g. too few labelled rows).  :func:`chosen_params`
collects them from a fitted model (through pipelines and searches), and
:func:`summarise_choices` counts them over cross-validation folds: the
autopilot's leaderboard shows that count, so a strategy whose search fell
back to plain pooling (flattening 0) says so.

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains
>>> from transferkit.baselines import Pooled
>>> rng = np.random.default_rng(0)
>>> Xs, Xt = rng.normal(size=(80, 2)), rng.normal(0.5, 1, size=(30, 2))
>>> X, y = stack_domains(Xs, (Xs[:, 0] > 0).astype(int), Xt, (Xt[:, 0] > 0.5).astype(int))
>>> search = TargetGridSearch(Pooled(), {"target_weight": [1.0, 5.0]}, random_state=0)
>>> search.fit(X, y).best_params_["target_weight"] in (1.0, 5.0)
True
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.model_selection import KFold, ParameterGrid, StratifiedKFold
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from transferkit.domains import DomainAwareMixin, DomainInfo, infer_task, read_domains
from transferkit.evaluation.metrics import (
    _positive_scores,
    _sorted_classes,
    classification_metrics,
    default_positive_label,
    get_metric,
    regression_metrics,
)
from transferkit.validation import TransferKitInputError

__all__ = ["TargetGridSearch", "OutOfFoldScorer", "target_folds", "chosen_params",
           "summarise_choices", "MIN_ROWS_TO_CHOOSE"]

#: Fewer labelled target rows than this and nothing is chosen by target CV.
MIN_ROWS_TO_CHOOSE = 10


def check_cv(cv) -> int:
    """``cv`` as an int >= 2, or a clear error."""
    if not isinstance(cv, numbers.Integral) or isinstance(cv, bool) or cv < 2:
        raise TransferKitInputError(f"cv must be an integer >= 2, got {cv!r}.")
    return int(cv)


def class_codes(labels) -> np.ndarray:
    """An integer code per label, in order of first appearance (1 and 1.0 are one
    class, as in the metrics)."""
    code_of: dict = {}
    return np.array([code_of.setdefault(v, len(code_of)) for v in np.asarray(labels).tolist()],
                    dtype=np.int64)


def shuffled_folds(pool: np.ndarray, n_splits: int, seed: int, codes=None) -> list:
    """Test folds of one shuffled K-fold over the row indices ``pool`` (each sorted),
    stratified by ``codes`` when given."""
    dummy = np.zeros((pool.size, 1))
    if codes is None:
        splits = KFold(n_splits, shuffle=True, random_state=seed).split(dummy)
    else:
        splits = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(dummy, codes)
    return [np.sort(pool[test]) for _, test in splits]


def target_folds(info: DomainInfo, task: str, cv: int, random_state) -> list | None:
    """``cv`` folds of the labelled target rows (arrays of row indices), or None.

    Stratified by label for classification, with fewer folds when the
    smallest class has fewer than ``cv`` labelled target rows; None when
    there are fewer than :data:`MIN_ROWS_TO_CHOOSE` labelled target rows or
    a class has fewer than 2.  The shuffle is seeded by one draw from
    ``check_random_state(random_state)``.
    """
    cv = check_cv(cv)
    rows = np.flatnonzero(info.labelled_target)
    if rows.size < MIN_ROWS_TO_CHOOSE:
        return None
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    if task != "classification":
        return shuffled_folds(rows, cv, seed)
    codes = class_codes(info.labels_of(rows))
    k = min(cv, int(np.bincount(codes).min()))
    return shuffled_folds(rows, k, seed, codes) if k >= 2 else None


def scoring_metric(scoring, task: str):
    """The :class:`~transferkit.evaluation.MetricSpec` of ``scoring`` (default:
    balanced accuracy or RMSE, the autopilot's defaults)."""
    default = "balanced_accuracy" if task == "classification" else "rmse"
    return get_metric(scoring or default, task)


class OutOfFoldScorer:
    """The criterion of a search: one metric of the pooled out-of-fold outputs.

    Each fold's model gives :meth:`outputs` for its held-out labelled target
    rows (predictions, plus class scores when the metric needs them:
    ``predict_proba``, else ``decision_function``, as in
    :func:`~transferkit.evaluation.fit_and_score`); :meth:`score` computes
    the metric once on the outputs of all folds together.  Build it with
    :meth:`for_target`.

    Parameters
    ----------
    spec : MetricSpec
    task : {"classification", "regression"}
    classes : list or None
        The labelled target rows' classes (plus ``positive_label``).
    positive_label : optional
        The class scored by ``*_pos`` metrics and a binary ROC AUC.
    """

    def __init__(self, spec, task: str, classes, positive_label):
        self.spec = spec
        self.task = task
        self.classes = classes
        self.positive_label = positive_label

    @classmethod
    def for_target(cls, scoring, task: str, info: DomainInfo, positive_label=None):
        """The scorer of ``scoring`` (default: balanced accuracy or RMSE) for the labelled
        target rows of ``info``.

        ``positive_label`` defaults, for a binary task, to the minority class of
        the labelled target rows (as in :func:`~transferkit.evaluation.fit_and_score`;
        the autopilot passes its own); a given one need not occur among them.
        """
        spec = scoring_metric(scoring, task)
        if task != "classification":
            return cls(spec, task, None, None)
        labels = info.labels_of(info.labelled_target)
        if positive_label is not None:
            known = _sorted_classes(info.labels_of(info.labelled).tolist())
            if positive_label not in known:
                raise TransferKitInputError(
                    f"positive_label={positive_label!r} is not one of the classes {known}.")
        extra = [] if positive_label is None else [positive_label]
        classes = _sorted_classes(list(labels.tolist()) + extra)
        if positive_label is None and len(classes) == 2:
            positive_label = default_positive_label(labels, classes)
        if spec.binary_only and positive_label is None:
            raise TransferKitInputError(
                f"scoring={spec.name!r} scores one positive class, but the task has "
                f"{len(classes)} classes; pass positive_label= (one of {classes}).")
        return cls(spec, task, classes, positive_label)

    def outputs(self, model, X_test) -> tuple:
        """``(predictions, scores or None)`` of a fitted ``model`` on ``X_test``."""
        predicted = np.asarray(model.predict(X_test))
        if not self.spec.needs_score:
            return predicted, None
        scores = _positive_scores(model, X_test, self.classes, self.positive_label)
        if scores is None:
            raise TransferKitInputError(
                f"scoring={self.spec.name!r} needs predict_proba or decision_function, "
                f"which {type(model).__name__} does not provide; choose a metric of the "
                "predicted labels, e.g. 'balanced_accuracy'.")
        return predicted, scores

    def score(self, truth, outputs: list) -> float:
        """The metric of the concatenated ``outputs`` (a list of :meth:`outputs`)
        against ``truth`` (the labels of the concatenated held-out rows)."""
        predicted = np.concatenate([p for p, _ in outputs])
        if self.task != "classification":
            values = regression_metrics(np.asarray(truth, dtype=float),
                                        np.asarray(predicted, dtype=float))
        else:
            scores = None if outputs[0][1] is None else np.concatenate([s for _, s in outputs])
            values = classification_metrics(
                np.asarray(truth, dtype=object), np.asarray(predicted, dtype=object), scores,
                self.positive_label, classes=self.classes)
        return float(values[self.spec.name])  # for_target checked it is computable

    def best(self, scores: np.ndarray) -> int:
        """:func:`best_index` of ``scores`` in this metric's direction."""
        return best_index(scores, self.spec.greater_is_better)


def best_index(scores: np.ndarray, greater_is_better: bool) -> int:
    """Index of the best score; the first one on a tie.  NaN scores (e.g. ROC AUC when
    the held-out rows hold one class) never win; all NaN: the first."""
    signed = np.where(np.isnan(scores), -np.inf, scores if greater_is_better else -scores)
    if not np.isfinite(signed).any():
        return 0
    return int(np.flatnonzero(np.isclose(signed, signed.max(), rtol=0, atol=1e-12))[0])


def chosen_params(model) -> dict:
    """What a fitted model chose on the labelled target rows: its ``chosen_params_``,
    or for a pipeline those of its steps, nested pipelines included (a later step
    wins a name clash)."""
    if not hasattr(model, "steps"):
        return dict(getattr(model, "chosen_params_", {}) or {})
    chosen = {}
    for _, step in model.steps:
        chosen.update(chosen_params(step))
    return chosen


def _format_value(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def summarise_choices(choices) -> str:
    """Count the values chosen over folds, e.g. ``"flattening 0 (12/15), 0.5 (3/15)"``.

    ``choices``: one :func:`chosen_params` dict per fold.  The most frequent
    value of each parameter comes first; parameters are joined by ``"; "``.
    Empty when no fold chose anything.

    >>> summarise_choices([{"flattening": 0.0}, {"flattening": 0.5}, {"flattening": 0.0}])
    'flattening 0 (2/3), 0.5 (1/3)'
    """
    choices = [c for c in choices if isinstance(c, dict)]
    names = list(dict.fromkeys(name for c in choices for name in c))
    parts = []
    for name in names:
        counts: dict = {}
        for c in choices:
            if name in c:
                key = _format_value(c[name])
                counts[key] = counts.get(key, 0) + 1
        ranked = sorted(counts.items(), key=lambda item: -item[1])  # stable: first seen
        parts.append(f"{name} " + ", ".join(f"{v} ({n}/{len(choices)})" for v, n in ranked))
    return "; ".join(parts)


def _delegate(name):
    def check(self):
        return hasattr(self.best_estimator_ if hasattr(self, "best_estimator_")
                       else self.estimator, name)
    return check


class TargetGridSearch(DomainAwareMixin, MetaEstimatorMixin, BaseEstimator):
    """Choose an estimator's hyper-parameters by cross-validation over the labelled target rows.

    See the module docstring for the scheme.  The estimator follows the
    domain convention (``fit(X, y_tagged)``; a transfer estimator or a
    pipeline of them).  The search costs ``cv`` fits per candidate, plus the
    refit.

    Parameters
    ----------
    estimator : estimator
        Fitted with its own parameters when the target labels are too few.
    param_grid : dict or list of dicts
        As for scikit-learn's ``GridSearchCV``: parameter names (``step__name``
        inside a pipeline) to lists of values.  List each default first: ties
        go to the earlier candidate.
    cv : int, default=3
        Folds over the labelled target rows (stratified for classification;
        fewer when the smallest class has fewer labelled target rows).
    scoring : str, optional
        A metric of :data:`transferkit.evaluation.METRICS`.  Default:
        ``"balanced_accuracy"`` or ``"rmse"``.  ``"roc_auc"`` needs the
        estimator's ``predict_proba`` or ``decision_function``.
    task : {"auto", "classification", "regression"}
        Default: inferred from the labelled rows.
    random_state : int, optional
        Seeds the folds (the estimator's own ``random_state`` is its own).
    positive_label : optional
        The class scored by ``*_pos`` metrics and a binary ROC AUC.  Default
        for a binary task: the minority class of the labelled target rows.

    Attributes
    ----------
    best_params_ : dict
        The chosen candidate (``{}`` when nothing was searched).
    cv_results_ : dict
        ``"params"`` (the candidates) and ``"score"`` (their out-of-fold
        scores); both empty when nothing was searched.
    best_estimator_ : the estimator refitted on all rows with ``best_params_``.
    chosen_params_ : dict
        ``best_params_`` by the parameters' last names (``adapt__n_components``
        -> ``n_components``), plus what the refitted estimator chose itself.
    """

    def __init__(self, estimator, param_grid, cv: int = 3, scoring=None, task: str = "auto",
                 random_state=None, positive_label=None):
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv
        self.scoring = scoring
        self.task = task
        self.random_state = random_state
        self.positive_label = positive_label

    def _candidates(self) -> list[dict]:
        try:
            candidates = list(ParameterGrid(self.param_grid))
        except (TypeError, ValueError) as error:
            raise TransferKitInputError(
                f"param_grid must map parameter names to non-empty lists of values: {error}"
            ) from None
        if not candidates or candidates == [{}]:
            raise TransferKitInputError("param_grid is empty: give at least one parameter.")
        valid = self.estimator.get_params()
        unknown = sorted({name for c in candidates for name in c} - set(valid))
        if unknown:
            raise TransferKitInputError(
                f"param_grid names {unknown}, which {type(self.estimator).__name__} does "
                f"not have; its parameters: {sorted(valid)}.")
        return candidates

    def _task(self, info: DomainInfo) -> str:
        if self.task not in ("auto", "classification", "regression"):
            raise TransferKitInputError(
                f"task must be 'auto', 'classification' or 'regression', got {self.task!r}.")
        if self.task != "auto":
            return self.task
        if not info.labelled.any():
            raise TransferKitInputError("No labelled rows at all: nothing to train on.")
        return infer_task(info.labels_of(info.labelled))

    def fit(self, X, y):
        """Search the grid on the labelled target rows, then refit the best candidate."""
        info = read_domains(y, n_rows=len(X))
        candidates = self._candidates()
        task = self._task(info)
        scoring_metric(self.scoring, task)  # a bad name fails even when nothing is searched
        folds = target_folds(info, task, self.cv, self.random_state)
        scores = np.empty(0)
        best = {}
        if folds is not None:
            scorer = OutOfFoldScorer.for_target(self.scoring, task, info, self.positive_label)
            truth = info.labels_of(np.concatenate(folds))
            scores = np.array([
                scorer.score(truth, self._out_of_fold(candidate, X, y, folds, scorer))
                for candidate in candidates
            ])
            best = candidates[scorer.best(scores)]
        self.best_params_ = dict(best)
        self.cv_results_ = {"params": candidates if folds is not None else [],
                            "score": scores}
        self.best_estimator_ = clone(self.estimator).set_params(**best).fit(X, y)
        self.chosen_params_ = {name.rsplit("__", 1)[-1]: value for name, value in best.items()}
        self.chosen_params_.update(chosen_params(self.best_estimator_))
        for name in ("classes_", "n_features_in_"):
            if hasattr(self.best_estimator_, name):
                setattr(self, name, getattr(self.best_estimator_, name))
        return self

    def _out_of_fold(self, candidate: dict, X, y, folds, scorer: OutOfFoldScorer) -> list:
        """The scorer's outputs for the rows of every fold, each from a model fitted
        without that fold."""
        outputs = []
        for test in folds:
            train = np.setdiff1d(np.arange(len(y)), test, assume_unique=True)
            model = clone(self.estimator).set_params(**candidate)
            model.fit(_safe_indexing(X, train), _safe_indexing(y, train))
            outputs.append(scorer.outputs(model, _safe_indexing(X, test)))
        return outputs

    def predict(self, X):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    @available_if(_delegate("predict_proba"))
    def predict_proba(self, X):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @available_if(_delegate("decision_function"))
    def decision_function(self, X):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.decision_function(X)

    @available_if(_delegate("transform"))
    def transform(self, X):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags
