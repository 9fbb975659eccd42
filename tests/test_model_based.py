"""Regularised transfer (biased regularisation / linear L2-SP) and continued boosting,
each checked against an independent route: closed forms, sklearn's Ridge /
LogisticRegression / GradientBoosting*, finite differences, naive loops."""

import warnings

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits
from scipy.optimize import check_grad
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold
from sklearn.utils import check_random_state

from transferkit.domains import stack_domains
from transferkit.model_based import (
    ContinuedBoostingClassifier,
    ContinuedBoostingRegressor,
    RegularizedTransferClassifier,
    RegularizedTransferRegressor,
)
from transferkit.model_based.binned_trees import UnweightedBins
from transferkit.model_based.regularized import (
    _logistic_fit,
    _logistic_hessp,
    _logistic_objective,
)
from transferkit.validation import TransferKitInputError


@pytest.fixture(autouse=True)
def _one_thread():
    # OpenMP (HistGradientBoosting) on a busy 2-core CI box is far slower with 2 threads
    with threadpool_limits(1):
        yield


class FrozenEstimator(BaseEstimator):
    """A fitted model whose ``fit`` does nothing (sklearn >= 1.6 ships one; ours is
    here so the tests run with older sklearn too)."""

    def __init__(self, fitted):
        self.fitted = fitted

    def fit(self, X, y, sample_weight=None):
        return self

    def predict(self, X):
        return self.fitted.predict(X)

    def predict_proba(self, X):
        return self.fitted.predict_proba(X)


def _reg_data(seed=0, n=200, m=30, d=4, delta=0.3):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    Xs, Xt = rng.normal(size=(n, d)), rng.normal(0.2, 1.0, size=(m, d))
    ys = Xs @ w + 1.0 + rng.normal(0, 0.3, n)
    yt = Xt @ (w + delta) - 0.5 + rng.normal(0, 0.3, m)
    return Xs, ys, Xt, yt


def _clf_data(seed=0, n=300, m=60, d=3, k=2):
    rng = np.random.default_rng(seed)
    Xs, Xt = rng.normal(size=(n, d)), rng.normal(0.3, 1.0, size=(m, d))
    cuts = [0.0] if k == 2 else [-0.5, 0.5]
    ys = np.digitize(Xs[:, 0] + 0.5 * rng.normal(size=n), cuts)
    yt = np.digitize(Xt[:, 0] + Xt[:, 1] + 0.5 * rng.normal(size=m), cuts)
    return Xs, ys, Xt, yt


# ================================================================ regularised regression
def test_regressor_closed_form_and_offset_ridge():
    Xs, ys, Xt, yt = _reg_data()
    lam, lam_s = 0.37, 0.01
    model = RegularizedTransferRegressor(lambdas=[lam], source_lambda=lam_s).fit_domains(
        Xs, ys, Xt, yt)
    # source: sklearn Ridge with alpha = n * source_lambda
    src = Ridge(alpha=len(ys) * lam_s).fit(Xs, ys)
    np.testing.assert_allclose(model.source_coef_, src.coef_, rtol=1e-8)
    np.testing.assert_allclose(model.source_intercept_, src.intercept_, rtol=1e-8)
    w_s, m = src.coef_, len(yt)
    # closed form on centred target data
    Xc, yc = Xt - Xt.mean(0), yt - yt.mean()
    w = np.linalg.solve(Xc.T @ Xc + m * lam * np.eye(4), Xc.T @ yc + m * lam * w_s)
    np.testing.assert_allclose(model.coef_, w, rtol=1e-8)
    np.testing.assert_allclose(model.intercept_, yt.mean() - Xt.mean(0) @ w, rtol=1e-8)
    # ridge on the offset target y - X w_s
    off = Ridge(alpha=m * lam).fit(Xt, yt - Xt @ w_s)
    np.testing.assert_allclose(model.coef_, w_s + off.coef_, rtol=1e-8)
    np.testing.assert_allclose(model.intercept_, off.intercept_, rtol=1e-8)
    np.testing.assert_allclose(model.predict(Xt), off.predict(Xt) + Xt @ w_s, rtol=1e-8)


