"""Tests of transferkit.feature_based (CORAL, SubspaceAlignment, TCA, JDA)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.covariance import OAS, LedoitWolf
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from transferkit.autopilot.registry import TaskInfo, get_strategy
from transferkit.domains import stack_domains
from transferkit.feature_based import CORAL, JDA, TCA, SubspaceAlignment
from transferkit.feature_based._moments import centred_row_norms, mean_and_scatter
from transferkit.validation import TransferKitInputError

import transferkit.autopilot._register_feature  # noqa: F401  (registers the strategies)


# ---------------------------------------------------------------- helpers
def shifted_task(n_s=120, n_t=80, d=4, n_classes=2, seed=0, label_target=False):
    """Classes = Gaussian blobs; the target is rotated, scaled and shifted."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 2.0, (n_classes, d))

    def draw(m):
        labels = rng.integers(0, n_classes, m)
        return rng.normal(size=(m, d)) + means[labels], labels

    Xs, ys = draw(n_s)
    Xt, yt = draw(n_t)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    Xt = Xt @ (0.6 * np.eye(d) + 0.5 * Q) + 1.0
    X, y = stack_domains(Xs, ys, Xt, yt if label_target else None)
    return X, y, ys, yt


def gaussian_gram(A, B, sigma):
    return np.exp(-cdist(A, B, "sqeuclidean") / (2 * sigma**2))


def naive_pencil(K, M, mu, k):
    """Leading eigenpairs of (K M K + mu I)^-1 K H K with the paper's dense matrices."""
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    vals, vecs = np.linalg.eig(np.linalg.inv(K @ M @ K + mu * np.eye(n)) @ K @ H @ K)
    order = np.argsort(-vals.real)[:k]
    vals, W = vals.real[order], vecs.real[:, order]
    W = W * np.sqrt(n / np.einsum("ij,ij->j", W, K @ H @ K @ W))  # w^T KHK w = n
    Z = K @ W
    return vals, W, Z.mean(axis=0), Z - Z.mean(axis=0)


def tca_matrix(is_target):
    n_s, n_t = int((~is_target).sum()), int(is_target.sum())
    L = np.empty((is_target.size, is_target.size))
    for i, ti in enumerate(is_target):
        for j, tj in enumerate(is_target):
            if not ti and not tj:
                L[i, j] = 1.0 / n_s**2
            elif ti and tj:
                L[i, j] = 1.0 / n_t**2
            else:
                L[i, j] = -1.0 / (n_s * n_t)
    return L


def jda_class_matrix(labels, is_source_labelled, is_target, c):
    """The paper's M_c, entry by entry (eq. 6 of Long et al. 2013)."""
    src = is_source_labelled & (labels == c)
    tgt = is_target & (labels == c)
    n_s, n_t = src.sum(), tgt.sum()
    n = labels.size
    M = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if src[i] and src[j]:
                M[i, j] = 1.0 / n_s**2
            elif tgt[i] and tgt[j]:
                M[i, j] = 1.0 / n_t**2
            elif (src[i] and tgt[j]) or (tgt[i] and src[j]):
                M[i, j] = -1.0 / (n_s * n_t)
    return M


def align_signs(Z, ref):
    signs = np.sign(np.sum(Z * ref, axis=0))
    return Z * signs


class FixedLabels(ClassifierMixin, BaseEstimator):
    """Test pseudo-labeller: predicts the given labels, in order, whatever X is."""

    def __init__(self, labels=None):
        self.labels = labels

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.asarray(self.labels)[: len(X)]


def target_accuracy(Z, ys, yt, n_s):
    clf = LogisticRegression(max_iter=2000).fit(Z[:n_s], ys)
    return float(np.mean(clf.predict(Z[n_s:]) == yt))


