"""UnweightedBins: scikit-learn's histogram boosting, binned without the weights."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import log_loss

from transferkit.model_based.binned_trees import UnweightedBins, quantile_edges


def data(n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, 1] = rng.integers(0, 4, n)                     # few distinct values
    X[rng.random(X.shape) < 0.05] = np.nan              # missing values
    y = (np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) + rng.normal(size=n) > 1)
    return X, y.astype(int), rng


@pytest.mark.parametrize("n_classes", [2, 3])
def test_without_weights_the_model_is_scikit_learns(n_classes):
    X, y, rng = data()
    if n_classes == 3:
        y = np.digitize(np.nan_to_num(X[:, 0]), [-0.5, 0.5])
    params = dict(max_iter=25, early_stopping=False, random_state=0)
    plain = HistGradientBoostingClassifier(**params).fit(X, y)
    binned = UnweightedBins(HistGradientBoostingClassifier(**params)).fit(X, y)
    X_new = rng.normal(size=(150, X.shape[1]))
    X_new[rng.random(X_new.shape) < 0.05] = np.nan
    assert np.array_equal(plain.predict_proba(X_new), binned.predict_proba(X_new))
    assert np.array_equal(plain.decision_function(X_new), binned.decision_function(X_new))
    assert np.array_equal(plain.classes_, binned.classes_) and binned.n_iter_ == 25
    assert is_classifier(binned) and not is_regressor(binned)


def test_regressor_without_weights_is_scikit_learns():
    X, _, rng = data(seed=1)
    y = np.nan_to_num(X[:, 0]) ** 2 + rng.normal(size=len(X))
    params = dict(max_iter=25, early_stopping=False, random_state=0)
    plain = HistGradientBoostingRegressor(**params).fit(X, y)
    binned = UnweightedBins(HistGradientBoostingRegressor(**params)).fit(X, y)
    assert np.array_equal(plain.predict(X), binned.predict(X))
    staged = list(binned.staged_predict(X[:5]))
    assert len(staged) == 25 and np.allclose(staged[-1], binned.predict(X[:5]))
    assert is_regressor(clone(binned))
    assert not hasattr(binned, "predict_proba") and not hasattr(binned, "decision_function")


def test_weights_still_weigh_the_fit():
    X, y, _ = data(seed=2)
    weights = np.where(y == 1, 5.0, 1.0)
    params = dict(max_iter=30, early_stopping=False, random_state=0)
    unweighted = UnweightedBins(HistGradientBoostingClassifier(**params)).fit(X, y)
    weighted = UnweightedBins(HistGradientBoostingClassifier(**params)).fit(
        X, y, sample_weight=weights)
    # the weighted fit has the lower weighted training loss and predicts class 1 more
    assert (log_loss(y, weighted.predict_proba(X), sample_weight=weights)
            < log_loss(y, unweighted.predict_proba(X), sample_weight=weights))
    assert weighted.predict(X).mean() > unweighted.predict(X).mean()
    # the bins are the unweighted ones
    assert all(np.array_equal(a, b) for a, b in zip(weighted.bin_edges_, unweighted.bin_edges_))


def test_early_stopping_and_feature_count_checks():
    X, y, _ = data(n=600, seed=3)
    model = UnweightedBins(HistGradientBoostingClassifier(early_stopping=True, random_state=0))
    model.fit(X, y, sample_weight=np.ones(len(y)))
    assert 0 < model.n_iter_ <= 100
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(np.nan)), min_size=2,
                max_size=300),
       st.integers(2, 255))
def test_bin_numbers_keep_the_order_and_the_bin_count(values, max_bins):
    X = np.asarray(values, dtype=float)[:, None]
    model = UnweightedBins(HistGradientBoostingRegressor(max_bins=max_bins))
    model.bin_edges_ = quantile_edges(X, max_bins)
    codes = model._codes(X)[:, 0]
    present = ~np.isnan(X[:, 0])
    assert np.array_equal(np.isnan(codes), ~present)
    order = np.argsort(X[present, 0], kind="stable")
    assert np.all(np.diff(codes[present][order]) >= 0)          # monotone in x
    assert len(np.unique(codes[present])) <= max_bins
