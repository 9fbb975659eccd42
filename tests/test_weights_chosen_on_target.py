"""Source weights chosen on the target: ImportanceWeighted's flattened weights w**lambda
and InstanceSelection's rule for how many rows to keep, each chosen by cross-validation
over the labelled target rows; checked against closed forms and a cross-validation done
by hand."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import balanced_accuracy_score, f1_score, mean_squared_error, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold

from transferkit.domains import read_domains, stack_domains
from transferkit.instance_based import ImportanceWeighted, InstanceSelection
from transferkit.instance_based.weighted import flatten_weights
from transferkit.validation import TransferKitInputError


class FixedWeighter(BaseEstimator):
    """Source weights given up front (target rows: 1)."""

    def __init__(self, source_weights=None):
        self.source_weights = source_weights

    def fit(self, X, y):
        info = read_domains(y, n_rows=len(X))
        self.weights_ = np.ones(len(X))
        self.weights_[info.is_source] = self.source_weights
        return self


def _lr():
    return LogisticRegression(C=0.5, max_iter=5000, tol=1e-10)


def _two_rule_task(n_good, n_bad, n_target=60, seed=0, regression=False):
    """Source rows follow the target's rule y = f(x0) ("good") or its mirror ("bad")."""
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n_good + n_bad, 2))
    Xt = rng.normal(size=(n_target, 2))
    sign = np.r_[np.ones(n_good), -np.ones(n_bad)]
    if regression:
        ys = sign * Xs[:, 0] + rng.normal(0, 0.1, len(Xs))
        yt = Xt[:, 0] + rng.normal(0, 0.1, n_target)
    else:
        ys = (sign * Xs[:, 0] > 0).astype(int)
        yt = (Xt[:, 0] > 0).astype(int)
    return Xs, ys, Xt, yt, sign > 0


# ------------------------------------------------------------------ flatten_weights
def test_flatten_weights_closed_forms():
    w = np.array([0.0, 0.25, 1.0, 2.75])
    np.testing.assert_array_equal(flatten_weights(w, 1.0), w)
    np.testing.assert_array_equal(flatten_weights(w, 0.0), np.full(4, w.mean()))
    half = np.sqrt(w) * w.mean() / np.sqrt(w).mean()
    np.testing.assert_allclose(flatten_weights(w, 0.5), half, rtol=1e-15)
    for exponent in (0.0, 0.3, 0.5, 1.0):
        assert flatten_weights(w, exponent).mean() == pytest.approx(w.mean(), rel=1e-14)
    assert flatten_weights(w, 0.5)[0] == 0.0  # a row of weight 0 keeps it unless lambda = 0
    np.testing.assert_array_equal(flatten_weights(np.zeros(3), 0.5), np.zeros(3))


def test_fixed_exponent_trains_with_flattened_weights():
    Xs, ys, Xt, yt, _ = _two_rule_task(40, 20)
    w = np.random.default_rng(1).gamma(0.5, 2.0, len(Xs))
    X, y = stack_domains(Xs, ys, Xt, yt)
    model = ImportanceWeighted(_lr(), weighter=FixedWeighter(w), flattening=0.5,
                               target_weight=2.0).fit(X, y)
    expected = np.r_[flatten_weights(w, 0.5), np.full(len(Xt), 2.0)]
    np.testing.assert_allclose(model.training_weights_, expected, rtol=1e-14)
    reference = _lr().fit(np.vstack([Xs, Xt]), np.r_[ys, yt], sample_weight=expected)
    np.testing.assert_allclose(model.estimator_.coef_, reference.coef_, rtol=1e-6)
    assert model.flattening_ == 0.5 and model.flattening_scores_.size == 0


