"""TrAdaBoost, TrAdaBoost.R2 and two-stage TrAdaBoost.R2 against the papers' update
rules stepped by hand in plain loops."""

import math

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from transferkit.domains import stack_domains
from transferkit.instance_based.tradaboost import (
    TrAdaBoostClassifier,
    TrAdaBoostR2,
    TwoStageTrAdaBoostR2,
    _solve_beta,
    weighted_median,
)
from transferkit.validation import TransferKitInputError


@pytest.fixture(autouse=True)
def _one_thread():
    # OpenMP (HistGradientBoosting) on a busy 2-core CI box is far slower with 2 threads
    with threadpool_limits(1):
        yield


def _clf_data(seed=0, n=60, m=20, k=2):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n, 3))
    Xt = rng.normal(0.3, 1.0, size=(m, 3))
    if k == 2:
        ys = (Xs[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)
        yt = (Xt[:, 0] + Xt[:, 1] + 0.3 * rng.normal(size=m) > 0.3).astype(int)
    else:
        ys = np.digitize(Xs[:, 0], [-0.5, 0.5])
        yt = np.digitize(Xt[:, 0] + 0.5 * Xt[:, 1], [-0.3, 0.7])
    return Xs, ys, Xt, yt


def _reg_data(seed=0, n=60, m=20):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n, 2))
    Xt = rng.normal(size=(m, 2))
    ys = 2 * Xs[:, 0] + rng.normal(0, 0.3, n)
    yt = 2 * Xt[:, 0] + 1.5 * Xt[:, 1] + rng.normal(0, 0.3, m)
    return Xs, ys, Xt, yt


# ---------------------------------------------------------------- hand-stepped references
def _naive_tradaboost(Xs, ys, Xt, yt, N, make):
    """Dai et al. (2007), Algorithm 1, written out literally (binary labels 0/1); the
    learner gets the distribution p^t as weights scaled to mean 1."""
    X = np.vstack([Xs, Xt]).astype(np.float32)
    c = np.concatenate([ys, yt])
    n, m = len(ys), len(yt)
    w = np.ones(n + m) / (n + m)
    hs, beta_ts = [], []
    beta = 1 / (1 + math.sqrt(2 * math.log(n) / N))
    for _ in range(N):
        p = w / w.sum()
        h = make().fit(X, c, sample_weight=p * len(p))
        pred = h.predict(X)
        err = np.abs(pred - c)
        eps = sum(w[i] * err[i] for i in range(n, n + m)) / w[n:].sum()
        beta_t = eps / (1 - eps)
        for i in range(n):
            w[i] = w[i] * beta ** err[i]
        for i in range(n, n + m):
            w[i] = w[i] * beta_t ** (-err[i])
        hs.append(h)
        beta_ts.append(beta_t)

    def predict(Xq):
        lhs = np.ones(len(Xq))
        rhs = 1.0
        for t in range(math.ceil(N / 2), N + 1):
            lhs = lhs * beta_ts[t - 1] ** (-hs[t - 1].predict(Xq.astype(np.float32)))
            rhs = rhs * beta_ts[t - 1] ** (-0.5)
        return (lhs >= rhs).astype(int)

    return w / w.sum(), np.array(beta_ts), predict


@pytest.mark.parametrize("N", [1, 2, 3, 5])
def test_tradaboost_matches_paper_rule(N):
    Xs, ys, Xt, yt = _clf_data()
    make = lambda: DecisionTreeClassifier(max_depth=1, random_state=0)  # noqa: E731
    w_ref, betas_ref, predict_ref = _naive_tradaboost(Xs, ys, Xt, yt, N, make)
    X, y = stack_domains(Xs, ys, Xt, yt)
    clf = TrAdaBoostClassifier(make(), n_estimators=N, random_state=0).fit(X, y)
    assert np.all((clf.estimator_errors_ > 0) & (clf.estimator_errors_ < 0.5))
    np.testing.assert_allclose(clf.betas_, betas_ref, rtol=1e-10)
    np.testing.assert_allclose(clf.sample_weight_, w_ref, rtol=1e-9, atol=1e-15)
    Xq = np.random.default_rng(5).normal(size=(200, 3))
    np.testing.assert_array_equal(clf.predict(Xq), predict_ref(Xq))
    assert clf.voting_start_ == math.ceil(N / 2) - 1


def test_tradaboost_moves_weight_off_misleading_source():
    rng = np.random.default_rng(0)
    Xs = rng.normal(size=(300, 2))
    ys = (Xs[:, 0] > 0).astype(int)
    ys[:150] = 1 - ys[:150]  # half the source is labelled the wrong way
    Xt = rng.normal(size=(60, 2))
    yt = (Xt[:, 0] > 0).astype(int)
    clf = TrAdaBoostClassifier(DecisionTreeClassifier(max_depth=1), n_estimators=10,
                               random_state=0).fit_domains(Xs, ys, Xt, yt)
    w = clf.sample_weight_
    assert w[150:300].sum() > 5 * w[:150].sum()
    Xq = rng.normal(size=(500, 2))
    assert (clf.predict(Xq) == (Xq[:, 0] > 0)).mean() > 0.9


