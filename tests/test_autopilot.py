"""Autopilot: protocol integrity, negative-transfer guard, registry, unlabelled target."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from transferkit.autopilot import (
    Autopilot,
    Strategy,
    available_strategies,
    get_strategy,
    register_strategy,
    unregister_strategy,
)
from transferkit.baselines import Pooled
from transferkit.domains import read_domains, stack_domains
from transferkit.validation import TransferKitInputError


def make_task(n_source=400, n_target=120, shift=0.5, seed=0, unlabelled=0):
    """Two Gaussian classes; the target is shifted but shares p(y|x)."""
    rng = np.random.default_rng(seed)
    w = np.array([1.5, -1.0, 0.5])

    def sample(n, mean):
        X = rng.normal(mean, 1.0, size=(n, 3))
        y = (X @ w + rng.normal(0, 0.5, n) > 0).astype(int)
        return X, y

    Xs, ys = sample(n_source, 0.0)
    Xt, yt = sample(n_target + unlabelled, shift)
    yt = yt.astype(object)
    yt[n_target:] = None
    return stack_domains(Xs, ys, Xt, yt)


class ShuffledSource(Pooled):
    """A strategy built to hurt: pooled training on label-shuffled source rows."""

    def fit(self, X, y):
        y = y.copy()
        info = read_domains(y)
        rng = np.random.default_rng(0)
        source = np.flatnonzero(info.labelled_source)
        y.loc[source, "label"] = rng.permutation(y.loc[source, "label"].to_numpy())
        return super().fit(X, y)


SEEN_TRAIN, SEEN_TEST = [], []


class SpyClassifier(ClassifierMixin, BaseEstimator):
    """Records the row ids (column 0) it is trained on and asked to predict."""

    def fit(self, X, y, sample_weight=None):
        SEEN_TRAIN.append(set(np.asarray(X)[:, 0].astype(int)))
        self.model_ = LogisticRegression().fit(np.asarray(X)[:, 1:], y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        SEEN_TEST.append(set(np.asarray(X)[:, 0].astype(int)))
        return self.model_.predict(np.asarray(X)[:, 1:])


@pytest.fixture
def temporary_strategy():
    names = []

    def add(strategy):
        register_strategy(strategy, replace=True)
        names.append(strategy.name)
        return strategy.name

    yield add
    for name in names:
        unregister_strategy(name)


def test_no_target_test_row_reaches_a_training_fold(temporary_strategy):
    X, y = make_task(n_source=100, n_target=60, unlabelled=10)
    ids = np.arange(len(X))
    X_ids = np.column_stack([ids, X])
    name = temporary_strategy(Strategy(
        "spy_pooled", "baseline", "spy",
        lambda task, seed: Pooled(estimator=SpyClassifier(), task=task.task)))
    SEEN_TRAIN.clear()
    SEEN_TEST.clear()
    result = Autopilot(strategies=[name], n_jobs=1, preprocess=False, n_splits=3, n_repeats=2,
                       shift_permutations=20, random_state=0).run(X_ids, y)
    # 6 folds, then one refit on all rows (no predict for it) if the spy ships.
    refits = int("spy_pooled" in result.members)
    assert len(SEEN_TEST) == 6 and len(SEEN_TRAIN) == 6 + refits
    info = read_domains(y)
    labelled_target = set(ids[info.labelled_target])
    tested = set()
    for train, test in zip(SEEN_TRAIN[:6], SEEN_TEST):
        assert not train & test
        assert test <= labelled_target
        tested |= test
    assert tested == labelled_target
    # Unlabelled target rows never train a supervised model (they have no label).
    assert not any(set(ids[info.is_target & ~info.labelled]) & t for t in SEEN_TRAIN)
    assert result.recommended in {"spy_pooled", "target_only"}


def test_label_shuffled_source_is_flagged_negative_and_never_recommended(temporary_strategy):
    X, y = make_task(n_source=600, n_target=150, shift=0.3, seed=1)
    name = temporary_strategy(Strategy(
        "shuffled_source", "baseline", "built to hurt",
        lambda task, seed: ShuffledSource(target_weight=0.2, task=task.task)))
    result = Autopilot(strategies=[name], shift_permutations=50, random_state=0).run(X, y)
    board = result.leaderboard.set_index("strategy")
    assert board.loc[name, "verdict"] == "negative transfer"
    assert board.loc[name, "difference"] < 0
    assert result.recommended == "target_only"
    assert "Transfer does not help" in result.verdict
    assert name in result.verdict  # named as negative transfer


def test_guard_never_recommends_a_strategy_below_target_only():
    X, y = make_task(seed=3)
    result = Autopilot(shift_permutations=50, n_splits=3, n_repeats=1,
                       random_state=0).run(X, y)
    board = result.leaderboard.set_index("strategy")
    key = f"{result.metric}_mean"
    assert board.loc[result.recommended, key] >= board.loc["target_only", key]
    assert board.loc[result.recommended, "verdict"] != "negative transfer"
    assert set(board.index) == {s.name for s in available_strategies(result.task)}
    assert "linear_probe" not in set(board.index)  # tabular task: no backbone
    # The leaderboard is sorted by the primary metric.
    assert list(result.leaderboard[key]) == sorted(result.leaderboard[key], reverse=True)


def helpful_source_task():
    """20 features, 40 labelled target rows, 1,000 source rows with the same p(y|x):
    target-only cannot learn the boundary well, pooling helps."""
    rng = np.random.default_rng(5)
    w = rng.normal(size=20)
    Xs, Xt = rng.normal(size=(1000, 20)), rng.normal(0.2, 1, size=(40, 20))
    label = lambda X: (X @ w + rng.normal(0, 1, len(X)) > 0).astype(int)  # noqa: E731
    return stack_domains(Xs, label(Xs), Xt, label(Xt))


def test_helpful_source_is_detected_and_recommended():
    # pooling must help, significantly
    X, y = helpful_source_task()
    result = Autopilot(strategies=["pooled"], n_splits=4, n_repeats=5,
                       shift_permutations=50, random_state=0).run(X, y)
    board = result.leaderboard.set_index("strategy")
    assert board.loc["pooled", "verdict"] == "transfer helps"
    assert board.loc["pooled", "difference"] > 0.05
    assert result.recommended == "pooled"
    assert result.verdict.startswith("Transfer helps")


def test_unregistered_strategy_object_can_win_and_is_refitted():
    # a Strategy passed as an object, never registered, is evaluated and refitted
    # as the recommended model (it used to be looked up in the registry by name)
    X, y = helpful_source_task()
    mine = Strategy("my_pooled", "baseline", "Pooled, built by the user",
                    lambda task, seed: Pooled(target_weight=2.0, random_state=seed))
    result = Autopilot(strategies=[mine], n_splits=4, n_repeats=2, shift_permutations=20,
                       random_state=0, selection="best").run(X, y)
    assert result.recommended == "my_pooled"
    assert "my_pooled" not in [s.name for s in available_strategies()]
    assert result.model.named_steps["strategy"].target_weight == 2.0


def test_require_significance_keeps_baseline_without_significant_gain(temporary_strategy):
    X, y = make_task(n_source=300, n_target=100, seed=2)
    name = temporary_strategy(Strategy(
        "target_clone", "baseline", "target-only under another name",
        lambda task, seed: Pooled(target_weight=1e6, task=task.task)))
    result = Autopilot(strategies=[name], require_significance=True, n_repeats=1,
                       shift_permutations=20, random_state=0).run(X, y)
    assert result.recommended == "target_only"


def test_refitted_model_predicts_and_result_serialises(tmp_path):
    import json

    X, y = make_task()
    result = Autopilot(["pooled", "coral"], shift_permutations=50, n_repeats=1,
                       random_state=0).run(X, y)
    assert result.model.predict(X[:5]).shape == (5,)
    payload = result.to_dict()
    text = json.dumps(payload, allow_nan=False)
    assert "leaderboard" in text and payload["recommended"] == result.recommended
    assert 0.0 <= payload["shift"]["mmd_p_value"] <= 1.0
    for row in payload["leaderboard"]:
        assert 0.0 <= row["balanced_accuracy_ci_low"] <= row["balanced_accuracy_mean"]
        assert row["balanced_accuracy_mean"] <= row["balanced_accuracy_ci_high"] <= 1.0


def test_deterministic_under_random_state():
    X, y = make_task(seed=4)
    randomised = ["pooled_importance_weighted", "kmm", "tca", "tradaboost", "jda"]
    a = Autopilot(randomised, shift_permutations=50, n_repeats=1, random_state=7).run(X, y)
    b = Autopilot(randomised, shift_permutations=50, n_repeats=1, random_state=7).run(X, y)
    pd.testing.assert_frame_equal(a.leaderboard.drop(columns=["fit_seconds", "seconds"]),
                                  b.leaderboard.drop(columns=["fit_seconds", "seconds"]))
    assert a.shift == b.shift


def test_parallel_jobs_give_the_same_scores():
    X, y = make_task(seed=6)
    chosen = ["pooled", "kliep", "coral"]
    a = Autopilot(chosen, shift_permutations=20, n_repeats=1, random_state=0, n_jobs=1).run(X, y)
    b = Autopilot(chosen, shift_permutations=20, n_repeats=1, random_state=0, n_jobs=2).run(X, y)
    cols = [c for c in a.leaderboard.columns if c not in ("fit_seconds", "seconds")]
    pd.testing.assert_frame_equal(a.leaderboard[cols], b.leaderboard[cols])
    # same seed, same result: the out-of-fold outputs, the choice and its predictions too
    np.testing.assert_array_equal(a.out_of_fold.proba, b.out_of_fold.proba)
    assert a.members == b.members and a.estimate == b.estimate
    np.testing.assert_array_equal(a.model.predict_proba(X), b.model.predict_proba(X))


def test_unlabelled_target_falls_back_to_weaker_evidence():
    X, y = make_task(n_source=300, n_target=0, unlabelled=150, seed=8)
    result = Autopilot(["pooled_importance_weighted", "kliep"], shift_permutations=20,
                       random_state=0).run(X, y)
    assert result.baseline == "source_only"
    assert "unsupervised" in result.evidence and "weaker" in result.evidence
    assert "target_only" not in set(result.leaderboard["strategy"])
    assert any("no labels" in note for note in result.notes)
    assert "weaker evidence" in result.verdict


def test_regression_task_uses_rmse_and_lower_is_better():
    rng = np.random.default_rng(0)
    Xs = rng.normal(size=(300, 2))
    Xt = rng.normal(0.3, 1, size=(60, 2))
    f = lambda X: X @ np.array([2.0, -1.0]) + 0.5  # noqa: E731
    X, y = stack_domains(Xs, f(Xs) + rng.normal(0, .3, 300), Xt, f(Xt) + rng.normal(0, .3, 60))
    result = Autopilot(["pooled", "regularized_transfer", "kmm"], shift_permutations=20,
                       n_repeats=1, random_state=0).run(X, y)
    assert result.metric == "rmse" and not result.greater_is_better
    board = result.leaderboard
    assert list(board["rmse_mean"]) == sorted(board["rmse_mean"])
    assert (board["rmse_ci_low"] >= 0).all()


def test_failing_strategy_is_dropped_with_a_note(temporary_strategy):
    class Broken(Pooled):
        def fit(self, X, y):
            raise RuntimeError("boom")

    X, y = make_task(seed=9)
    name = temporary_strategy(Strategy("broken", "baseline", "fails",
                                       lambda task, seed: Broken()))
    result = Autopilot(strategies=[name], shift_permutations=20, random_state=0).run(X, y)
    assert "broken" not in set(result.leaderboard["strategy"])
    assert any("broken" in n and "boom" in n for n in result.notes)


def test_registry_errors_and_lookup():
    with pytest.raises(TransferKitInputError, match="Unknown strategy 'nope'"):
        get_strategy("nope")
    with pytest.raises(TransferKitInputError, match="already registered"):
        register_strategy(get_strategy("pooled"))
    with pytest.raises(TransferKitInputError, match="Strategy"):
        register_strategy("pooled")
    X, y = make_task(n_target=0, unlabelled=50)
    with pytest.raises(TransferKitInputError, match="do not apply"):
        Autopilot(strategies=["pooled"]).run(X, y)


@pytest.mark.parametrize("bad", ["single_class", "unknown_positive", "no_source_labels",
                                 "unseen_target_label", "misaligned"])
def test_bad_input_gives_clear_errors(bad):
    X, y = make_task(n_source=50, n_target=20)
    info = read_domains(y)
    kwargs = {}
    if bad == "single_class":
        y.loc[info.labelled_target, "label"] = 1
        match = "single class"
    elif bad == "unknown_positive":
        kwargs = {"positive_label": 7}
        match = "positive_label 7"
    elif bad == "no_source_labels":
        y.loc[~info.is_target, "label"] = np.nan
        match = "no labelled rows"
    elif bad == "unseen_target_label":
        y.loc[np.flatnonzero(info.is_target)[:3], "label"] = 2
        match = "never occur in the source"
    else:
        X = X[:-1]
        match = "must align"
    with pytest.raises(TransferKitInputError, match=match):
        Autopilot(shift_permutations=10, **kwargs).run(X, y)


@pytest.mark.parametrize("metric, positive_label", [(None, None), ("roc_auc", None),
                                                    ("f1_pos", "majority")])
def test_searches_inside_strategies_score_by_the_autopilot_metric(metric, positive_label):
    # the autopilot tells each strategy its metric and positive class (TaskInfo), and
    # every built-in strategy that searches on the target passes them on
    X, y = make_task(n_target=60)
    counts = pd.Series(y["label"][read_domains(y).labelled_target]).value_counts()
    assert counts.iloc[0] > counts.iloc[-1]
    if positive_label == "majority":
        positive_label = counts.idxmax()
    built = []
    spy = Strategy("spy", "baseline", "records the TaskInfo it is built with",
                   lambda task, seed: built.append(task) or Pooled(random_state=seed))
    Autopilot(strategies=[spy], n_jobs=1, metric=metric, positive_label=positive_label, n_splits=2,
              shift_permutations=20, random_state=0).run(X, y)
    expected_positive = counts.idxmin() if positive_label is None else positive_label
    task = built[0]
    assert task.metric == (metric or "balanced_accuracy")
    assert task.positive_label == expected_positive
    searching = ["kmm", "kliep", "ulsif", "rulsif", "nn_weights", "pooled_importance_weighted",
                 "instance_selection", "subspace_alignment"]
    for name in searching:
        params = get_strategy(name).build(task, 0).get_params(deep=True)
        assert params["scoring"] == task.metric, name
        assert params["positive_label"] == expected_positive, name


def test_result_carries_the_corrected_estimate_of_what_ships():
    import json

    from transferkit.autopilot.ensemble import WeightedEnsemble

    X, y = helpful_source_task()
    result = Autopilot(strategies=["pooled", "coral", "kmm", "source_only"], n_splits=4,
                       n_repeats=2, shift_permutations=20, random_state=0).run(X, y)
    estimate = result.estimate
    assert estimate is not None and estimate.n_boot > 100
    assert estimate.corrected_ci_low <= estimate.corrected <= estimate.corrected_ci_high
    assert estimate.gain_ci_low <= estimate.gain <= estimate.gain_ci_high
    assert sum(estimate.choice_frequency.values()) == estimate.n_boot
    assert result.out_of_fold.pred.shape == (5, 2, 40)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["estimate"]["corrected"] == pytest.approx(estimate.corrected)
    assert payload["members"] == result.members
    if len(result.members) > 1:
        assert result.recommended == "ensemble" and isinstance(result.model, WeightedEnsemble)
    else:
        assert result.recommended in result.members
    assert "corrected" in result.verdict and "naive" in result.verdict
    assert result.model.predict(X.iloc[:5] if hasattr(X, "iloc") else X[:5]).shape == (5,)


def test_guard_uses_the_corrected_gain(temporary_strategy):
    # label-shuffled source rows: any apparent gain of the strategy is noise
    X, y = make_task(n_source=300, n_target=60, seed=4)
    name = temporary_strategy(Strategy("shuffled", "baseline", "hurts",
                                       lambda task, seed: ShuffledSource(random_state=seed)))
    result = Autopilot(strategies=[name], n_repeats=2, shift_permutations=20,
                       random_state=0).run(X, y)
    assert result.recommended == "target_only"
    assert result.members == {"target_only": 1.0}
    # the estimate is the whole procedure's: it ships target-only in most samples
    frequency = result.estimate.choice_frequency
    assert frequency.get("target_only", 0) > 0.5 * result.estimate.n_boot
    assert abs(result.estimate.gain) < 0.02
    assert result.verdict.startswith("Transfer does not help")


def test_unknown_selection_rule_is_refused():
    X, y = make_task()
    with pytest.raises(TransferKitInputError, match="selection: got 'vote' \\(str\\); expected: 'ensemble' or 'best'"):
        Autopilot(selection="vote").run(X, y)
    for bad in (10, 300.0, "300", True):
        with pytest.raises(TransferKitInputError, match="n_boot: got .*expected: a whole number of bootstrap samples"):
            Autopilot(n_boot=bad).run(X, y)


def test_shared_fold_preprocessing_gives_the_same_results_as_preprocessing_per_job():
    """The preprocessing fitted once per fold and shared by the strategies gives the
    out-of-fold outputs (hence the leaderboard and the choice) of
    ``[preprocess, strategy]`` fitted per job, on a table with a categorical
    column, missing values and columns of very different scales."""
    from sklearn.pipeline import Pipeline

    from transferkit.evaluation import TargetSplitter
    from transferkit.preprocessing import TabularPreprocessor

    X, y = make_task(n_source=150, n_target=40, unlabelled=20, seed=3)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(X * [1.0, 100.0, 0.01], columns=["a", "b", "c"])
    frame["colour"] = rng.choice(["red", "green", "blue"], len(frame))
    frame.loc[rng.choice(len(frame), 15, replace=False), "b"] = np.nan
    names = ["pooled", "coral", "kmm", "source_only_hgb"]
    result = Autopilot(strategies=names, n_jobs=1, n_splits=3, n_repeats=2,
                       shift_permutations=20, random_state=0).run(frame, y)
    oof = result.out_of_fold
    splits = list(TargetSplitter(n_splits=3, n_repeats=2, random_state=0).split(frame, y))
    position = {row: i for i, row in enumerate(oof.rows)}
    for name in oof.names:
        k = oof.index(name)
        for fold, (train, test) in enumerate(splits):
            model = Pipeline([("preprocess", TabularPreprocessor()),
                              ("strategy", get_strategy(name).build(result.task, 0))])
            model.fit(frame.iloc[train], y.iloc[train])
            at = [position[row] for row in test]
            proba = model.predict_proba(frame.iloc[test])
            np.testing.assert_allclose(oof.proba[k, fold // 3, at], proba, atol=1e-10)
            codes = [list(oof.classes).index(c) for c in model.predict(frame.iloc[test])]
            np.testing.assert_array_equal(oof.pred[k, fold // 3, at], codes)