# ------------------------------------------------------------- choice by target CV
def _by_hand_scores(Xs, ys, Xt, yt, w, grid, random_state, regression=False, cv=3,
                    metric=None, positive=None):
    """The documented scheme, written out: folds over the labelled target rows (seeded
    from random_state), one out-of-fold prediction per target row, one score per lambda.
    ``metric``: "roc_auc" (of the out-of-fold probabilities of class ``positive``),
    "f1_pos" (of class ``positive``) or None (balanced accuracy / RMSE)."""
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max)
    if regression:
        folds = [test for _, test in KFold(cv, shuffle=True, random_state=seed).split(Xt)]
    else:
        k = min(cv, np.bincount(yt).min())
        folds = [test for _, test in StratifiedKFold(k, shuffle=True, random_state=seed)
                 .split(Xt, yt)]
    scores = []
    for exponent in grid:
        ws = w**exponent if exponent > 0 else np.ones_like(w)
        ws = ws * w.mean() / ws.mean()
        predicted, proba = np.empty(len(Xt)), np.empty(len(Xt))
        for test in folds:
            train = np.setdiff1d(np.arange(len(Xt)), test)
            model = Ridge(alpha=1.0) if regression else _lr()
            model.fit(np.vstack([Xs, Xt[train]]), np.r_[ys, yt[train]],
                      sample_weight=np.r_[ws, np.ones(len(train))])
            predicted[test] = model.predict(Xt[test])
            if metric == "roc_auc":
                proba[test] = model.predict_proba(Xt[test])[:, list(model.classes_).index(positive)]
        if regression:
            scores.append(np.sqrt(mean_squared_error(yt, predicted)))
        elif metric == "roc_auc":
            scores.append(roc_auc_score(yt == positive, proba))
        elif metric == "f1_pos":
            scores.append(f1_score(yt, predicted, pos_label=positive))
        else:
            scores.append(balanced_accuracy_score(yt, predicted))
    return np.array(scores)


@pytest.mark.parametrize("regression", [False, True])
def test_auto_flattening_equals_cross_validation_by_hand(regression):
    Xs, ys, Xt, yt, good = _two_rule_task(60, 30, n_target=45, seed=3, regression=regression)
    w = np.where(good, 1.0, 0.2) * np.random.default_rng(4).uniform(0.5, 1.5, len(Xs))
    X, y = stack_domains(Xs, ys, Xt, yt)
    estimator = Ridge(alpha=1.0) if regression else _lr()
    model = ImportanceWeighted(estimator, weighter=FixedWeighter(w), random_state=7).fit(X, y)
    grid = (0.0, 0.5, 1.0)
    expected = _by_hand_scores(Xs, ys, Xt, yt, w, grid, 7, regression=regression)
    np.testing.assert_allclose(model.flattening_scores_, expected, rtol=1e-6)
    best = expected.min() if regression else expected.max()
    assert model.flattening_ == max(g for g, s in zip(grid, expected)
                                    if np.isclose(s, best, rtol=0, atol=1e-12))


@pytest.mark.parametrize("metric, positive", [("roc_auc", None), ("roc_auc", 0),
                                              ("f1_pos", 0), ("f1_pos", None)])
def test_auto_flattening_scored_by_the_given_metric_equals_cross_validation_by_hand(
        metric, positive):
    # imbalanced target: class 1 is the minority, the default positive class
    Xs, ys, Xt, yt, good = _two_rule_task(60, 30, n_target=60, seed=5)
    yt = (Xt[:, 0] > 0.6).astype(int)
    w = np.where(good, 1.0, 0.2) * np.random.default_rng(4).uniform(0.5, 1.5, len(Xs))
    X, y = stack_domains(Xs, ys, Xt, yt)
    model = ImportanceWeighted(_lr(), weighter=FixedWeighter(w), random_state=7,
                               scoring=metric, positive_label=positive).fit(X, y)
    grid = (0.0, 0.5, 1.0)
    expected = _by_hand_scores(Xs, ys, Xt, yt, w, grid, 7, metric=metric,
                               positive=1 if positive is None else positive)
    np.testing.assert_allclose(model.flattening_scores_, expected, rtol=1e-6)
    assert model.flattening_ == max(g for g, s in zip(grid, expected)
                                    if np.isclose(s, expected.max(), rtol=0, atol=1e-12))
    # the metric matters: balanced accuracy gives other scores
    other = _by_hand_scores(Xs, ys, Xt, yt, w, grid, 7)
    assert not np.allclose(other, expected)


def test_roc_auc_needs_scores_from_the_estimator():
    class LabelsOnly(BaseEstimator):
        """A classifier with predict but neither predict_proba nor decision_function."""

        def fit(self, X, y, sample_weight=None):
            self.model_ = _lr().fit(X, y, sample_weight=sample_weight)
            self.classes_ = self.model_.classes_
            return self

        def predict(self, X):
            return self.model_.predict(X)

    Xs, ys, Xt, yt, _ = _two_rule_task(40, 10, n_target=30)
    X, y = stack_domains(Xs, ys, Xt, yt)
    with pytest.raises(TransferKitInputError, match="needs predict_proba or decision_function"):
        ImportanceWeighted(LabelsOnly(), weighter=FixedWeighter(np.ones(len(Xs))),
                           scoring="roc_auc").fit(X, y)