def test_tradaboost_multiclass_and_string_labels():
    Xs, ys, Xt, yt = _clf_data(k=3, n=150, m=60)
    names = np.array(["a", "b", "c"])
    clf = TrAdaBoostClassifier(n_estimators=8, random_state=0).fit_domains(
        Xs, names[ys], Xt, names[yt])
    assert set(clf.classes_) == {"a", "b", "c"}
    proba = clf.predict_proba(Xt)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # the prediction is the class with the largest weighted vote
    np.testing.assert_array_equal(clf.predict(Xt), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(Xt, names[yt]) > 0.6


def test_tradaboost_resampling_path_close_to_exact():
    rng = np.random.default_rng(1)
    Xs = rng.normal(size=(3000, 4)); ys = (Xs[:, 0] + Xs[:, 1] > 0).astype(int)
    Xt = rng.normal(size=(1000, 4)); yt = (Xt[:, 0] + 0.8 * Xt[:, 1] > 0).astype(int)
    Xq = rng.normal(size=(2000, 4)); yq = (Xq[:, 0] + 0.8 * Xq[:, 1] > 0).astype(int)
    exact = TrAdaBoostClassifier(n_estimators=10, max_samples=None, random_state=0)
    approx = TrAdaBoostClassifier(n_estimators=10, max_samples=1500, random_state=0)
    acc_e = exact.fit_domains(Xs, ys, Xt, yt).score(Xq, yq)
    acc_a = approx.fit_domains(Xs, ys, Xt, yt).score(Xq, yq)
    # documented trade-off: resampling costs at most a few points of accuracy
    assert acc_a > acc_e - 0.03


def test_tradaboost_deterministic_and_pandas():
    Xs, ys, Xt, yt = _clf_data()
    X, y = stack_domains(pd.DataFrame(Xs, columns=list("abc")), ys,
                         pd.DataFrame(Xt, columns=list("abc")), yt)
    a = TrAdaBoostClassifier(n_estimators=5, max_samples=30, random_state=3).fit(X, y)
    b = TrAdaBoostClassifier(n_estimators=5, max_samples=30, random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.sample_weight_, b.sample_weight_)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_tradaboost_ignores_unlabelled_target_rows():
    Xs, ys, Xt, yt = _clf_data()
    yt_part = yt.astype(object)
    yt_part[10:] = None
    X, y = stack_domains(Xs, ys, Xt, yt_part)
    clf = TrAdaBoostClassifier(n_estimators=3, random_state=0).fit(X, y)
    assert np.all(clf.sample_weight_[len(ys) + 10:] == 0)
    assert clf.sample_weight_.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------- R2
def _adj(absr, loss):
    e = absr / absr.max()
    return {"linear": e, "square": e**2, "exponential": 1 - np.exp(-e)}[loss]


def _naive_r2(Xs, ys, Xt, yt, N, loss, make):
    """Pardoe & Stone (2010), TrAdaBoost.R2, stepped literally."""
    X = np.vstack([Xs, Xt]).astype(np.float32)
    Y = np.concatenate([ys, yt])
    n, m = len(ys), len(yt)
    w = np.ones(n + m) / (n + m)
    beta = 1 / (1 + math.sqrt(2 * math.log(n) / N))
    hs, bts = [], []
    for _ in range(N):
        h = make().fit(X, Y, sample_weight=w / w.sum() * len(w))
        e = _adj(np.abs(h.predict(X) - Y), loss)
        eps = np.sum(w[n:] * e[n:]) / np.sum(w[n:])
        if eps >= 0.5:
            break
        bt = eps / (1 - eps)
        w = np.concatenate([w[:n] * beta ** e[:n], w[n:] * bt ** (-e[n:])])
        hs.append(h)
        bts.append(bt)
    N_used = len(hs)
    voters = list(range(math.ceil(N_used / 2) - 1, N_used))

    def predict(Xq):
        out = []
        for x in Xq.astype(np.float32):
            preds = np.array([hs[t].predict(x[None])[0] for t in voters])
            ws = np.array([math.log(1 / bts[t]) for t in voters])
            order = np.argsort(preds)
            cum = np.cumsum(ws[order])
            out.append(preds[order][np.searchsorted(cum, 0.5 * ws.sum() - 1e-12)])
        return np.array(out)

    return w / w.sum(), np.array(bts), predict


@pytest.mark.parametrize("loss", ["linear", "square", "exponential"])
def test_tradaboost_r2_matches_paper_rule(loss):
    Xs, ys, Xt, yt = _reg_data()
    make = lambda: DecisionTreeRegressor(max_depth=2, random_state=0)  # noqa: E731
    w_ref, b_ref, predict_ref = _naive_r2(Xs, ys, Xt, yt, 4, loss, make)
    reg = TrAdaBoostR2(make(), n_estimators=4, loss=loss, random_state=0)
    reg.fit_domains(Xs, ys, Xt, yt)
    np.testing.assert_allclose(reg.betas_, b_ref, rtol=1e-10)
    np.testing.assert_allclose(reg.sample_weight_, w_ref, rtol=1e-9, atol=1e-15)
    Xq = np.random.default_rng(2).normal(size=(50, 2))
    np.testing.assert_allclose(reg.predict(Xq), predict_ref(Xq), rtol=1e-12)


def test_weighted_median_reference():
    rng = np.random.default_rng(0)
    preds = rng.normal(size=(30, 5))
    w = rng.random(5)
    got = weighted_median(preds, w)
    for i in range(30):
        cands = sorted(preds[i])
        ref = next(v for v in cands if w[preds[i] <= v].sum() >= 0.5 * w.sum())
        assert got[i] == ref


def test_r2_stops_when_target_error_reaches_half():
    # a constant base learner that is useless on the target: eps >= 1/2 at once
    Xs, ys, Xt, yt = _reg_data()
    yt = -50 * np.sign(Xt[:, 0])
    reg = TrAdaBoostR2(DecisionTreeRegressor(max_depth=1, random_state=0), n_estimators=5)
    reg.fit_domains(Xs, ys * 0, Xt, yt)
    assert 1 <= len(reg.estimators_) < 5
    assert reg.predict(Xt).shape == (len(yt),)


def test_solve_beta_hits_share():
    rng = np.random.default_rng(0)
    w_src, e = rng.random(50), rng.random(50)
    beta, new = _solve_beta(w_src, e, target_mass=2.0, share=0.6)
    assert 0 < beta < 1
    np.testing.assert_allclose(new, w_src * beta**e)
    assert 2.0 / (2.0 + new.sum()) == pytest.approx(0.6, rel=1e-9)


def _naive_frozen_r2(X, Y, w, is_tgt, N, make):
    w = w.copy()
    hs, bs = [], []
    for _ in range(N):
        p = w / w.sum()
        h = make().fit(X, Y, sample_weight=p * len(p))
        e = _adj(np.abs(h.predict(X) - Y), "linear")
        lbar = np.sum(p * e)
        if lbar >= 0.5:
            break
        b = lbar / (1 - lbar)
        w[is_tgt] = w[is_tgt] * b ** (1 - e[is_tgt])
        hs.append(h)
        bs.append(b)
    return hs, np.log(1 / np.array(bs))


def test_two_stage_matches_paper_rule():
    Xs, ys, Xt, yt = _reg_data(n=50, m=12)
    S, N = 3, 2
    make = lambda: DecisionTreeRegressor(max_depth=2, random_state=0)  # noqa: E731
    reg = TwoStageTrAdaBoostR2(make(), n_steps=S, n_estimators=N, n_folds=3,
                               random_state=0).fit_domains(Xs, ys, Xt, yt)
    # stage 1 by hand: weights after each step, target share as in the paper
    X = np.vstack([Xs, Xt]).astype(np.float32)
    Y = np.concatenate([ys, yt])
    n, m = len(ys), len(yt)
    is_tgt = np.r_[np.zeros(n, bool), np.ones(m, bool)]
    w = np.ones(n + m) / (n + m)
    ws = [w.copy()]
    for t in range(1, S):
        h = make().fit(X, Y, sample_weight=w / w.sum() * len(w))
        e = _adj(np.abs(h.predict(X) - Y), "linear")
        share = m / (n + m) + t / (S - 1) * (1 - m / (n + m))
        beta_t = reg.betas_[t - 1]
        w_new = np.r_[w[:n] * beta_t ** e[:n], w[n:]]
        w_new /= w_new.sum()
        assert w_new[n:].sum() == pytest.approx(share, abs=1e-9)
        w = w_new
        ws.append(w.copy())
    np.testing.assert_allclose(reg.sample_weight_, ws[reg.best_step_], atol=1e-12)
    # the chosen model is AdaBoost.R2' trained on that step's weights
    hs, alpha = _naive_frozen_r2(X, Y, ws[reg.best_step_], is_tgt, N, make)
    np.testing.assert_allclose(reg.estimator_weights_, alpha, rtol=1e-10)
    preds = np.column_stack([h.predict(X) for h in hs])
    np.testing.assert_allclose(reg.predict(X), weighted_median(preds, alpha))
    assert reg.cv_errors_.shape == (S,)
    assert reg.best_step_ == int(np.argmin(reg.cv_errors_))
    assert w[:n].sum() == pytest.approx(0.0, abs=1e-12)  # the last step: target only


def test_two_stage_beats_source_only_when_target_differs():
    rng = np.random.default_rng(0)
    Xs = rng.normal(size=(400, 2)); ys = 2 * Xs[:, 0]
    Xt = rng.normal(size=(60, 2)); yt = 2 * Xt[:, 0] + 2 * Xt[:, 1]
    Xq = rng.normal(size=(500, 2)); yq = 2 * Xq[:, 0] + 2 * Xq[:, 1]
    reg = TwoStageTrAdaBoostR2(n_steps=4, n_estimators=5, random_state=0)
    reg.fit_domains(Xs, ys, Xt, yt)
    src = DecisionTreeRegressor(max_depth=3, random_state=0).fit(Xs, ys)
    assert np.mean((reg.predict(Xq) - yq) ** 2) < 0.7 * np.mean((src.predict(Xq) - yq) ** 2)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [TrAdaBoostClassifier, TrAdaBoostR2, TwoStageTrAdaBoostR2])
