"""TargetGridSearch: hyper-parameters chosen by cross-validation over the labelled target
rows, checked against the same search written out by hand."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    balanced_accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    roc_auc_score,
)
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from transferkit.autopilot import Autopilot
from transferkit.baselines import Pooled
from transferkit.domains import read_domains, stack_domains
from transferkit.evaluation import fit_and_score
from transferkit.evaluation.tuning import (
    TargetGridSearch,
    best_index,
    chosen_params,
    summarise_choices,
)
from transferkit.feature_based import SubspaceAlignment
from transferkit.instance_based import ImportanceWeighted
from transferkit.validation import TransferKitInputError


def _lr():
    return LogisticRegression(C=0.5, max_iter=5000, tol=1e-10)


def _task(n_s=80, n_t=45, n_unlabelled=10, seed=0, regression=False):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n_s, 3))
    Xt = rng.normal(0.5, 1.0, size=(n_t + n_unlabelled, 3))
    if regression:
        ys = Xs @ [1.0, 0.5, 0.0] + rng.normal(0, 0.3, n_s)
        yt = Xt @ [1.0, -0.5, 0.3] + rng.normal(0, 0.3, len(Xt))
    else:
        ys = (Xs[:, 0] + 0.5 * Xs[:, 1] + rng.normal(0, 0.5, n_s) > 0).astype(int)
        yt = (Xt[:, 0] - 0.5 * Xt[:, 1] + rng.normal(0, 0.5, len(Xt)) > 0.5).astype(int)
    yt = yt.astype(object)
    yt[n_t:] = None
    return Xs, ys, Xt, yt


@pytest.mark.parametrize("regression, metric", [(False, None), (True, None),
                                                (False, "roc_auc"), (False, "precision_pos"),
                                                (True, "mae")])
def test_search_equals_the_search_by_hand(regression, metric):
    Xs, ys, Xt, yt = _task(regression=regression)
    X, y = stack_domains(Xs, ys, Xt, yt)
    base = Ridge(alpha=1.0) if regression else _lr()
    grid = [1.0, 5.0, 0.2]
    search = TargetGridSearch(Pooled(base), {"target_weight": grid}, random_state=3,
                              scoring=metric).fit(X, y)
    # by hand: folds over the labelled target rows, seeded by one draw from the seed
    n_s, labelled = len(Xs), np.flatnonzero(yt != None)  # noqa: E711
    seed = np.random.RandomState(3).randint(np.iinfo(np.int32).max)
    y_lab = yt[labelled].astype(float if regression else int)
    splitter = (KFold(3, shuffle=True, random_state=seed) if regression
                else StratifiedKFold(3, shuffle=True, random_state=seed))
    folds = [labelled[test] for _, test in splitter.split(labelled, y_lab)]
    expected = []
    # the default positive class: the minority class of the labelled target rows
    positive = None if regression else int(np.argmin(np.bincount(y_lab)))
    for weight in grid:
        predicted, proba = np.empty(len(Xt)), np.empty(len(Xt))
        for test in folds:
            train = np.setdiff1d(labelled, test)
            model = Ridge(alpha=1.0) if regression else _lr()
            model.fit(np.vstack([Xs, Xt[train]]), np.r_[ys, yt[train].astype(float)],
                      sample_weight=np.r_[np.ones(n_s), np.full(len(train), weight)])
            predicted[test] = model.predict(Xt[test])
            if not regression:
                proba[test] = model.predict_proba(Xt[test])[:, positive]
        truth, guess = yt[labelled].astype(float), predicted[labelled]
        expected.append({
            None: (lambda: np.sqrt(mean_squared_error(truth, guess))) if regression
            else (lambda: balanced_accuracy_score(truth, guess)),
            "mae": lambda: mean_absolute_error(truth, guess),
            "roc_auc": lambda: roc_auc_score(truth == positive, proba[labelled]),
            "precision_pos": lambda: precision_score(truth, guess, pos_label=positive),
        }[metric]())
    np.testing.assert_allclose(search.cv_results_["score"], expected, rtol=1e-6)
    assert len(set(np.round(expected, 12))) > 1  # the grid is not one big tie
    signed = -np.array(expected) if regression else np.array(expected)
    chosen = grid[int(np.flatnonzero(np.isclose(signed, signed.max(), rtol=0, atol=1e-12))[0])]
    assert search.best_params_ == {"target_weight": chosen}
    assert search.cv_results_["params"] == [{"target_weight": w} for w in grid]
    refit = Pooled(base, target_weight=chosen).fit(X, y)
    np.testing.assert_allclose(search.best_estimator_.estimator_.coef_, refit.estimator_.coef_)
    np.testing.assert_array_equal(search.predict(Xt), refit.predict(Xt))


SEEN = []


class SpyClassifier(ClassifierMixin, BaseEstimator):
    """Records the row ids (column 0) it is trained on and asked to predict."""

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y, sample_weight=None):
        SEEN.append(("fit", set(np.asarray(X)[:, 0].astype(int))))
        self.model_ = LogisticRegression(C=self.C).fit(np.asarray(X)[:, 1:], y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        SEEN.append(("predict", set(np.asarray(X)[:, 0].astype(int))))
        return self.model_.predict(np.asarray(X)[:, 1:])


def test_held_out_target_rows_never_reach_training_and_every_other_row_does():
    Xs, ys, Xt, yt = _task()
    X, y = stack_domains(Xs, ys, Xt, yt)
    X = np.column_stack([np.arange(len(X)), X])  # row ids in column 0
    SEEN.clear()
    TargetGridSearch(Pooled(SpyClassifier()), {"estimator__C": [1.0, 0.1]},
                     random_state=0).fit(X, y)
    fits = [rows for kind, rows in SEEN if kind == "fit"]
    tested = [rows for kind, rows in SEEN if kind == "predict"]
    assert len(fits) == 2 * 3 + 1 and len(tested) == 2 * 3
    labelled = set(np.flatnonzero(read_domains(y).labelled))
    for train, test in zip(fits, tested):
        assert not train & test
        assert train | test == labelled  # Pooled trains on every other labelled row
    assert set().union(*tested[:3]) == set(np.flatnonzero(read_domains(y).labelled_target))
    assert fits[-1] == labelled  # the refit sees every labelled row


def test_search_inside_a_pipeline_and_delegation():
    Xs, ys, Xt, yt = _task()
    X, y = stack_domains(Xs, ys, Xt, yt)
    pipeline = Pipeline([("adapt", SubspaceAlignment()), ("model", Pooled(_lr()))])
    search = TargetGridSearch(pipeline, {"adapt__n_components": [1, 2, 3]}, random_state=0)
    search.fit(X, y)
    assert search.best_params_["adapt__n_components"] in (1, 2, 3)
    k = search.best_estimator_.named_steps["adapt"].n_components_
    assert k == search.best_params_["adapt__n_components"]
    assert search.predict_proba(Xt).shape == (len(Xt), 2)
    np.testing.assert_array_equal(search.classes_, [0, 1])
    again = TargetGridSearch(pipeline, {"adapt__n_components": [1, 2, 3]}, random_state=0)
    np.testing.assert_array_equal(again.fit(X, y).cv_results_["score"],
                                  search.cv_results_["score"])


def test_ties_go_to_the_first_candidate():
    Xs, ys, Xt, yt = _task()
    X, y = stack_domains(Xs, ys, Xt, yt)
    # C is a parameter of the estimator that the predictions cannot depend on here:
    # a huge and a slightly smaller huge C give the same labels
    search = TargetGridSearch(Pooled(LogisticRegression(C=1e6)),
                              {"estimator__C": [1e6, 2e6]}, random_state=0).fit(X, y)
    assert search.cv_results_["score"][0] == search.cv_results_["score"][1]
    assert search.best_params_ == {"estimator__C": 1e6}


def test_too_few_target_labels_keeps_the_estimators_own_parameters():
    Xs, ys, Xt, yt = _task(n_t=9)
    X, y = stack_domains(Xs, ys, Xt, yt)
    search = TargetGridSearch(Pooled(_lr(), target_weight=3.0), {"target_weight": [1.0, 5.0]})
    search.fit(X, y)
    assert search.best_params_ == {} and search.cv_results_["score"].size == 0
    assert search.best_estimator_.target_weight == 3.0
    one_positive = np.zeros(len(Xt), dtype=object)
    one_positive[0] = 1
    search.fit(*stack_domains(Xs, ys, Xt, one_positive))
    assert search.best_params_ == {}


@pytest.mark.parametrize("params, match", [
    ({"param_grid": {}}, "param_grid is empty"),
    ({"param_grid": {"target_weight": []}}, "non-empty lists of values"),
    ({"param_grid": 5}, "param_grid must map parameter names"),
    ({"param_grid": {"target_wieght": [1.0]}}, r"names \['target_wieght'\].*target_weight"),
    ({"cv": 1}, "cv must be an integer >= 2"),
    ({"scoring": "auc"}, "Unknown metric 'auc'"),
    ({"scoring": "rmse"}, "is a regression metric but the task is classification"),
    ({"scoring": "roc_auc", "positive_label": "yes"},
     r"positive_label='yes' is not one of the classes \[0, 1\]"),
    ({"task": "ranking"}, "task must be 'auto', 'classification' or 'regression'"),
])
def test_bad_input(params, match):
    Xs, ys, Xt, yt = _task()
    X, y = stack_domains(Xs, ys, Xt, yt)
    kwargs = {"param_grid": {"target_weight": [1.0, 2.0]}} | params
    with pytest.raises(TransferKitInputError, match=match):
        TargetGridSearch(Pooled(_lr()), **kwargs).fit(X, y)


def test_scores_do_not_depend_on_how_the_classes_are_coded():
    # the same task with classes 0/1 and with classes "no"/"yes": the same folds,
    # predictions and scores
    Xs, ys, Xt, yt = _task()
    name = {0: "no", 1: "yes", None: None}
    grid = {"target_weight": [1.0, 5.0]}
    ints = TargetGridSearch(Pooled(_lr()), grid, random_state=0).fit(
        *stack_domains(Xs, ys, Xt, yt))
    words = TargetGridSearch(Pooled(_lr()), grid, random_state=0).fit(*stack_domains(
        Xs, [name[v] for v in ys], Xt, np.array([name[v] for v in yt], dtype=object)))
    np.testing.assert_array_equal(words.cv_results_["score"], ints.cv_results_["score"])
    assert ints.cv_results_["score"].min() > 0.5


# ----------------------------------------------------------- what was chosen, reported
def test_chosen_params_are_collected_through_pipelines_and_searches():
    Xs, ys, Xt, yt = _task()
    X, y = stack_domains(Xs, ys, Xt, yt)
    inner = Pipeline([("adapt", SubspaceAlignment()),
                      ("model", ImportanceWeighted(_lr(), random_state=0))])
    search = TargetGridSearch(inner, {"adapt__variance_kept": [0.9, 0.5]}, random_state=0)
    outer = Pipeline([("scale", StandardScaler()), ("strategy", search)]).fit(X, y)
    weighted = search.best_estimator_.named_steps["model"]
    assert chosen_params(outer) == {"variance_kept": search.best_params_["adapt__variance_kept"],
                                    "flattening": weighted.flattening_}
    # nothing searched (too few labelled target rows): nothing reported
    few = np.array(yt, dtype=object)
    few[9:] = None
    assert chosen_params(clone(outer).fit(*stack_domains(Xs, ys, Xt, few))) == {}
    assert chosen_params(Pooled(_lr()).fit(X, y)) == {}


def test_summarise_choices_counts_values_per_parameter():
    folds = [{"flattening": 0.0, "n_keep": "auto"}, {"flattening": 0.5}, {"flattening": 0.0},
             {}]
    assert summarise_choices(folds) == "flattening 0 (2/4), 0.5 (1/4); n_keep auto (1/4)"
    assert summarise_choices([{}, {}]) == ""
    assert summarise_choices([]) == ""


def test_fit_and_score_and_the_leaderboard_report_what_was_chosen():
    Xs, ys, Xt, yt = _task()
    X, y = stack_domains(Xs, ys, Xt, yt)
    labelled = np.flatnonzero(read_domains(y).labelled_target)
    test, train = labelled[:9], np.setdiff1d(np.arange(len(y)), labelled[:9])
    scored = fit_and_score(ImportanceWeighted(_lr(), random_state=0), X, y, train, test)
    assert set(scored["chosen"]) == {"flattening"}
    result = Autopilot(strategies=["kmm"], n_splits=3, n_repeats=1, shift_permutations=20,
                       random_state=0).run(X, y)
    board = result.leaderboard.set_index("strategy")["chosen_on_target"]
    assert board["target_only"] == ""
    assert board["kmm"].startswith("flattening ") and board["kmm"].count("/3)") >= 1
    counts = [int(part.split("(")[1].split("/")[0]) for part in board["kmm"].split(", ")]
    assert sum(counts) == 3


def test_nan_scores_never_win_a_search():
    # ROC AUC is NaN when the held-out rows hold one class: such a candidate cannot win
    assert best_index(np.array([np.nan, 0.3, 0.5]), greater_is_better=True) == 2
    assert best_index(np.array([np.nan, 0.3, 0.1]), greater_is_better=False) == 2
    assert best_index(np.array([0.4, np.nan, 0.4]), greater_is_better=True) == 0
    assert best_index(np.array([np.nan, np.nan]), greater_is_better=True) == 0