def test_binary_only_metric_needs_a_positive_class_in_a_multiclass_task():
    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(size=(60, 2)), rng.normal(size=(30, 2))
    ys, yt = np.tile([0, 1, 2], 20), np.tile([0, 1, 2], 10)
    X, y = stack_domains(Xs, ys, Xt, yt)
    weighter = FixedWeighter(np.ones(len(Xs)))
    with pytest.raises(TransferKitInputError, match="scores one positive class.*positive_label="):
        ImportanceWeighted(_lr(), weighter=weighter, scoring="recall_pos").fit(X, y)
    model = ImportanceWeighted(_lr(), weighter=weighter, scoring="recall_pos",
                               positive_label=2).fit(X, y)
    assert model.flattening_scores_.size == 3


@pytest.mark.parametrize("regression", [False, True])
def test_auto_flattening_drops_misleading_weights_and_keeps_helpful_ones(regression):
    # misleading: the weights favour the mirrored rows -> lambda = 0 (plain pooling) wins
    Xs, ys, Xt, yt, good = _two_rule_task(90, 30, seed=5, regression=regression)
    X, y = stack_domains(Xs, ys, Xt, yt)
    estimator = Ridge(alpha=1.0) if regression else _lr()
    bad_w = np.where(good, 0.1, 10.0)
    model = ImportanceWeighted(estimator, weighter=FixedWeighter(bad_w), random_state=0)
    model.fit(X, y)
    assert model.flattening_ == 0.0
    np.testing.assert_allclose(model.training_weights_[:len(Xs)], bad_w.mean())
    # helpful: the weights favour the rows that follow the target's rule, which are
    # the minority -> the full weights (lambda = 1) win
    Xs, ys, Xt, yt, good = _two_rule_task(30, 90, seed=6, regression=regression)
    X, y = stack_domains(Xs, ys, Xt, yt)
    model = ImportanceWeighted(estimator, weighter=FixedWeighter(np.where(good, 10.0, 0.01)),
                               random_state=0).fit(X, y)
    assert model.flattening_ == 1.0
    scores = model.flattening_scores_
    assert (scores[2] < scores[0]) if regression else (scores[2] > scores[0] + 0.3)


def test_auto_flattening_keeps_full_weights_when_target_labels_are_too_few():
    Xs, ys, Xt, yt, _ = _two_rule_task(40, 10, n_target=30)
    w = np.random.default_rng(0).uniform(0.1, 3.0, len(Xs))
    few = yt.astype(object)
    few[9:] = None  # 9 labelled target rows: below MIN_ROWS_TO_CHOOSE
    model = ImportanceWeighted(_lr(), weighter=FixedWeighter(w)).fit(*stack_domains(
        Xs, ys, Xt, few))
    assert model.flattening_ == 1.0 and model.flattening_scores_.size == 0
    np.testing.assert_allclose(model.training_weights_[:len(Xs)], w)
    one_positive = np.zeros(len(Xt), dtype=int)
    one_positive[0] = 1  # a class with a single labelled target row: no stratified folds
    model = ImportanceWeighted(_lr(), weighter=FixedWeighter(w)).fit(*stack_domains(
        Xs, ys, Xt, one_positive))
    assert model.flattening_ == 1.0 and model.flattening_scores_.size == 0
    # no labelled target row at all (unsupervised use): the full weights
    model = ImportanceWeighted(_lr(), weighter=FixedWeighter(w)).fit(*stack_domains(Xs, ys, Xt))
    assert model.flattening_ == 1.0


def test_auto_flattening_is_deterministic_and_seeded():
    Xs, ys, Xt, yt, good = _two_rule_task(60, 30, n_target=45, seed=3)
    w = np.where(good, 1.0, 0.2)
    X, y = stack_domains(Xs, ys, Xt, yt)
    first = ImportanceWeighted(_lr(), weighter=FixedWeighter(w), random_state=1).fit(X, y)
    again = ImportanceWeighted(_lr(), weighter=FixedWeighter(w), random_state=1).fit(X, y)
    np.testing.assert_array_equal(first.flattening_scores_, again.flattening_scores_)
    np.testing.assert_array_equal(first.training_weights_, again.training_weights_)