def test_bad_input(cls):
    Xs, ys, Xt, yt = _clf_data()
    X, y = stack_domains(Xs, ys, Xt, yt)
    with pytest.raises(TransferKitInputError, match="tagged"):
        cls().fit(X, np.r_[ys, yt])
    with pytest.raises(TransferKitInputError, match="labelled target"):
        cls().fit_domains(Xs, ys, Xt)
    Xn = X.copy(); Xn[0, 0] = np.nan
    with pytest.raises(TransferKitInputError, match="NaN"):
        cls().fit(Xn, y)
    with pytest.raises(TransferKitInputError, match="features"):
        cls().fit_domains(Xs, ys, Xt[:, :2], yt)
    with pytest.raises(TransferKitInputError, match="empty"):
        cls().fit_domains(Xs[:0], ys[:0], Xt, yt)
    with pytest.raises(TransferKitInputError, match="n_estimators"):
        cls(n_estimators=0).fit(X, y)
    with pytest.raises(TransferKitInputError, match="sample_weight"):
        base = KNeighborsClassifier() if cls is TrAdaBoostClassifier else None
        if base is None:
            from sklearn.neighbors import KNeighborsRegressor
            base = KNeighborsRegressor()
        cls(base).fit(X, y)
    fitted = cls(n_estimators=2).fit(X, y) if cls is not TwoStageTrAdaBoostR2 else cls(
        n_steps=2, n_estimators=2).fit(X, y)
    with pytest.raises(TransferKitInputError, match="features"):
        fitted.predict(Xt[:, :2])