def test_regressor_grid_ends():
    Xs, ys, Xt, yt = _reg_data()
    inf = RegularizedTransferRegressor(lambdas=[np.inf]).fit_domains(Xs, ys, Xt, yt)
    np.testing.assert_allclose(inf.coef_, inf.source_coef_)
    np.testing.assert_allclose(inf.intercept_, np.mean(yt - Xt @ inf.source_coef_))
    zero = RegularizedTransferRegressor(lambdas=[0.0]).fit_domains(Xs, ys, Xt, yt)
    ols = np.linalg.lstsq(np.c_[Xt, np.ones(len(yt))], yt, rcond=None)[0]
    np.testing.assert_allclose(zero.coef_, ols[:-1], rtol=1e-7)
    auto = RegularizedTransferRegressor().fit_domains(Xs, ys, Xt, yt)
    assert np.isinf(auto.lambdas_[-1]) and auto.lambdas_[0] < 1e-4


def test_regressor_cv_matches_naive_loop():
    Xs, ys, Xt, yt = _reg_data(seed=3)
    grid = [0.001, 0.1, 1.0, 10.0]
    model = RegularizedTransferRegressor(lambdas=grid, cv=4, random_state=7).fit_domains(
        Xs, ys, Xt, yt)
    w_s = model.source_coef_
    seed = check_random_state(7).randint(np.iinfo(np.int32).max)
    ref = np.zeros(len(grid))
    for tr, te in KFold(4, shuffle=True, random_state=seed).split(Xt):
        for j, lam in enumerate(grid):
            r = Ridge(alpha=len(tr) * lam).fit(Xt[tr], yt[tr] - Xt[tr] @ w_s)
            ref[j] += np.sum((r.predict(Xt[te]) + Xt[te] @ w_s - yt[te]) ** 2)
    np.testing.assert_allclose(model.cv_scores_, ref / len(yt), rtol=1e-7)
    assert model.lambda_ == grid[int(np.argmin(ref))]


def test_regressor_transfer_helps_with_few_target_rows():
    errs_t, errs_r = [], []
    for seed in range(5):
        Xs, ys, Xt, yt = _reg_data(seed=seed, m=12, d=8, delta=0.05)
        _, _, Xq, yq = _reg_data(seed=seed + 100, m=500, d=8, delta=0.05)
        # same w for the test set: regenerate from the same seed
        rng = np.random.default_rng(seed)
        w = rng.normal(size=8)
        yq = Xq @ (w + 0.05) - 0.5
        model = RegularizedTransferRegressor(random_state=0).fit_domains(Xs, ys, Xt, yt)
        tonly = Ridge(alpha=1e-3).fit(Xt, yt)
        errs_r.append(np.mean((model.predict(Xq) - yq) ** 2))
        errs_t.append(np.mean((tonly.predict(Xq) - yq) ** 2))
    assert np.mean(errs_r) < 0.5 * np.mean(errs_t)