# ------------------------------------------------------------------ moments
@pytest.mark.parametrize("constant", [False, True])
@pytest.mark.parametrize("offset", [0.0, 3.0, 1e3, 1e8])
def test_mean_and_scatter_match_the_centred_formula(offset, constant):
    """X'X - n mu mu' when the means are small against the spread (offsets 0 and 3,
    no constant feature), else the centred rows: the same numbers either way."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 6)) * [1.0, 2.0, 0.5, 1.0, 3.0, 1.0] + offset
    if constant:
        X[:, 3] = offset + 1.0
    mean, S = mean_and_scatter(X)
    Xc = X - X.mean(axis=0)
    np.testing.assert_allclose(mean, X.mean(axis=0))
    np.testing.assert_allclose(S, Xc.T @ Xc, atol=1e-9 * np.abs(Xc.T @ Xc).max())
    if constant:  # no spread from cancellation
        assert np.all(np.abs(S[3]) <= 1e-9 * np.abs(S).max())
    np.testing.assert_allclose(centred_row_norms(X, mean, S), (Xc**2).sum(axis=1),
                               rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------ CORAL
@pytest.mark.parametrize("shrinkage, reference", [
    ("ledoit_wolf", LedoitWolf), ("oas", OAS), (None, None)])
def test_coral_matches_sqrtm_reference(shrinkage, reference):
    X, y, _, _ = shifted_task(n_s=60, n_t=40, d=5)
    Xs, Xt = X[:60], X[60:]
    coral = CORAL(shrinkage=shrinkage)
    Z = coral.fit_transform(X, y)
    if reference is None:
        Cs, Ct = np.cov(Xs.T, bias=True), np.cov(Xt.T, bias=True)
    else:
        Cs, Ct = reference().fit(Xs).covariance_, reference().fit(Xt).covariance_
    np.testing.assert_allclose(coral.source_covariance_, Cs, atol=1e-10)
    np.testing.assert_allclose(coral.target_covariance_, Ct, atol=1e-10)
    A = np.linalg.inv(scipy.linalg.sqrtm(Cs).real) @ scipy.linalg.sqrtm(Ct).real
    naive = (Xs - Xs.mean(0)) @ A + Xt.mean(0)
    np.testing.assert_allclose(Z[:60], naive, atol=1e-8)
    np.testing.assert_array_equal(Z[60:], Xt)
    # closed form: the map carries the (shrunk) source covariance onto the target's
    T = coral.transform_matrix_
    np.testing.assert_allclose(T.T @ coral.source_covariance_ @ T, coral.target_covariance_,
                               atol=1e-8)
    np.testing.assert_array_equal(coral.transform(Xt), Xt)


def test_coral_empirical_covariances_match_after_transform():
    X, y, _, _ = shifted_task(n_s=80, n_t=50, d=4)
    Z = CORAL(shrinkage=None).fit_transform(X, y)
    np.testing.assert_allclose(np.cov(Z[:80].T, bias=True), np.cov(X[80:].T, bias=True),
                               atol=1e-8)
    np.testing.assert_allclose(Z[:80].mean(0), X[80:].mean(0), atol=1e-10)


def test_coral_paper_estimator_without_mean_alignment():
    X, y, _, _ = shifted_task(n_s=50, n_t=30, d=3)
    Xs, Xt = X[:50], X[50:]
    Z = CORAL(shrinkage=None, reg=1.0, align_means=False).fit_transform(X, y)
    Cs = np.cov(Xs.T, bias=True) + np.eye(3)
    Ct = np.cov(Xt.T, bias=True) + np.eye(3)
    A = np.linalg.inv(scipy.linalg.sqrtm(Cs).real) @ scipy.linalg.sqrtm(Ct).real
    np.testing.assert_allclose(Z[:50], Xs @ A, atol=1e-8)


def test_coral_bad_parameters_and_tiny_domains():
    X, y, _, _ = shifted_task()
    with pytest.raises(TransferKitInputError, match="shrinkage"):
        CORAL(shrinkage="lw").fit(X, y)
    with pytest.raises(TransferKitInputError, match="reg"):
        CORAL(reg=-1.0).fit(X, y)
    X1, y1 = stack_domains(np.ones((5, 2)) * np.arange(5)[:, None], np.zeros(5),
                           np.ones((1, 2)))
    with pytest.raises(TransferKitInputError, match="at least 2 target rows"):
        CORAL().fit(X1, y1)


# ---------------------------------------------------------- SubspaceAlignment
def test_subspace_alignment_matches_pca_reference():
    X, y, _, _ = shifted_task(n_s=70, n_t=50, d=6)
    Xs, Xt = X[:70], X[70:]
    k = 3
    sa = SubspaceAlignment(n_components=k)
    Z = sa.fit_transform(X, y)
    Ps = PCA(k, svd_solver="full").fit(Xs).components_.T
    Pt = PCA(k, svd_solver="full").fit(Xt).components_.T
    M = Ps.T @ Pt
    naive_s = (Xs - Xs.mean(0)) @ Ps @ M
    naive_t = (Xt - Xt.mean(0)) @ Pt
    signs = np.sign(np.sum(Z[70:] * naive_t, axis=0))  # target directions' signs
    np.testing.assert_allclose(Z[70:], naive_t * signs, atol=1e-8)
    np.testing.assert_allclose(Z[:70], naive_s * signs, atol=1e-8)
    np.testing.assert_allclose(sa.transform(Xt), Z[70:], atol=1e-12)
    np.testing.assert_allclose(np.abs(sa.alignment_matrix_), np.abs(M), atol=1e-8)


def test_subspace_alignment_default_dimension_and_errors():
    X, y, _, _ = shifted_task(n_s=70, n_t=50, d=6)
    sa = SubspaceAlignment().fit(X, y)
    var = PCA().fit(X[70:]).explained_variance_ratio_
    assert sa.n_components_ == int(np.searchsorted(np.cumsum(var), 0.9 - 1e-12) + 1)
    for share in (0.5, 0.99, 1.0):
        k = SubspaceAlignment(variance_kept=share).fit(X, y).n_components_
        assert k == min(int(np.searchsorted(np.cumsum(var), share - 1e-12) + 1), 6)
    for bad in (0.0, 1.5, np.nan, "most", True):
        with pytest.raises(TransferKitInputError, match="variance_kept must be a number"):
            SubspaceAlignment(variance_kept=bad).fit(X, y)
    with pytest.raises(TransferKitInputError, match="exceeds the rank"):
        SubspaceAlignment(n_components=7).fit(X, y)
    with pytest.raises(TransferKitInputError, match="n_components"):
        SubspaceAlignment(n_components=0).fit(X, y)


@pytest.mark.parametrize("make", [lambda: CORAL(), lambda: SubspaceAlignment(n_components=3)])
def test_interleaved_domains_map_like_stacked_ones(make):
    # stacked rows are read as views, interleaved ones by index: the same maps
    X, y, _, _ = shifted_task(n_s=70, n_t=50, d=6)
    order = np.random.default_rng(0).permutation(len(X))
    Z = make().fit_transform(X, y)
    Z_shuffled = make().fit_transform(X[order], y.iloc[order].reset_index(drop=True))
    np.testing.assert_allclose(Z_shuffled, Z[order], rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------- TCA
@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
def test_tca_exact_matches_naive_formula(kernel):
    X, y, _, _ = shifted_task(n_s=40, n_t=30, d=3)
    is_target = y["is_target"].to_numpy()
    mu, k = 0.5, 3
    tca = TCA(n_components=k, kernel=kernel, mu=mu, method="exact", random_state=0)
    Z = tca.fit_transform(X, y)
    if kernel == "linear":
        K = X @ X.T
    else:
        K = gaussian_gram(X, X, tca.bandwidth_)
    vals, W, offset, Zn = naive_pencil(K, tca_matrix(is_target), mu, k)
    np.testing.assert_allclose(tca.eigenvalues_, vals, rtol=1e-7)
    np.testing.assert_allclose(Z, align_signs(Zn, Z), atol=1e-6)
    # out-of-sample rule K(new, train) W
    X_new = np.random.default_rng(1).normal(size=(7, 3))
    K_new = X_new @ X.T if kernel == "linear" else gaussian_gram(X_new, X, tca.bandwidth_)
    naive_new = K_new @ W - offset
    signs = np.sign(np.sum(Zn * Z, axis=0))
    np.testing.assert_allclose(tca.transform(X_new), naive_new * signs, atol=1e-6)
    np.testing.assert_allclose(tca.transform(X), Z, atol=1e-8)  # same map for all rows
    np.testing.assert_allclose(Z.var(axis=0), 1.0)


def test_tca_nystroem_with_all_rows_as_landmarks_equals_exact():
    X, y, _, _ = shifted_task(n_s=50, n_t=40, d=3)
    exact = TCA(n_components=4, method="exact", random_state=0)
    nys = TCA(n_components=4, method="nystroem", n_landmarks=90, random_state=0)
    Ze, Zn = exact.fit_transform(X, y), nys.fit_transform(X, y)
    assert nys.method_ == "nystroem" and exact.method_ == "exact"
    np.testing.assert_allclose(nys.eigenvalues_, exact.eigenvalues_, rtol=1e-6)
    angles = scipy.linalg.subspace_angles(Ze, Zn)
    assert np.max(angles) < 1e-6
    np.testing.assert_allclose(Zn, align_signs(Ze, Zn), atol=1e-5)
    X_new = np.random.default_rng(2).normal(size=(6, 3))
    np.testing.assert_allclose(nys.transform(X_new),
                               align_signs(exact.transform(X_new), nys.transform(X_new)),
                               atol=1e-5)


def test_tca_nystroem_with_few_landmarks_is_close():
    """400 + 400 rows, 100 landmarks: target accuracy within 2 points of exact and
    leading eigenvalues within 5%."""
    X, y, ys, yt = shifted_task(n_s=400, n_t=400, d=5, n_classes=3, seed=3)
    exact = TCA(n_components=10, method="exact", random_state=0)
    nys = TCA(n_components=10, method="nystroem", n_landmarks=100, random_state=0)
    Ze, Zn = exact.fit_transform(X, y), nys.fit_transform(X, y)
    acc_e, acc_n = target_accuracy(Ze, ys, yt, 400), target_accuracy(Zn, ys, yt, 400)
    assert abs(acc_e - acc_n) <= 0.02, (acc_e, acc_n)
    np.testing.assert_allclose(nys.eigenvalues_[:2], exact.eigenvalues_[:2], rtol=0.05)


def test_tca_auto_switch_and_determinism():
    X, y, _, _ = shifted_task(n_s=700, n_t=400, d=3)
    a = TCA(n_components=3, n_landmarks=50, random_state=4)
    Za = a.fit_transform(X, y)
    assert a.method_ == "nystroem" and a.basis_.shape == (50, 3)
    Zb = TCA(n_components=3, n_landmarks=50, random_state=4).fit_transform(X, y)
    np.testing.assert_array_equal(Za, Zb)
    small = TCA(n_components=3).fit(X[:100], y.iloc[:100].reset_index(drop=True)
                                    .assign(is_target=[False] * 60 + [True] * 40))
    assert small.method_ == "exact"


def test_tca_accepts_dataframes_and_fit_domains():
    X, y, _, _ = shifted_task(n_s=30, n_t=20, d=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    Z1 = TCA(n_components=2, random_state=0).fit_transform(frame, y)
    Z2 = TCA(n_components=2, random_state=0).fit_transform(X, y)
    np.testing.assert_allclose(Z1, Z2)
    tca = TCA(n_components=2, random_state=0).fit_domains(X[:30], y["label"][:30], X[30:])
    np.testing.assert_allclose(tca.transform(X), Z2, atol=1e-8)


# -------------------------------------------------------------------- JDA
def test_jda_one_iteration_matches_naive_formula_with_fixed_pseudo_labels():
    X, y, ys, yt = shifted_task(n_s=36, n_t=24, d=3, n_classes=3, seed=5)
    is_target = y["is_target"].to_numpy()
    pseudo = np.roll(yt, 1)  # deliberately not the true labels
    pseudo[:3] = [0, 1, 2]
    mu, k = 0.7, 4
    jda = JDA(n_components=k, mu=mu, n_iter=1, classifier=FixedLabels(pseudo),
              method="exact", random_state=0)
    Z = jda.fit_transform(X, y)
    assert jda.n_iter_ == 1
    np.testing.assert_array_equal(jda.pseudo_labels_, pseudo)
    labels = np.concatenate([ys, pseudo])
    M = tca_matrix(is_target)
    for c in range(3):
        M += jda_class_matrix(labels, ~is_target, is_target, c)
    K = gaussian_gram(X, X, jda.bandwidth_)
    vals, W, offset, Zn = naive_pencil(K, M, mu, k)
    np.testing.assert_allclose(jda.eigenvalues_, vals, rtol=1e-7)
    np.testing.assert_allclose(Z, align_signs(Zn, Z), atol=1e-6)


def test_jda_labelled_target_rows_use_their_labels():
    X, y, ys, yt = shifted_task(n_s=30, n_t=20, d=3, seed=6, label_target=True)
    is_target = y["is_target"].to_numpy()
    jda = JDA(n_components=3, n_iter=5, method="exact", random_state=0)
    Z = jda.fit_transform(X, y)
    assert jda.n_iter_ == 0 and jda.pseudo_labels_.size == 0
    M = tca_matrix(is_target)
    labels = np.concatenate([ys, yt])
    for c in range(2):
        M += jda_class_matrix(labels, ~is_target, is_target, c)
    vals, _, _, Zn = naive_pencil(gaussian_gram(X, X, jda.bandwidth_), M, 1.0, 3)
    np.testing.assert_allclose(jda.eigenvalues_, vals, rtol=1e-7)
    np.testing.assert_allclose(Z, align_signs(Zn, Z), atol=1e-6)


def test_jda_nystroem_all_landmarks_equals_exact_and_is_deterministic():
    X, y, _, _ = shifted_task(n_s=50, n_t=40, d=3, seed=7)
    exact = JDA(n_components=3, n_iter=2, method="exact", random_state=0)
    nys = JDA(n_components=3, n_iter=2, method="nystroem", n_landmarks=90, random_state=0)
    Ze, Zn = exact.fit_transform(X, y), nys.fit_transform(X, y)
    np.testing.assert_array_equal(exact.pseudo_labels_, nys.pseudo_labels_)
    np.testing.assert_allclose(nys.eigenvalues_, exact.eigenvalues_, rtol=1e-6)
    assert np.max(scipy.linalg.subspace_angles(Ze, Zn)) < 1e-6
    few = [JDA(n_components=3, n_landmarks=30, method="nystroem", random_state=1)
           .fit_transform(X, y) for _ in range(2)]
    np.testing.assert_array_equal(few[0], few[1])


def test_jda_rejects_regression_and_single_class():
    rng = np.random.default_rng(0)
    X, y = stack_domains(rng.normal(size=(30, 2)), rng.normal(size=30),
                         rng.normal(size=(10, 2)))
    with pytest.raises(TransferKitInputError, match="classification"):
        JDA().fit(X, y)
    with pytest.raises(TransferKitInputError, match="classification"):
        JDA(task="regression").fit(X, y)
    X, y = stack_domains(rng.normal(size=(30, 2)), np.zeros(30), rng.normal(size=(10, 2)))
    with pytest.raises(TransferKitInputError, match="two classes"):
        JDA().fit(X, y)
    X, y = stack_domains(rng.normal(size=(30, 2)), None, rng.normal(size=(10, 2)),
                         np.tile([0, 1], 5))
    with pytest.raises(TransferKitInputError, match="labelled source"):
        JDA().fit(X, y)


# ------------------------------------------------------- shared contract
ADAPTERS = [
    lambda: CORAL(),
    lambda: SubspaceAlignment(n_components=2),
    lambda: TCA(n_components=2, random_state=0),
    lambda: TCA(n_components=2, method="nystroem", n_landmarks=20, random_state=0),
    lambda: JDA(n_components=2, n_iter=2, random_state=0),
]


@pytest.mark.parametrize("make", ADAPTERS)
def test_contract_shapes_determinism_and_bad_input(make):
    X, y, _, _ = shifted_task(n_s=40, n_t=30, d=3)
    Z1 = make().fit_transform(X, y)
    est = make().fit(X, y)
    assert Z1.shape[0] == 70 and np.all(np.isfinite(Z1))
    np.testing.assert_allclose(make().fit_transform(X, y), Z1)
    out = est.transform(X[40:])
    assert out.shape == (30, Z1.shape[1])
    with pytest.raises(TransferKitInputError, match="features"):
        est.transform(X[:, :2])
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(TransferKitInputError, match="NaN"):
        make().fit(bad, y)
    with pytest.raises(TransferKitInputError, match="tagged"):
        make().fit(X, y["label"].to_numpy())
    with pytest.raises(TransferKitInputError, match="No target rows"):
        make().fit(X, y.assign(is_target=False))
    with pytest.raises(TransferKitInputError, match="rows"):
        make().fit(X[:10], y)


@pytest.mark.parametrize("params, match", [
    ({"mu": 0.0}, "mu"), ({"method": "fast"}, "method"), ({"kernel": "rbf"}, "kernel"),
    ({"n_components": 0}, "n_components"), ({"n_landmarks": 0}, "n_landmarks"),
    ({"bandwidth": -1.0}, "bandwidth"), ({"bandwidth": "scott"}, "bandwidth")])
def test_tca_bad_parameters(params, match):
    X, y, _, _ = shifted_task(n_s=20, n_t=10, d=2)
    with pytest.raises(TransferKitInputError, match=match):
        TCA(**params).fit(X, y)
    with pytest.raises(TransferKitInputError, match=match):
        JDA(**params).fit(X, y)


# --------------------------------------------------------------- autopilot
@pytest.mark.parametrize("name", ["coral", "subspace_alignment", "tca", "jda"])
def test_registered_strategies_fit_and_predict(name):
    X, y, _, yt = shifted_task(n_s=80, n_t=40, d=3, label_target=True)
    y.loc[100:, "label"] = np.nan  # half of the target unlabelled
    task = TaskInfo("classification", 80, 1, 20, 20, 3, (0, 1))
    model = get_strategy(name).build(task, 0).fit(X, y)
    pred = model.predict(X[80:])
    assert pred.shape == (40,) and set(pred) <= {0, 1}
    assert np.mean(pred == yt) > 0.6  # chance is 0.5


def test_jda_strategy_is_classification_only():
    regression = TaskInfo("regression", 80, 1, 20, 20, 3)
    assert not get_strategy("jda").applies(regression)
    assert get_strategy("tca").applies(regression)


def test_large_exact_pencil_uses_lanczos_and_matches_lapack(monkeypatch):
    from transferkit.feature_based import tca as tca_module

    rng = np.random.default_rng(0)
    B = rng.normal(size=(1510, 30))
    A = B @ B.T + np.diag(rng.random(1510))
    BT = rng.normal(size=(1510, 3))
    lam, G = tca_module.solve_pencil(A, BT, 0.5, 5, 1510)  # Lanczos (r > 1500)
    monkeypatch.setattr(tca_module, "_DENSE_MAX", 10**9)
    ref_lam, ref_G = tca_module.solve_pencil(A, BT, 0.5, 5, 1510)  # LAPACK
    np.testing.assert_allclose(lam, ref_lam, rtol=1e-10)
    np.testing.assert_allclose(align_signs(G, ref_G), ref_G, rtol=1e-7, atol=1e-10)
