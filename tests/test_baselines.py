"""TargetOnly / SourceOnly / Pooled and the instance-based estimators, each checked
against a plain scikit-learn fit done by hand on the rows and weights it should use."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from transferkit.baselines import Pooled, SourceOnly, TargetOnly
from transferkit.domains import stack_domains, tag_domains
from transferkit.instance_based import DiscriminativeWeights, ImportanceWeighted
from transferkit.validation import TransferKitInputError

N_S, N_T, N_LAB = 80, 40, 24


def _make(seed=0, shift=0.7):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(N_S, 3))
    Xt = rng.normal(shift, 1.0, size=(N_T, 3))
    ys = (Xs[:, 0] + 0.5 * Xs[:, 1] + rng.normal(0, 0.5, N_S) > 0).astype(int)
    yt_full = (Xt[:, 0] - 0.5 * Xt[:, 2] + rng.normal(0, 0.5, N_T) > 0.5).astype(int)
    yt = yt_full.astype(object)
    yt[N_LAB:] = None  # the last target rows are unlabelled
    return Xs, ys, Xt, yt


@pytest.fixture
def data():
    Xs, ys, Xt, yt = _make()
    X, y = stack_domains(Xs, ys, Xt, yt)
    return Xs, ys, Xt, yt, X, y


def _lr():
    return LogisticRegression(C=0.5, max_iter=5000, tol=1e-10)


def _assert_same_model(model, reference, X):
    np.testing.assert_allclose(model.estimator_.coef_, reference.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.estimator_.intercept_, reference.intercept_,
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))


# ---------------------------------------------------------------------- baselines
def test_target_only_equals_hand_fit_on_labelled_target(data):
    Xs, ys, Xt, yt, X, y = data
    model = TargetOnly(_lr()).fit(X, y)
    reference = _lr().fit(Xt[:N_LAB], yt[:N_LAB].astype(int))
    _assert_same_model(model, reference, X)
    np.testing.assert_array_equal(model.training_weights_,
                                  np.r_[np.zeros(N_S), np.ones(N_LAB), np.zeros(N_T - N_LAB)])
    np.testing.assert_allclose(model.predict_proba(Xt), reference.predict_proba(Xt), rtol=1e-6)
    np.testing.assert_allclose(model.decision_function(Xt), reference.decision_function(Xt),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(model.classes_, [0, 1])
    assert model.task_ == "classification" and model.n_features_in_ == 3


def test_target_only_default_estimator_is_balanced_logistic(data):
    Xs, ys, Xt, yt, X, y = data
    model = TargetOnly().fit(X, y)
    # the same penalised likelihood solved by L-BFGS to a tight tolerance (the
    # default solves it by Newton-CG)
    reference = LogisticRegression(class_weight="balanced", max_iter=10_000, tol=1e-12).fit(
        Xt[:N_LAB], yt[:N_LAB].astype(int))
    assert model.estimator_.solver == "newton-cg"
    np.testing.assert_allclose(model.estimator_.coef_, reference.coef_, rtol=1e-4, atol=1e-5)


def test_source_only_equals_hand_fit_on_source(data):
    Xs, ys, Xt, yt, X, y = data
    model = SourceOnly(_lr()).fit(X, y)
    _assert_same_model(model, _lr().fit(Xs, ys), X)


@pytest.mark.parametrize("target_weight", [1.0, 4.0, 0.25])
def test_pooled_equals_weighted_hand_fit(data, target_weight):
    Xs, ys, Xt, yt, X, y = data
    model = Pooled(_lr(), target_weight=target_weight).fit(X, y)
    X_lab = np.vstack([Xs, Xt[:N_LAB]])
    y_lab = np.r_[ys, yt[:N_LAB].astype(int)]
    weight = np.r_[np.ones(N_S), np.full(N_LAB, target_weight)]
    _assert_same_model(model, _lr().fit(X_lab, y_lab, sample_weight=weight), X)


def test_pooled_weight_changes_the_model(data):
    *_, X, y = data
    a = Pooled(_lr(), target_weight=1.0).fit(X, y).estimator_.coef_
    b = Pooled(_lr(), target_weight=10.0).fit(X, y).estimator_.coef_
    assert not np.allclose(a, b, rtol=1e-3)


def test_regression_task_uses_ridge_on_float_labels():
    rng = np.random.default_rng(1)
    Xs, Xt = rng.normal(size=(30, 2)), rng.normal(size=(12, 2))
    ys, yt = Xs @ [1.0, -2.0] + 0.1, Xt @ [1.5, -1.0] + 0.3
    X, y = stack_domains(Xs, ys, Xt, yt)
    model = TargetOnly().fit(X, y)
    assert model.task_ == "regression"
    ref = Ridge(alpha=1.0).fit(Xt, yt)
    np.testing.assert_allclose(model.estimator_.coef_, ref.coef_)
    assert not hasattr(model, "predict_proba")
    pooled = Pooled(LinearRegression(), target_weight=3.0).fit(X, y)
    ref = LinearRegression().fit(np.vstack([Xs, Xt]), np.r_[ys, yt],
                                 sample_weight=np.r_[np.ones(30), np.full(12, 3.0)])
    np.testing.assert_allclose(pooled.estimator_.coef_, ref.coef_)


def test_explicit_task_overrides_inference():
    X, y = stack_domains(np.arange(8.0).reshape(4, 2), [1, 2, 3, 4],
                         np.arange(6.0).reshape(3, 2), [2, 3, 4])
    assert TargetOnly(task="regression").fit(X, y).task_ == "regression"
    assert TargetOnly().fit(X, y).task_ == "classification"
    with pytest.raises(TransferKitInputError, match="task must be"):
        TargetOnly(task="ranking").fit(X, y)


def test_string_labels_and_dataframe_input():
    Xs = pd.DataFrame({"a": [0.0, 1, 2, 3, 4, 5], "b": [1.0, 0, 1, 0, 1, 0]})
    Xt = pd.DataFrame({"a": [0.5, 4.5, 1.0, 4.0], "b": [0.0, 1, 1, 0]})
    X, y = stack_domains(Xs, ["no", "no", "no", "yes", "yes", "yes"], Xt,
                         ["no", "yes", "no", "yes"])
    model = Pooled().fit(X, y)
    assert set(model.classes_) == {"no", "yes"}
    assert set(model.predict(Xt)) <= {"no", "yes"}


# ----------------------------------------------------------------- bad input
def test_plain_y_is_refused_with_hint(data):
    Xs, ys, Xt, yt, X, y = data
    for est in (TargetOnly(), SourceOnly(), Pooled(), ImportanceWeighted(),
                DiscriminativeWeights()):
        with pytest.raises(TransferKitInputError, match="stack_domains"):
            est.fit(X, y["label"].to_numpy())


def test_row_count_mismatch(data):
    *_, X, y = data
    with pytest.raises(TransferKitInputError, match="must align"):
        TargetOnly().fit(X[:-1], y)


def test_no_labelled_target_rows_for_target_only():
    X, y = stack_domains(np.zeros((4, 1)), [0, 1, 0, 1], np.ones((3, 1)))
    with pytest.raises(TransferKitInputError, match="no labelled rows to train on"):
        TargetOnly().fit(X, y)


def test_no_labelled_rows_at_all():
    X, y = stack_domains(np.zeros((4, 1)), [None] * 4, np.ones((3, 1)))
    with pytest.raises(TransferKitInputError, match="No labelled rows"):
        Pooled().fit(X, y)


def test_single_class_training_rows():
    X, y = stack_domains(np.zeros((4, 1)), [0, 1, 0, 1], np.ones((3, 1)), [1, 1, 1])
    with pytest.raises(TransferKitInputError, match="single class"):
        TargetOnly().fit(X, y)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.inf, np.nan])
def test_bad_target_weight(data, bad):
    *_, X, y = data
    for est in (Pooled(target_weight=bad), ImportanceWeighted(target_weight=bad)):
        with pytest.raises(TransferKitInputError, match="target_weight"):
            est.fit(X, y)


# ---------------------------------------------------- resample fallback
def test_resample_fallback_warns_and_is_deterministic(data):
    Xs, ys, Xt, yt, X, y = data
    est = Pooled(KNeighborsClassifier(n_neighbors=1), target_weight=5.0, random_state=3)
    with pytest.warns(UserWarning, match="sample_weight.*weighted resample"):
        model = est.fit(X, y)
    with pytest.warns(UserWarning):
        again = clone(est).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), again.predict(X))
    # Independent re-implementation of the documented resample.
    rows = np.r_[np.arange(N_S), N_S + np.arange(N_LAB)]
    w = np.r_[np.ones(N_S), np.full(N_LAB, 5.0)]
    pick = np.random.RandomState(3).choice(rows.size, size=rows.size, replace=True,
                                           p=w / w.sum())
    labels = np.r_[ys, yt[:N_LAB].astype(int)]
    reference = KNeighborsClassifier(n_neighbors=1).fit(X[rows][pick], labels[pick])
    np.testing.assert_array_equal(model.predict(X), reference.predict(X))
    other = Pooled(KNeighborsClassifier(n_neighbors=1), target_weight=5.0, random_state=4)
    with pytest.warns(UserWarning):
        other.fit(X, y)
    assert (other.predict(X) != model.predict(X)).any()


def test_equal_weights_need_no_sample_weight(data):
    *_, X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TargetOnly(KNeighborsClassifier(n_neighbors=3)).fit(X, y)


# ------------------------------------------------------------ sklearn integration
def test_pipeline_with_tagged_y(data):
    Xs, ys, Xt, yt, X, y = data
    pipe = Pipeline([("scale", StandardScaler()), ("model", TargetOnly(_lr()))]).fit(X, y)
    scaler = StandardScaler().fit(X)  # a plain transformer sees every row
    reference = _lr().fit(scaler.transform(Xt[:N_LAB]), yt[:N_LAB].astype(int))
    np.testing.assert_allclose(pipe[-1].estimator_.coef_, reference.coef_, rtol=1e-6)
    np.testing.assert_array_equal(pipe.predict(Xt), reference.predict(scaler.transform(Xt)))
    np.testing.assert_allclose(pipe.predict_proba(Xt)[:, 1],
                               reference.predict_proba(scaler.transform(Xt))[:, 1], rtol=1e-6)


def test_clone_and_get_params():
    est = Pooled(LogisticRegression(C=0.3), target_weight=2.5, task="classification",
                 random_state=7)
    params = est.get_params(deep=False)
    assert params == {"estimator": est.estimator, "target_weight": 2.5,
                      "task": "classification", "random_state": 7}
    assert est.get_params()["estimator__C"] == 0.3
    copy = clone(est)
    assert copy.target_weight == 2.5 and copy.estimator is not est.estimator
    assert copy.estimator.C == 0.3
    copy.set_params(estimator__C=9.0, target_weight=1.0)
    assert copy.estimator.C == 9.0 and est.estimator.C == 0.3
    iw = ImportanceWeighted(weighter=DiscriminativeWeights(clip=3.0), random_state=1)
    assert clone(iw).get_params()["weighter__clip"] == 3.0
    pipe = clone(make_pipeline(StandardScaler(), TargetOnly(random_state=2)))
    assert pipe.get_params()["targetonly__random_state"] == 2


def test_predict_before_fit():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        TargetOnly().predict(np.zeros((2, 2)))


def test_fit_domains_equals_fit_on_stacked(data):
    Xs, ys, Xt, yt, X, y = data
    a = Pooled(_lr(), target_weight=2.0).fit_domains(Xs, ys, Xt, yt)
    b = Pooled(_lr(), target_weight=2.0).fit(X, y)
    np.testing.assert_allclose(a.estimator_.coef_, b.estimator_.coef_)


# ------------------------------------------------------- DiscriminativeWeights
def test_discriminative_weights_formula_by_hand():
    rng = np.random.default_rng(5)
    Xs, Xt = rng.normal(0, 1, (120, 2)), rng.normal(1.5, 1, (60, 2))
    X, y = stack_domains(Xs, np.zeros(120), Xt)
    dw = DiscriminativeWeights(clip=2.0, n_splits=4, random_state=11).fit(X, y)
    is_target = np.r_[np.zeros(120, int), np.ones(60, int)]
    cv = StratifiedKFold(4, shuffle=True, random_state=11)
    p = cross_val_predict(LogisticRegression(C=1.0, max_iter=2000), X, is_target, cv=cv,
                          method="predict_proba")[:120, 1]
    raw = np.minimum(120 / 60 * p / (1 - p), 2.0)
    assert (raw == 2.0).sum() >= 5  # the clip is active on this shift
    np.testing.assert_allclose(dw.weights_[:120], raw / raw.mean(), rtol=1e-6)
    np.testing.assert_array_equal(dw.weights_[120:], 1.0)
    assert dw.weights_[:120].mean() == pytest.approx(1.0)
    # New rows: the classifier refitted on every row, same clip and normaliser.
    full = LogisticRegression(C=1.0, max_iter=2000).fit(X, is_target)
    q = full.predict_proba(Xs[:10])[:, 1]
    np.testing.assert_allclose(dw.compute_weights(Xs[:10]),
                               np.minimum(2.0 * q / (1 - q), 2.0) / raw.mean(), rtol=1e-6)


def test_discriminative_weights_recover_gaussian_density_ratio():
    """Source N(0,1), target N(1,1): p_t/p_s = exp(x - 1/2), with mean 1 under the source."""
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(0, 1, (2000, 1)), rng.normal(1, 1, (1000, 1))
    X, y = stack_domains(xs, np.zeros(2000), xt)
    w = DiscriminativeWeights(random_state=0).fit(X, y).weights_[:2000]
    true = np.exp(xs[:, 0] - 0.5)
    assert pearsonr(w, true)[0] > 0.98
    assert np.median(np.abs(w / true - 1)) < 0.1


def test_discriminative_weights_deterministic_and_calibration():
    rng = np.random.default_rng(2)
    X, y = stack_domains(rng.normal(size=(60, 2)), np.zeros(60), rng.normal(1, 1, (30, 2)))
    a = DiscriminativeWeights(random_state=0).fit(X, y).weights_
    b = DiscriminativeWeights(random_state=0).fit(X, y).weights_
    np.testing.assert_array_equal(a, b)
    cal = DiscriminativeWeights(calibration="sigmoid", random_state=0).fit(X, y)
    assert cal.weights_[:60].mean() == pytest.approx(1.0) and (cal.weights_ > 0).all()
    with pytest.raises(TransferKitInputError, match="calibration must be"):
        DiscriminativeWeights(calibration="platt").fit(X, y)
    with pytest.raises(TransferKitInputError, match="clip"):
        DiscriminativeWeights(clip=0).fit(X, y)


def test_discriminative_weights_need_two_rows_per_domain():
    X, y = stack_domains(np.zeros((5, 1)), np.zeros(5), np.ones((1, 1)))
    with pytest.raises(TransferKitInputError, match="at least 2 source and 2 target"):
        DiscriminativeWeights().fit(X, y)


# -------------------------------------------------------- ImportanceWeighted
class ConstantWeighter(BaseEstimator):
    def __init__(self, value=1.0):
        self.value = value

    def fit(self, X, y):
        self.seen_ = tag_domains(y["label"], y["domain"], y["is_target"])
        self.weights_ = np.full(len(X), self.value)
        return self


def test_importance_weighted_constant_weights_equal_pooled(data):
    *_, X, y = data
    iw = ImportanceWeighted(_lr(), weighter=ConstantWeighter(), target_weight=3.0).fit(X, y)
    pooled = Pooled(_lr(), target_weight=3.0).fit(X, y)
    _assert_same_model(iw, pooled.estimator_, X)
    np.testing.assert_array_equal(iw.training_weights_, pooled.training_weights_)
    # the weighter saw every row, unlabelled target rows included
    assert len(iw.weighter_.seen_) == len(X)


def test_importance_weighted_equals_hand_weighted_fit(data):
    Xs, ys, Xt, yt, X, y = data
    iw = ImportanceWeighted(_lr(), target_weight=2.0, flattening=1.0,
                            random_state=0).fit(X, y)
    weights = DiscriminativeWeights(random_state=0).fit(X, y).weights_
    np.testing.assert_allclose(iw.weighter_.weights_, weights)
    X_lab = np.vstack([Xs, Xt[:N_LAB]])
    y_lab = np.r_[ys, yt[:N_LAB].astype(int)]
    reference = _lr().fit(X_lab, y_lab, sample_weight=np.r_[weights[:N_S], np.full(N_LAB, 2.0)])
    _assert_same_model(iw, reference, X)
    assert (iw.training_weights_[N_S + N_LAB:] == 0).all()


def test_importance_weighted_unlabelled_target():
    Xs, ys, Xt, _ = _make(seed=3)
    iw = ImportanceWeighted(random_state=0).fit_domains(Xs, ys, Xt)
    # only source rows train the model; target rows only shape the weights
    assert (iw.training_weights_[:N_S] > 0).all() and (iw.training_weights_[N_S:] == 0).all()
    assert iw.predict(Xt).shape == (N_T,)