@pytest.mark.parametrize("params, match", [
    ({"flattening": "full"}, "flattening must be 'auto' or a number in"),
    ({"flattening": 1.5}, r"flattening must be a number in \[0, 1\]"),
    ({"flattening": -0.1}, r"flattening must be a number in \[0, 1\]"),
    ({"flattening": True}, r"flattening must be a number in \[0, 1\]"),
    ({"flattening_grid": ()}, "flattening_grid is empty"),
    ({"flattening_grid": (0.0, 2.0)}, r"each flattening_grid value must be a number in \[0, 1\]"),
    ({"flattening_grid": 0.5}, "flattening_grid must be a sequence"),
    ({"flattening_grid": (0.0, np.nan)}, r"must be a number in \[0, 1\]"),
    ({"cv": 1}, "cv must be an integer >= 2"),
    ({"cv": 2.5}, "cv must be an integer >= 2"),
    ({"scoring": "auc"}, "Unknown metric 'auc'"),
    ({"scoring": "rmse"}, "is a regression metric but the task is classification"),
    ({"scoring": "f1_pos", "positive_label": 2}, r"positive_label=2 is not one of the classes"),
])
def test_flattening_bad_input(params, match):
    Xs, ys, Xt, yt, _ = _two_rule_task(40, 10, n_target=30)
    X, y = stack_domains(Xs, ys, Xt, yt)
    with pytest.raises(TransferKitInputError, match=match):
        ImportanceWeighted(_lr(), weighter=FixedWeighter(np.ones(len(Xs))), **params).fit(X, y)


# ----------------------------------------------------- instance selection's rule by CV
def test_selection_rule_chosen_by_target_cv_equals_the_rules_fitted_alone():
    Xs, ys, Xt, yt, good = _two_rule_task(60, 30, n_target=45, seed=3)
    w = np.where(good, 2.0, 0.3) * np.random.default_rng(4).uniform(0.5, 1.5, len(Xs))
    X, y = stack_domains(Xs, ys, Xt, yt)
    rules = ("auto", 0.5, 1.0)
    model = InstanceSelection(_lr(), weighter=FixedWeighter(w), n_keep=rules,
                              random_state=7).fit(X, y)
    # each rule alone selects a subset; its score is the by-hand CV of that subset
    expected = []
    for rule in rules:
        alone = InstanceSelection(_lr(), weighter=FixedWeighter(w), n_keep=rule).fit(X, y)
        kept = alone.selected_[:len(Xs)].astype(float)
        scores = _by_hand_scores(Xs[kept > 0], ys[kept > 0], Xt, yt, np.ones(int(kept.sum())),
                                 [1.0], 7)
        expected.append(scores[0])
    np.testing.assert_allclose(model.n_keep_scores_, expected, rtol=1e-6)
    best = max(expected)
    assert model.n_keep_ == next(r for r, s in zip(rules, expected) if s == best)
    chosen = InstanceSelection(_lr(), weighter=FixedWeighter(w), n_keep=model.n_keep_).fit(X, y)
    np.testing.assert_array_equal(model.selected_, chosen.selected_)


def test_selection_keeps_every_row_when_the_weights_mislead():
    # the weights rank the mirrored rows first: keeping them all (1.0) beats the top half
    Xs, ys, Xt, yt, good = _two_rule_task(90, 30, seed=5)
    X, y = stack_domains(Xs, ys, Xt, yt)
    model = InstanceSelection(_lr(), weighter=FixedWeighter(np.where(good, 0.1, 10.0)),
                              n_keep=("auto", 0.5, 1.0), random_state=0).fit(X, y)
    assert model.n_keep_ == 1.0 and model.n_selected_ == len(Xs)
    # too few labelled target rows: the first rule, nothing compared
    few = yt.astype(object)
    few[9:] = None
    model.fit(*stack_domains(Xs, ys, Xt, few))
    assert model.n_keep_ == "auto" and model.n_keep_scores_.size == 0


@pytest.mark.parametrize("n_keep, match", [
    ([], "n_keep is an empty list"),
    (("auto", 0.0), r"fractional n_keep must lie in \(0, 1\]"),
    (("auto", "all"), "n_keep must be 'auto', an int >= 1 or a fraction"),
])
def test_selection_rule_list_bad_input(n_keep, match):
    Xs, ys, Xt, yt, _ = _two_rule_task(40, 10, n_target=30)
    with pytest.raises(TransferKitInputError, match=match):
        InstanceSelection(_lr(), weighter=FixedWeighter(np.ones(len(Xs))),
                          n_keep=n_keep).fit(*stack_domains(Xs, ys, Xt, yt))