# ================================================================ regularised logistic
def _logistic_problem(k, seed):
    """(rng, X, Y, prior, K) of a small random k-class logistic problem."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 3))
    codes = rng.integers(0, k, 40)
    K = 1 if k == 2 else k
    Y = codes.astype(float) if k == 2 else np.eye(k)[codes]
    return rng, X, Y, rng.normal(size=(3, K)), K


@pytest.mark.parametrize("k", [2, 3])
def test_logistic_objective_gradient_finite_differences(k):
    rng, X, Y, prior, K = _logistic_problem(k, 0)
    theta = rng.normal(size=3 * K + K)
    f = lambda t: _logistic_objective(t, X, Y, prior, 0.7, None)[0]  # noqa: E731
    g = lambda t: _logistic_objective(t, X, Y, prior, 0.7, None)[1]  # noqa: E731
    assert check_grad(f, g, theta, epsilon=1e-6) < 1e-5
    off = rng.normal(size=(40, K))
    fb = lambda b: _logistic_objective(b, X, Y, prior, np.inf, off)[0]  # noqa: E731
    gb = lambda b: _logistic_objective(b, X, Y, prior, np.inf, off)[1]  # noqa: E731
    assert check_grad(fb, gb, rng.normal(size=K), epsilon=1e-6) < 1e-6


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k", [2, 3])
def test_logistic_hessian_product_finite_differences(k, weighted):
    """H v equals the central difference of the gradient along v (the reference)."""
    rng, X, Y, prior, K = _logistic_problem(k, 1)
    sw = rng.uniform(0.2, 3.0, 40) if weighted else None
    theta, v, h = rng.normal(size=3 * K + K), rng.normal(size=3 * K + K), 1e-5
    grad = lambda t, off=None, lam=0.7: _logistic_objective(t, X, Y, prior, lam, off, sw)[1]  # noqa: E731
    numeric = (grad(theta + h * v) - grad(theta - h * v)) / (2 * h)
    np.testing.assert_allclose(_logistic_hessp(theta, v, X, Y, prior, 0.7, None, sw), numeric,
                               atol=1e-7)
    off, b, u = rng.normal(size=(40, K)), rng.normal(size=K), rng.normal(size=K)
    numeric_b = (grad(b + h * u, off, np.inf) - grad(b - h * u, off, np.inf)) / (2 * h)
    np.testing.assert_allclose(_logistic_hessp(b, u, X, Y, prior, np.inf, off, sw), numeric_b,
                               atol=1e-7)


@pytest.mark.parametrize("k", [2, 3])
def test_logistic_zero_prior_matches_sklearn(k):
    Xs, ys, Xt, yt = _clf_data(k=k)
    lam = 0.02
    K = 1 if k == 2 else k
    Y = yt.astype(float) if k == 2 else np.eye(k)[yt]
    W, b = _logistic_fit(Xt, Y, np.zeros((3, K)), lam, (np.zeros((3, K)), np.zeros(K)),
                         1000, 1e-10)
    ref = LogisticRegression(C=1.0 / (2 * len(yt) * lam), tol=1e-12, max_iter=5000).fit(Xt, yt)
    np.testing.assert_allclose(W.T, ref.coef_, atol=1e-5)
    if k == 2:
        np.testing.assert_allclose(b, ref.intercept_, atol=1e-5)
    else:  # multinomial intercepts are defined up to a common constant
        np.testing.assert_allclose(b - b.mean(), ref.intercept_ - ref.intercept_.mean(),
                                   atol=1e-5)
    # the source model through the public API is the same thing on source rows
    model = RegularizedTransferClassifier(lambdas=[1.0], source_lambda=lam, tol=1e-10,
                                          max_iter=1000).fit_domains(Xs, ys, Xt, yt)
    src = LogisticRegression(C=1.0 / (2 * len(ys) * lam), tol=1e-12, max_iter=5000).fit(Xs, ys)
    np.testing.assert_allclose(model.source_coef_, src.coef_, atol=1e-5)


@pytest.mark.parametrize("k", [2, 3])
def test_logistic_transfer_solution_is_stationary(k):
    Xs, ys, Xt, yt = _clf_data(k=k)
    model = RegularizedTransferClassifier(lambdas=[0.05], tol=1e-10).fit_domains(Xs, ys, Xt, yt)
    K = model.coef_.shape[0]
    Y = yt.astype(float) if k == 2 else np.eye(k)[yt]
    theta = np.r_[model.coef_.T.ravel(), model.intercept_]
    _, grad = _logistic_objective(theta, Xt, Y, model.source_coef_.T, 0.05, None)
    assert np.abs(grad).max() < 1e-7
    assert model.coef_.shape == (K, 3)
    proba = model.predict_proba(Xt)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(model.predict(Xt), model.classes_[proba.argmax(1)])


def test_logistic_inf_keeps_source_weights():
    Xs, ys, Xt, yt = _clf_data()
    model = RegularizedTransferClassifier(lambdas=[np.inf]).fit_domains(Xs, ys, Xt, yt)
    np.testing.assert_allclose(model.coef_, model.source_coef_)
    # intercept-only logistic fit with offset X w_s: score equation sum(p - y) = 0
    p = expit(Xt @ model.coef_[0] + model.intercept_[0])
    assert abs(np.sum(p - yt)) < 1e-4


def test_logistic_cv_choice_and_subsample_path():
    Xs, ys, Xt, yt = _clf_data(m=80)
    a = RegularizedTransferClassifier(random_state=0).fit_domains(Xs, ys, Xt, yt)
    assert a.cv_scores_.shape == a.lambdas_.shape
    assert a.lambda_ == a.lambdas_[np.argmin(a.cv_scores_)]
    b = RegularizedTransferClassifier(random_state=0).fit_domains(Xs, ys, Xt, yt)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    c = RegularizedTransferClassifier(cv_max_rows=40, random_state=0).fit_domains(
        Xs, ys, Xt, yt)
    assert np.isfinite(c.cv_scores_).all()


def test_logistic_string_labels_pandas():
    Xs, ys, Xt, yt = _clf_data(k=3)
    names = np.array(["lo", "mid", "hi"])
    X, y = stack_domains(pd.DataFrame(Xs), names[ys], pd.DataFrame(Xt), names[yt])
    model = RegularizedTransferClassifier(random_state=0).fit(X, y)
    assert set(model.predict(pd.DataFrame(Xt))) <= set(names)
    assert model.score(Xt, names[yt]) > 0.5


# ================================================================ continued boosting
def test_zero_target_trees_is_the_source_model():
    Xs, ys, Xt, yt = _reg_data()
    reg = ContinuedBoostingRegressor(n_target_trees=0, random_state=0).fit_domains(
        Xs, ys, Xt, yt)
    np.testing.assert_array_equal(reg.predict(Xt), reg.source_estimator_.predict(Xt))
    for k in (2, 3):
        Xs, ys, Xt, yt = _clf_data(k=k)
        clf = ContinuedBoostingClassifier(n_target_trees=0, random_state=0).fit_domains(
            Xs, ys, Xt, yt)
        np.testing.assert_allclose(clf.predict_proba(Xt),
                                   clf.source_estimator_.predict_proba(Xt), atol=1e-12)
        np.testing.assert_array_equal(clf.predict(Xt), clf.source_estimator_.predict(Xt))



def test_default_source_model_stops_early_unless_a_class_cannot_be_split():
    """Small sources: the default source model stops early on a validation split (the
    noisy labels here make 100 iterations overfit), except when the stratified split
    is impossible (a class with one row, or fewer validation rows than classes)."""
    Xs, ys, Xt, yt = _clf_data()
    clf = ContinuedBoostingClassifier(n_target_trees=2, random_state=0).fit_domains(
        Xs, ys, Xt, yt)
    assert isinstance(clf.source_estimator_, UnweightedBins)  # fast with class weights
    assert clf.source_estimator_.estimator.early_stopping is True
    assert clf.source_estimator_.n_iter_ < clf.source_estimator_.estimator.max_iter
    ys_rare = ys.copy()
    ys_rare[0] = 2  # a class with a single source row: no stratified split possible
    clf = ContinuedBoostingClassifier(n_target_trees=2, random_state=0).fit_domains(
        Xs, ys_rare, Xt, yt)
    assert clf.source_estimator_.estimator.early_stopping is False
    assert list(clf.classes_) == [0, 1, 2]
    # six source rows: a 10% validation split has one row, fewer than the two classes
    clf = ContinuedBoostingClassifier(n_target_trees=2, random_state=0).fit_domains(
        Xs[:6], np.array([0, 1, 0, 1, 0, 1]), Xt, yt)
    assert clf.source_estimator_.estimator.early_stopping is False
    Xs, ys, Xt, yt = _reg_data()
    reg = ContinuedBoostingRegressor(n_target_trees=2, random_state=0).fit_domains(
        Xs, ys, Xt, yt)
    assert reg.source_estimator_.estimator.early_stopping is True
    reg = ContinuedBoostingRegressor(n_target_trees=2, random_state=0).fit_domains(
        Xs[:1], ys[:1], Xt, yt)  # one source row: no validation split
    assert reg.source_estimator_.estimator.early_stopping is False


def test_regression_matches_sklearn_gradient_boosting_with_frozen_init():
    Xs, ys, Xt, yt = _reg_data()
    yt = yt + np.sin(2 * Xt[:, 0])
    reg = ContinuedBoostingRegressor(n_target_trees=6, learning_rate=0.3,
                                     random_state=0).fit_domains(Xs, ys, Xt, yt)
    X32 = Xt.astype(np.float32)
    ref = GradientBoostingRegressor(init=FrozenEstimator(reg.source_estimator_),
                                    n_estimators=6, learning_rate=0.3, max_depth=3,
                                    min_samples_leaf=5, random_state=0).fit(X32, yt)
    np.testing.assert_allclose(reg.predict(Xt), ref.predict(X32), atol=1e-10)


def test_binary_matches_sklearn_gradient_boosting_with_frozen_init():
    Xs, ys, Xt, yt = _clf_data()
    clf = ContinuedBoostingClassifier(n_target_trees=6, learning_rate=0.3,
                                      random_state=0).fit_domains(Xs, ys, Xt, yt)
    X32 = Xt.astype(np.float32)
    ref = GradientBoostingClassifier(init=FrozenEstimator(clf.source_estimator_),
                                     n_estimators=6, learning_rate=0.3, max_depth=3,
                                     min_samples_leaf=5, random_state=0).fit(X32, yt)
    np.testing.assert_allclose(clf.decision_function(Xt), ref.decision_function(X32),
                               atol=1e-8)


def test_multiclass_leaf_values_by_hand():
    Xs, ys, Xt, yt = _clf_data(k=3)
    clf = ContinuedBoostingClassifier(n_target_trees=1, learning_rate=1.0,
                                      random_state=0).fit_domains(Xs, ys, Xt, yt)
    F0 = clf.source_estimator_.decision_function(Xt.astype(np.float32))
    P = np.exp(F0) / np.exp(F0).sum(1, keepdims=True)
    R = np.eye(3)[yt] - P
    tree, values = clf.trees_[0]
    leaves = tree.apply(Xt.astype(np.float32))
    for leaf in np.unique(leaves):
        rows = leaves == leaf
        for c in range(3):
            num, den = R[rows, c].sum(), np.sum(np.abs(R[rows, c]) * (1 - np.abs(R[rows, c])))
            assert values[leaf, c] == pytest.approx(2 / 3 * num / den, rel=1e-8)
    np.testing.assert_allclose(clf.decision_function(Xt), F0 + values[leaves], atol=1e-10)


def test_target_trees_improve_fit_on_a_different_target():
    rng = np.random.default_rng(0)
    Xs, Xt, Xq = (rng.normal(size=(s, 3)) for s in (600, 150, 1000))
    f_s = lambda X: X[:, 0] + 0.5 * X[:, 1]  # noqa: E731
    f_t = lambda X: X[:, 0] + 0.5 * X[:, 1] + np.where(X[:, 2] > 0, 1.5, -1.5)  # noqa: E731
    reg = ContinuedBoostingRegressor(n_target_trees=60, random_state=0).fit_domains(
        Xs, f_s(Xs), Xt, f_t(Xt) + rng.normal(0, 0.2, 150))
    mse = lambda p: np.mean((p - f_t(Xq)) ** 2)  # noqa: E731
    assert mse(reg.predict(Xq)) < 0.3 * mse(reg.source_estimator_.predict(Xq))
    clf = ContinuedBoostingClassifier(n_target_trees=60, random_state=0).fit_domains(
        Xs, f_s(Xs) > 0, Xt, f_t(Xt) > 0)
    acc = lambda p: np.mean(p == (f_t(Xq) > 0))  # noqa: E731
    assert acc(clf.predict(Xq)) > acc(clf.source_estimator_.predict(Xq)) + 0.05


def test_cv_chooses_number_of_trees():
    Xs, ys, Xt, yt = _reg_data()
    same = ContinuedBoostingRegressor(n_target_trees=30, cv=3, random_state=0)
    same.fit_domains(Xs, ys, Xt, Xt @ np.zeros(4) + 5 + np.sin(3 * Xt[:, 0]))
    assert same.cv_losses_.shape == (31,)
    assert same.n_target_trees_ == int(np.argmin(same.cv_losses_)) > 0
    assert len(same.trees_) == same.n_target_trees_
    Xs, ys, Xt, yt = _clf_data()
    clf = ContinuedBoostingClassifier(n_target_trees=10, cv=3, random_state=0).fit_domains(
        Xs, ys, Xt, yt)
    assert 0 <= clf.n_target_trees_ <= 10


def test_subsampled_trees_close_to_exact():
    rng = np.random.default_rng(0)
    Xs, Xt, Xq = (rng.normal(size=(s, 3)) for s in (500, 3000, 1000))
    f_t = lambda X: X[:, 0] + np.where(X[:, 2] > 0, 1.0, -1.0)  # noqa: E731
    src = HistGradientBoostingRegressor(max_iter=30, random_state=0)
    mses = []
    for ms in (None, 1000):
        reg = ContinuedBoostingRegressor(src, n_target_trees=30, max_samples=ms,
                                         random_state=0)
        reg.fit_domains(Xs, Xs[:, 0], Xt, f_t(Xt) + rng.normal(0, 0.3, 3000))
        mses.append(np.mean((reg.predict(Xq) - f_t(Xq)) ** 2))
    # documented trade-off: growing each tree on 1/3 of the rows costs little accuracy
    assert mses[1] < mses[0] + 0.05


# ================================================================ class weights
def _imbalanced_clf_data(seed=0, n=2000, m=1000, d=4):
    """~3% positives (logit -4.5 + 1.5 x): an unweighted model predicts class 0 only."""
    rng = np.random.default_rng(seed)
    Xs, Xt = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    ys = (rng.random(n) < expit(-4.5 + 1.5 * Xs[:, 0])).astype(int)
    yt = (rng.random(m) < expit(-4.5 + 1.5 * (Xt[:, 0] + 0.3 * Xt[:, 1]))).astype(int)
    return Xs, ys, Xt, yt


def _balanced_accuracy(y, p):
    return float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))


@pytest.mark.parametrize("k", [2, 3])
def test_balanced_zero_prior_matches_sklearn(k):
    from transferkit.model_based.regularized import _row_weights

    rng = np.random.default_rng(1)
    Xs, ys, Xt, yt = _clf_data(k=k, m=120)
    yt = np.where((yt == 1) & (rng.random(len(yt)) < 0.7), 0, yt)  # make it imbalanced
    lam = 0.02
    K = 1 if k == 2 else k
    classes = np.arange(k)
    Y = yt.astype(float) if k == 2 else np.eye(k)[yt]
    sw = _row_weights("balanced", classes, yt, "test")
    assert sw.sum() == pytest.approx(len(yt))
    W, b = _logistic_fit(Xt, Y, np.zeros((3, K)), lam, (np.zeros((3, K)), np.zeros(K)),
                         1000, 1e-10, sw)
    ref = LogisticRegression(C=1.0 / (2 * len(yt) * lam), class_weight="balanced", tol=1e-12,
                             max_iter=5000).fit(Xt, yt)
    np.testing.assert_allclose(W.T, ref.coef_, atol=1e-5)
    if k == 2:
        np.testing.assert_allclose(b, ref.intercept_, atol=1e-5)
    else:
        np.testing.assert_allclose(b - b.mean(), ref.intercept_ - ref.intercept_.mean(),
                                   atol=1e-5)
    # public API: the source model (prior 0) with balanced weights computed on source rows
    ys = np.where((ys == 0) & (rng.random(len(ys)) < 0.6), 1, ys)
    model = RegularizedTransferClassifier(lambdas=[0.0], source_lambda=lam, tol=1e-10,
                                          max_iter=2000, class_weight="balanced")
    model.fit_domains(Xs, ys, Xt, yt)
    src = LogisticRegression(C=1.0 / (2 * len(ys) * lam), class_weight="balanced", tol=1e-12,
                             max_iter=5000).fit(Xs, ys)
    np.testing.assert_allclose(model.source_coef_, src.coef_, atol=1e-5)
    # lambda -> 0: the target model is the unpenalised balanced logistic regression
    tgt = LogisticRegression(C=np.inf, class_weight="balanced", tol=1e-12,
                             max_iter=10000).fit(Xt, yt)
    pm, pr = model.predict_proba(Xt), tgt.predict_proba(Xt)
    np.testing.assert_allclose(pm, pr, atol=1e-4)


def test_dict_class_weight_equals_sample_weights():
    from transferkit.model_based.regularized import _row_weights

    Xs, ys, Xt, yt = _clf_data()
    cw = {0: 1.0, 1: 4.0}
    lam = 0.01
    sws, swt = np.where(ys == 1, 4.0, 1.0), np.where(yt == 1, 4.0, 1.0)
    np.testing.assert_array_equal(_row_weights(cw, np.array([0, 1]), yt, "t"), swt)
    model = RegularizedTransferClassifier(lambdas=[0.05], source_lambda=lam, tol=1e-10,
                                          max_iter=1000, class_weight=cw)
    model.fit_domains(Xs, ys, Xt, yt)
    # source: weighted *mean* log-loss -> sklearn's C = 1 / (2 sum(s) lambda)
    src = LogisticRegression(C=1.0 / (2 * sws.sum() * lam), tol=1e-12, max_iter=5000)
    src.fit(Xs, ys, sample_weight=sws)
    np.testing.assert_allclose(model.source_coef_, src.coef_, atol=1e-5)
    np.testing.assert_allclose(model.source_intercept_, src.intercept_, atol=1e-5)
    # target: stationary point of the objective with the equivalent sample weights
    theta = np.r_[model.coef_.T.ravel(), model.intercept_]
    _, grad = _logistic_objective(theta, Xt, yt.astype(float), model.source_coef_.T, 0.05,
                                  None, swt)
    assert np.abs(grad).max() < 1e-7
    # all-ones weights are the unweighted model
    ones = RegularizedTransferClassifier(lambdas=[0.05], tol=1e-10, class_weight={0: 1, 1: 1})
    plain = RegularizedTransferClassifier(lambdas=[0.05], tol=1e-10)
    np.testing.assert_allclose(ones.fit_domains(Xs, ys, Xt, yt).coef_,
                               plain.fit_domains(Xs, ys, Xt, yt).coef_, atol=1e-7)
    # boosting: dict weights == sklearn gradient boosting with the same sample weights
    clf = ContinuedBoostingClassifier(n_target_trees=6, learning_rate=0.3, class_weight=cw,
                                      random_state=0).fit_domains(Xs, ys, Xt, yt)
    X32 = Xt.astype(np.float32)
    ref = GradientBoostingClassifier(init=FrozenEstimator(clf.source_estimator_),
                                     n_estimators=6, learning_rate=0.3, max_depth=3,
                                     min_samples_leaf=5, random_state=0)
    ref.fit(X32, yt, sample_weight=swt)
    np.testing.assert_allclose(clf.decision_function(Xt), ref.decision_function(X32),
                               atol=1e-8)


class _UnweightedLogistic(LogisticRegression):
    """A source model that ignores sample_weight: only the target trees are weighted."""

    def fit(self, X, y, sample_weight=None):
        return super().fit(X, y)


def test_balanced_class_weight_recovers_minority_recall():
    Xs, ys, Xt, yt = _imbalanced_clf_data()
    Xq, yq = _imbalanced_clf_data(seed=10)[2:]
    assert 0.02 < yt.mean() < 0.05 and 0.02 < yq.mean() < 0.05
    recall = lambda p: np.mean(p[yq == 1] == 1)  # noqa: E731
    hgb = HistGradientBoostingClassifier(max_iter=30, max_depth=2, random_state=0)
    # source and target trees weighted
    plain = ContinuedBoostingClassifier(hgb, n_target_trees=30, cv=3, random_state=0)
    p = plain.fit_domains(Xs, ys, Xt, yt).predict(Xq)
    assert recall(p) == 0.0 and _balanced_accuracy(yq, p) == 0.5  # majority class only
    bal = ContinuedBoostingClassifier(hgb, n_target_trees=30, cv=3, class_weight="balanced",
                                      random_state=0)
    p = bal.fit_domains(Xs, ys, Xt, yt).predict(Xq)
    assert recall(p) > 0.5 and _balanced_accuracy(yq, p) > 0.65
    # the target trees alone (source ignores the weights) also recover the minority class
    plain = ContinuedBoostingClassifier(_UnweightedLogistic(), n_target_trees=30, cv=3,
                                        random_state=0)
    p = plain.fit_domains(Xs, ys, Xt, yt).predict(Xq)
    assert recall(p) < 0.1 and _balanced_accuracy(yq, p) < 0.56
    bal = ContinuedBoostingClassifier(_UnweightedLogistic(), n_target_trees=30, cv=3,
                                      class_weight="balanced", random_state=0)
    p = bal.fit_domains(Xs, ys, Xt, yt).predict(Xq)
    assert bal.n_target_trees_ > 0
    assert recall(p) > 0.4 and _balanced_accuracy(yq, p) > 0.65
    # regularised transfer
    p = RegularizedTransferClassifier(random_state=0).fit_domains(Xs, ys, Xt, yt).predict(Xq)
    assert recall(p) < 0.1 and _balanced_accuracy(yq, p) < 0.56
    p = RegularizedTransferClassifier(class_weight="balanced", random_state=0).fit_domains(
        Xs, ys, Xt, yt).predict(Xq)
    assert recall(p) > 0.6 and _balanced_accuracy(yq, p) > 0.7


def test_class_weight_none_is_unchanged_and_errors():
    Xs, ys, Xt, yt = _clf_data()
    a = ContinuedBoostingClassifier(n_target_trees=5, cv=3, random_state=0)
    b = ContinuedBoostingClassifier(n_target_trees=5, cv=3, random_state=0, class_weight=None)
    assert a.get_params()["class_weight"] is None
    np.testing.assert_array_equal(a.fit_domains(Xs, ys, Xt, yt).decision_function(Xt),
                                  b.fit_domains(Xs, ys, Xt, yt).decision_function(Xt))
    assert RegularizedTransferClassifier().get_params()["class_weight"] is None
    for make in (ContinuedBoostingClassifier, RegularizedTransferClassifier):
        with pytest.raises(TransferKitInputError, match="class_weight"):
            make(class_weight="balance").fit_domains(Xs, ys, Xt, yt)
        with pytest.raises(TransferKitInputError, match="class_weight"):
            make(class_weight={7: 2.0}).fit_domains(Xs, ys, Xt, yt)
        with pytest.raises(TransferKitInputError, match="class_weight"):
            make(class_weight={1: -1.0}).fit_domains(Xs, ys, Xt, yt)

    class NoWeights(LogisticRegression):
        def fit(self, X, y):
            return super().fit(X, y)

    with pytest.raises(TransferKitInputError, match="sample_weight"):
        ContinuedBoostingClassifier(NoWeights(), class_weight="balanced").fit_domains(
            Xs, ys, Xt, yt)


# ================================================================ shared contract
ESTIMATORS = [
    (RegularizedTransferRegressor, "reg"), (RegularizedTransferClassifier, "clf"),
    (lambda **kw: ContinuedBoostingRegressor(n_target_trees=3, **kw), "reg"),
    (lambda **kw: ContinuedBoostingClassifier(n_target_trees=3, **kw), "clf"),
]


@pytest.mark.parametrize("make,kind", ESTIMATORS)
def test_contract_bad_input_and_determinism(make, kind):
    Xs, ys, Xt, yt = _reg_data() if kind == "reg" else _clf_data()
    X, y = stack_domains(Xs, ys, Xt, yt)
    a = make(random_state=1).fit(X, y)
    b = make(random_state=1).fit(X, y)
    np.testing.assert_array_equal(a.predict(Xt), b.predict(Xt))
    assert a.predict(pd.DataFrame(Xt)).shape == (len(yt),)
    with pytest.raises(TransferKitInputError, match="tagged"):
        make().fit(X, np.r_[ys, yt])
    with pytest.raises(TransferKitInputError, match="labelled target"):
        make().fit_domains(Xs, ys, Xt)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(TransferKitInputError, match="NaN"):
        make().fit(Xn, y)
    with pytest.raises(TransferKitInputError, match="features"):
        make().fit_domains(Xs, ys, Xt[:, :2], yt)
    with pytest.raises(TransferKitInputError, match="empty"):
        make().fit_domains(Xs, ys, Xt[:0], yt[:0])
    with pytest.raises(TransferKitInputError, match="features"):
        a.predict(Xt[:, :2])


def test_classifier_specific_errors():
    Xs, ys, Xt, yt = _clf_data()
    with pytest.raises(TransferKitInputError, match="single class"):
        RegularizedTransferClassifier().fit_domains(Xs, np.zeros(len(ys)), Xt,
                                                    np.zeros(len(yt)))
    with pytest.raises(TransferKitInputError, match="never occur in the source"):
        ContinuedBoostingClassifier().fit_domains(Xs, ys, Xt, np.where(yt == 1, 7, yt))
    with pytest.raises(TransferKitInputError, match="at least 2 labelled target"):
        RegularizedTransferClassifier().fit_domains(Xs, ys, Xt[:1], yt[:1])
    with pytest.raises(TransferKitInputError, match="lambdas"):
        RegularizedTransferRegressor(lambdas=[-1.0]).fit_domains(Xs, ys * 1.0, Xt, yt * 1.0)
    with pytest.raises(TransferKitInputError, match="n_target_trees"):
        ContinuedBoostingRegressor(n_target_trees=-1).fit_domains(Xs, ys * 1.0, Xt, yt * 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ContinuedBoostingClassifier(n_target_trees=2).fit_domains(Xs, ys, Xt, yt)


def test_autopilot_registration():
    from transferkit.autopilot import _register_model as reg
    from transferkit.autopilot.registry import TaskInfo, get_strategy

    names = {s.name for s in reg.MODEL_STRATEGIES}
    assert {"tradaboost", "tradaboost_r2", "two_stage_tradaboost_r2",
            "regularized_transfer", "continued_boosting"} <= names
    for task, (Xs, ys, Xt, yt) in (("classification", _clf_data()),
                                   ("regression", _reg_data())):
        X, y = stack_domains(Xs, ys, Xt, yt)
        info = TaskInfo(task, len(ys), 1, len(yt), 0, Xs.shape[1])
        unlabelled = TaskInfo(task, len(ys), 1, 0, len(yt), Xs.shape[1])
        for s in reg.MODEL_STRATEGIES:
            assert get_strategy(s.name) is s
            assert not s.applies(unlabelled)
            if s.applies(info):
                assert s.build(info, 0).fit(X, y).predict(Xt).shape == (len(yt),)
                if task == "classification" and s.name in ("regularized_transfer",
                                                           "continued_boosting"):
                    assert s.build(info, 0).get_params()["class_weight"] == "balanced"