def test_single_class_rejected():
    Xs, ys, Xt, yt = _clf_data()
    with pytest.raises(TransferKitInputError, match="single class"):
        TrAdaBoostClassifier().fit_domains(Xs, np.zeros(len(ys)), Xt, np.zeros(len(yt)))


def test_r2_loss_checked():
    Xs, ys, Xt, yt = _reg_data()
    with pytest.raises(TransferKitInputError, match="loss"):
        TrAdaBoostR2(loss="huber").fit_domains(Xs, ys, Xt, yt)


def test_linear_base_estimators_work():
    Xs, ys, Xt, yt = _clf_data()
    clf = TrAdaBoostClassifier(LogisticRegression(), n_estimators=4).fit_domains(Xs, ys, Xt, yt)
    assert clf.predict(Xt).shape == (len(yt),)
    # mean-1 weights keep the learner's regularisation sensible (p itself sums to 1)
    assert clf.score(Xt, yt) > 0.75
    assert np.abs(clf.estimators_[0].coef_).max() > 0.5
    Xs, ys, Xt, yt = _reg_data()
    reg = TrAdaBoostR2(Ridge(), n_estimators=4).fit_domains(Xs, ys, Xt, yt)
    assert np.isfinite(reg.predict(Xt)).all()


@pytest.mark.parametrize("cls", [TrAdaBoostR2, TwoStageTrAdaBoostR2])
def test_r2_deterministic_on_resampling_path(cls):
    Xs, ys, Xt, yt = _reg_data()
    kw = {"n_steps": 2} if cls is TwoStageTrAdaBoostR2 else {}
    a = cls(n_estimators=3, max_samples=40, random_state=4, **kw).fit_domains(Xs, ys, Xt, yt)
    b = cls(n_estimators=3, max_samples=40, random_state=4, **kw).fit_domains(Xs, ys, Xt, yt)
    np.testing.assert_array_equal(a.predict(Xt), b.predict(Xt))
    np.testing.assert_array_equal(a.sample_weight_, b.sample_weight_)
