"""Tests for transferkit.evaluation: metrics, protocol, comparison, unsupervised."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from transferkit.domains import read_domains, stack_domains, tag_domains
from transferkit.instance_based import DiscriminativeWeights
from transferkit.evaluation import (
    EVIDENCE,
    METRICS,
    NEGATIVE_TRANSFER,
    NO_DIFFERENCE,
    TRANSFER_HELPS,
    SourceSplitter,
    TargetSplitter,
    classification_metrics,
    corrected_resampled_ttest,
    cross_evaluate,
    default_positive_label,
    fit_and_score,
    get_metric,
    importance_weighted_score,
    iwcv_fit_and_score,
    regression_metrics,
    summarise_scores,
    target_scorer,
    transfer_verdict,
)
from transferkit.validation import TransferKitInputError


# --------------------------------------------------------------------------- helpers
class TaggedLogReg(ClassifierMixin, BaseEstimator):
    """Tiny transferkit-style classifier: logistic regression on all labelled rows."""

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        info = read_domains(y)
        keep = info.labelled
        labels = np.array(info.labels[keep].tolist())
        self.model_ = LogisticRegression(C=self.C, max_iter=500).fit(
            np.asarray(X)[keep], labels
        )
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(np.asarray(X))

    def predict_proba(self, X):
        return self.model_.predict_proba(np.asarray(X))


class TaggedLinReg(RegressorMixin, BaseEstimator):
    """Tiny transferkit-style regressor: least squares on the labelled rows."""

    def fit(self, X, y):
        info = read_domains(y)
        keep = info.labelled
        self.model_ = LinearRegression().fit(np.asarray(X)[keep], info.labels[keep].astype(float))
        return self

    def predict(self, X):
        return self.model_.predict(np.asarray(X))


def random_tagged(seed, n_classes=2, regression=False, frame=False):
    """Several source domains, imbalanced labelled target, unlabelled target rows."""
    rng = np.random.default_rng(seed)
    sizes = {"s1": int(rng.integers(20, 60)), "s2": int(rng.integers(20, 60))}
    Xs = {k: rng.normal(size=(n, 3)) for k, n in sizes.items()}
    n_lab, n_unlab = int(rng.integers(25, 50)), int(rng.integers(0, 30))
    if regression:
        ys = {k: rng.normal(size=n) for k, n in sizes.items()}
        yt = list(rng.normal(size=n_lab))
    else:
        ys = {k: rng.integers(0, n_classes, n) for k, n in sizes.items()}
        probs = np.linspace(1, 3, n_classes)
        probs = probs / probs.sum()  # imbalanced
        yt = list(rng.choice(n_classes, size=n_lab, p=probs))
        yt[:n_classes] = list(range(n_classes))  # every class present
        yt = [int(v) for v in yt]
        # guarantee at least 5 per class for 5-fold stratification
        for c in range(n_classes):
            yt += [c] * 5
    Xt = rng.normal(size=(len(yt) + n_unlab, 3))
    X, y = stack_domains(Xs, ys, Xt, list(yt) + [None] * n_unlab)
    # shuffle rows so that domains are interleaved
    perm = rng.permutation(len(y))
    X, y = X[perm], y.iloc[perm].reset_index(drop=True)
    if frame:
        X = pd.DataFrame(X, columns=["a", "b", "c"])
    return X, y


# --------------------------------------------------------------------------- metrics
def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.choice(["a", "b", "c"], size=60, p=[0.2, 0.3, 0.5])
    y_pred = rng.choice(["a", "b", "c"], size=60)
    w = rng.uniform(0.1, 2, size=60)
    for sw in (None, w):
        m = classification_metrics(y_true, y_pred, sample_weight=sw)
        assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred, sample_weight=sw))
        assert m["balanced_accuracy"] == pytest.approx(
            skm.balanced_accuracy_score(y_true, y_pred, sample_weight=sw)
        )
        for name, fn in [
            ("precision_macro", skm.precision_score),
            ("recall_macro", skm.recall_score),
            ("f1_macro", skm.f1_score),
        ]:
            assert m[name] == pytest.approx(
                fn(y_true, y_pred, average="macro", sample_weight=sw, zero_division=0)
            )
        recalls = skm.recall_score(
            y_true, y_pred, average=None, labels=["a", "b", "c"], sample_weight=sw
        )
        for c, r in zip(["a", "b", "c"], recalls):
            assert m[f"recall[{c}]"] == pytest.approx(r)
        assert "f1_pos" not in m  # multiclass without positive_label
    # multiclass ROC AUC (macro one-vs-rest) against sklearn
    proba = rng.dirichlet(np.ones(3), size=60)
    m = classification_metrics(y_true, y_pred, y_score=proba, classes=["a", "b", "c"])
    assert m["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=["a", "b", "c"])
    )


def test_binary_metrics_positive_defaults_to_minority():
    y_true = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 1])
    y_pred = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 1])
    score = np.array([0.1, 0.7, 0.2, 0.3, 0.9, 0.4, 0.2, 0.1, 0.6, 0.8])
    m = classification_metrics(y_true, y_pred, y_score=score)
    # hand-computed for positive class 1 (minority): TP=2, FP=2, FN=1
    assert m["precision_pos"] == pytest.approx(2 / 4)
    assert m["recall_pos"] == pytest.approx(2 / 3)
    assert m["f1_pos"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, score))
    # minority is 0 here: flip the labels, positive becomes the minority 0
    m0 = classification_metrics(1 - y_true, 1 - y_pred, y_score=score)
    assert m0["precision_pos"] == pytest.approx(m["precision_pos"])
    assert default_positive_label(1 - y_true) == 0
    assert default_positive_label(["no", "yes", "no", "yes"]) == "yes"  # tie -> last
    # explicit positive label wins
    m1 = classification_metrics(y_true, y_pred, positive_label=0)
    assert m1["recall_pos"] == pytest.approx(skm.recall_score(y_true, y_pred, pos_label=0))
    # float-coded truth (labels with NaN elsewhere) vs int predictions agree
    mf = classification_metrics(y_true.astype(float), y_pred, y_score=score)
    assert mf["f1_pos"] == pytest.approx(m["f1_pos"]) and "recall[1]" in mf


def test_metric_edge_cases_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a fold with one class present: ROC AUC undefined -> NaN
        m = classification_metrics([1, 1, 1], [1, 0, 1], y_score=[0.9, 0.2, 0.8], classes=[0, 1])
        assert np.isnan(m["roc_auc"])
        # positive class never predicted and absent: zero division -> 0
        m = classification_metrics([0, 0, 0], [0, 0, 0], positive_label=1, classes=[0, 1])
        assert m["precision_pos"] == 0.0 and m["recall_pos"] == 0.0 and m["f1_pos"] == 0.0
        assert m["recall[1]"] == 0.0 and m["accuracy"] == 1.0
        r = regression_metrics([1.0], [2.0])
        assert np.isnan(r["r2"]) and r["rmse"] == 1.0


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y, p, w = rng.normal(size=30), rng.normal(size=30), rng.uniform(0.1, 3, 30)
    for sw in (None, w):
        m = regression_metrics(y, p, sample_weight=sw)
        assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p, sample_weight=sw)))
        assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, p, sample_weight=sw))
        assert m["r2"] == pytest.approx(skm.r2_score(y, p, sample_weight=sw))


def test_registry():
    names = {
        "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
        "precision_pos", "recall_pos", "f1_pos", "roc_auc", "rmse", "mae", "r2",
    }  # fmt: skip
    assert set(METRICS) == names
    assert get_metric("rmse").greater_is_better is False
    assert get_metric("f1_pos", "classification").binary_only
    with pytest.raises(TransferKitInputError, match="Valid metrics.*balanced_accuracy"):
        get_metric("f1-score")
    with pytest.raises(TransferKitInputError, match="regression metric.*Valid metrics"):
        get_metric("rmse", "classification")
    with pytest.raises(TransferKitInputError, match="Unknown metric"):
        target_scorer("nope")


# --------------------------------------------------------------------------- splitter
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_classes", [2, 3])
def test_target_splitter_invariants(seed, n_classes):
    X, y = random_tagged(seed, n_classes)
    info = read_domains(y)
    cv = TargetSplitter(n_splits=5, n_repeats=2, random_state=seed)
    splits = list(cv.split(X, y))
    assert len(splits) == cv.get_n_splits(X, y) == 10
    labelled_target = np.flatnonzero(info.labelled_target)
    counts = pd.Series(info.labels[labelled_target]).value_counts()
    for r in range(2):
        tested = np.concatenate([test for _, test in splits[5 * r : 5 * (r + 1)]])
        # every labelled target row tested exactly once per repeat
        assert np.array_equal(np.sort(tested), labelled_target)
    for train, test in splits:
        assert np.intersect1d(train, test).size == 0
        assert np.array_equal(np.union1d(train, test), np.arange(len(y)))
        assert info.labelled_target[test].all()
        assert np.isin(np.flatnonzero(info.is_source), train).all()
        assert np.isin(np.flatnonzero(info.is_target & ~info.labelled), train).all()
        # stratification: per-class fold counts are floor or ceil of n_c / 5
        fold_counts = pd.Series(info.labels[test]).value_counts()
        for c, n_c in counts.items():
            assert np.floor(n_c / 5) <= fold_counts.get(c, 0) <= np.ceil(n_c / 5)
    # determinism with an int seed, different shuffles across repeats
    again = list(cv.split(X, y))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))
    assert not np.array_equal(splits[0][1], splits[5][1])


def test_target_splitter_regression_and_frames():
    X, y = random_tagged(3, regression=True, frame=True)
    info = read_domains(y)
    splits = list(TargetSplitter(n_splits=4, random_state=0).split(X, y))
    tested = np.sort(np.concatenate([t for _, t in splits]))
    assert np.array_equal(tested, np.flatnonzero(info.labelled_target))
    res = fit_and_score(TaggedLinReg(), X, y, *splits[0])
    assert {"rmse", "mae", "r2", "fit_seconds", "n_train", "n_test", "n_train_target"} <= set(res)
    assert res["n_train_target"] == info.labelled_target.sum() - res["n_test"]


def test_target_splitter_errors():
    Xs, Xt = np.zeros((10, 2)), np.zeros((9, 2))
    X, y = stack_domains(Xs, [0, 1] * 5, Xt, [0, 0, 0, 0, 0, 0, 1, 1, None])
    with pytest.raises(TransferKitInputError, match=r"rows per class: 0: 6, 1: 2.*n_splits=2"):
        list(TargetSplitter(n_splits=5).split(X, y))
    # 'auto' lowers n_splits to the smallest class count
    cv = TargetSplitter(n_splits="auto", random_state=0)
    assert cv.get_n_splits(X, y) == 2 and len(list(cv.split(X, y))) == 2
    with pytest.raises(TransferKitInputError, match="pass the tagged y"):
        cv.get_n_splits()
    X, y = stack_domains(Xs, [0, 1] * 5, Xt, [None] * 9)
    with pytest.raises(TransferKitInputError, match="No labelled target rows.*importance"):
        list(TargetSplitter().split(X, y))
    X, y = stack_domains(Xs, [0.5] * 10, Xt[:3], [0.1, 0.2, 0.3])
    with pytest.raises(TransferKitInputError, match="Only 3 labelled target rows"):
        list(TargetSplitter(n_splits=5).split(X, y))
    with pytest.raises(TransferKitInputError, match="tagged"):
        list(TargetSplitter().split(X, np.zeros(len(X))))
    with pytest.raises(TransferKitInputError, match="n_splits"):
        list(TargetSplitter(n_splits=1).split(X, y))


def test_fit_and_score_checks_leakage_and_rows():
    X, y = random_tagged(0)
    info = read_domains(y)
    train, test = next(TargetSplitter(n_splits=5, random_state=0).split(X, y))
    res = fit_and_score(TaggedLogReg(), X, y, train, test)
    assert 0 <= res["accuracy"] <= 1 and np.isfinite(res["roc_auc"])
    assert res["n_train"] == train.size and res["n_test"] == test.size
    with pytest.raises(TransferKitInputError, match="also in the training rows"):
        fit_and_score(TaggedLogReg(), X, y, np.append(train, test[0]), test)
    source_row = np.flatnonzero(info.is_source)[:1]
    with pytest.raises(TransferKitInputError, match="not labelled target rows"):
        fit_and_score(TaggedLogReg(), X, y, np.setdiff1d(train, source_row), source_row)


def test_cross_evaluate_and_scorer_agree():
    X, y = random_tagged(1)
    cv = TargetSplitter(n_splits=5, random_state=0)
    table = cross_evaluate(TaggedLogReg(), X, y, cv=cv, positive_label=1)
    assert len(table) == 5
    scored = cross_validate(
        TaggedLogReg(), X, y, cv=cv, scoring=target_scorer("f1_pos", positive_label=1)
    )
    np.testing.assert_allclose(scored["test_score"], table["f1_pos"].to_numpy())


# --------------------------------------------------------------------------- sklearn
def test_gridsearch_and_cross_validate_with_tagged_y():
    X, y = random_tagged(2, n_classes=2, frame=True)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", TaggedLogReg())])
    cv = TargetSplitter(n_splits=3, n_repeats=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no routing / convergence / metric warnings
        search = GridSearchCV(
            pipe, {"clf__C": [0.1, 1.0]}, cv=cv, scoring=target_scorer("balanced_accuracy")
        )
        search.fit(X, y)
        assert search.best_params_["clf__C"] in (0.1, 1.0)
        assert np.isfinite(search.best_score_)
        out = cross_validate(
            pipe,
            X,
            y,
            cv=cv,
            scoring={"auc": target_scorer("roc_auc"), "acc": target_scorer("accuracy")},
        )
    assert out["test_auc"].shape == (6,) and np.all(np.isfinite(out["test_auc"]))
    # regression: negated RMSE, like sklearn's neg_* scorers
    Xr, yr = random_tagged(2, regression=True)
    res = cross_validate(TaggedLinReg(), Xr, yr, cv=TargetSplitter(3, random_state=0),
                         scoring=target_scorer("rmse"))  # fmt: skip
    assert np.all(res["test_score"] < 0)


def test_target_scorer_ignores_source_rows():
    X, y = random_tagged(4)
    model = TaggedLogReg().fit(X, y)
    info = read_domains(y)
    rows = info.labelled_target
    expected = skm.accuracy_score(np.array(info.labels[rows].tolist()), model.predict(X[rows]))
    assert target_scorer("accuracy")(model, X, y) == pytest.approx(expected)
    # plain KFold with tagged y: the scorer still only looks at labelled target rows
    res = cross_validate(TaggedLogReg(), X, y, cv=KFold(3), scoring=target_scorer("accuracy"))
    assert np.all(np.isfinite(res["test_score"]))


# --------------------------------------------------------------------------- comparison
def test_corrected_ttest_closed_form():
    a = np.array([0.80, 0.75, 0.90, 0.85])
    b = np.array([0.70, 0.72, 0.80, 0.79])
    d = a - b  # 0.10, 0.03, 0.10, 0.06
    n_train, n_test = 30, 10
    mean = d.mean()
    var = np.sum((d - mean) ** 2) / 3
    t = mean / np.sqrt((1 / 4 + 10 / 30) * var)
    res = corrected_resampled_ttest(a, b, n_train, n_test)
    assert res.mean_difference == pytest.approx(0.0725)
    assert res.t_statistic == pytest.approx(t)
    assert res.df == 3
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(t), 3))
    half = stats.t.ppf(0.975, 3) * np.sqrt((1 / 4 + 10 / 30) * var)
    assert (res.ci_low, res.ci_high) == pytest.approx((mean - half, mean + half))
    # removing the correction gives the ordinary paired t-test
    plain = corrected_resampled_ttest(a, b, n_train, n_test, corrected=False)
    ref = stats.ttest_rel(a, b)
    assert plain.t_statistic == pytest.approx(ref.statistic)
    assert plain.p_value == pytest.approx(ref.pvalue)
    assert res.p_value > plain.p_value  # the correction is conservative


def test_summarise_scores():
    s = np.array([0.7, 0.8, 0.75, 0.9, 0.85])
    out = summarise_scores(s, n_train=40, n_test=10)
    half = stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 10 / 40) * s.var(ddof=1))
    assert out.mean == pytest.approx(s.mean())
    assert (out.ci_low, out.ci_high) == pytest.approx((s.mean() - half, s.mean() + half))
    with pytest.raises(TransferKitInputError, match="at least 2"):
        summarise_scores([0.5, np.nan], 10, 5)


def test_transfer_verdict_labels():
    rng = np.random.default_rng(0)
    base = 0.70 + rng.normal(0, 0.02, 10)
    better = base + 0.10 + rng.normal(0, 0.01, 10)
    worse = base - 0.10 + rng.normal(0, 0.01, 10)
    noisy = base + rng.normal(0, 0.05, 10)
    assert transfer_verdict(better, base, 40, 10).label == TRANSFER_HELPS
    assert transfer_verdict(worse, base, 40, 10).label == NEGATIVE_TRANSFER
    v = transfer_verdict(base, base, 40, 10)
    assert v.label == NO_DIFFERENCE and v.p_value == 1.0 and v.mean_difference == 0.0
    assert transfer_verdict(noisy, base, 40, 10).label == NO_DIFFERENCE
    # smaller-is-better metrics are oriented so positive = better
    rmse_base = 1.0 + rng.normal(0, 0.02, 10)
    v = transfer_verdict(rmse_base - 0.2, rmse_base, 40, 10, greater_is_better=False)
    assert v.label == TRANSFER_HELPS and v.mean_difference > 0 and v.p_value == 0.0
    v = transfer_verdict(rmse_base + 0.2, rmse_base, 40, 10, greater_is_better=False)
    assert v.label == NEGATIVE_TRANSFER and v.mean_difference < 0
    with pytest.raises(TransferKitInputError, match="same folds"):
        transfer_verdict(base, base[:5], 40, 10)


# --------------------------------------------------------------------------- unsupervised
def test_iwcv_tracks_target_error_under_covariate_shift():
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(1.0, 0.5, (300, 1)), rng.normal(2.0, 0.3, (300, 1))
    ys = np.sinc(xs[:, 0]) + rng.normal(0, 0.1, 300)
    yt = np.sinc(xt[:, 0]) + rng.normal(0, 0.1, 300)  # held out: never given to IWCV
    X, y = stack_domains(xs, ys, xt)  # target unlabelled
    result = importance_weighted_score(TaggedLinReg(), X, y, random_state=0)
    true_rmse = np.sqrt(np.mean((LinearRegression().fit(xs, ys).predict(xt) - yt) ** 2))
    iw_gap = abs(result.mean["rmse"] - true_rmse)
    plain_gap = abs(result.mean["unweighted_rmse"] - true_rmse)
    # seed 0: IW ~0.44, unweighted ~0.21, true ~0.53
    assert iw_gap < 0.5 * plain_gap, (result.mean, true_rmse)
    assert result.evidence == EVIDENCE and (result.scores["evidence"] == EVIDENCE).all()
    src = ~read_domains(y).is_target
    assert result.weights[src].mean() == pytest.approx(1.0)
    assert 1 < result.effective_sample_size < src.sum()


def test_source_splitter_and_iwcv_fold_checks():
    X, y = random_tagged(5)
    info = read_domains(y)
    w = DiscriminativeWeights(random_state=0).fit(X, y).weights_
    assert w.shape == (len(y),) and np.all(w > 0)
    splits = list(SourceSplitter(n_splits=4, random_state=0).split(X, y))
    tested = np.sort(np.concatenate([t for _, t in splits]))
    assert np.array_equal(tested, np.flatnonzero(info.labelled_source))
    for train, test in splits:
        assert np.intersect1d(train, test).size == 0
        assert np.isin(np.flatnonzero(info.is_target), train).all()
    res = iwcv_fit_and_score(TaggedLogReg(), X, y, *splits[0], weights=w)
    assert {"balanced_accuracy", "unweighted_balanced_accuracy", "evidence"} <= set(res)
    with pytest.raises(TransferKitInputError, match="not labelled source rows"):
        target_rows = np.flatnonzero(info.is_target)[:3]
        train = np.setdiff1d(np.arange(len(y)), target_rows)
        iwcv_fit_and_score(TaggedLogReg(), X, y, train, target_rows, w)
    # equal weights give the unweighted metrics
    res1 = iwcv_fit_and_score(TaggedLogReg(), X, y, *splits[0], weights=np.ones(len(y)))
    assert res1["accuracy"] == pytest.approx(res1["unweighted_accuracy"])


def test_tag_domains_float_labels_work_in_splitter():
    # labels become floats when NaN is present: splitting and scoring still work
    y = tag_domains([0, 1] * 10 + [0, 1] * 6 + [None] * 3,
                    ["s"] * 20 + ["t"] * 15,
                    [False] * 20 + [True] * 15)  # fmt: skip
    X = np.random.default_rng(0).normal(size=(35, 2))
    table = cross_evaluate(TaggedLogReg(), X, y, cv=TargetSplitter(3, random_state=0))
    assert {"recall[0]", "recall[1]", "f1_pos"} <= set(table.columns)
