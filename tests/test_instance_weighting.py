"""KMM, KLIEP, uLSIF/RuLSIF, nearest-neighbour weights and instance selection.

Each method is checked against an independent reference on small inputs: a
generic QP solver (KMM), a generic constrained solver and the paper's update
rule stepped by hand (KLIEP), a
direct linear solve and brute-force leave-one-out (uLSIF/RuLSIF), a
brute-force nearest-neighbour count, and a hand fit on the selected rows;
plus known-ratio Gaussian shifts and the shared weighter contract.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, pearsonr
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from transferkit.domains import stack_domains
from transferkit.instance_based import (
    KLIEP,
    KMM,
    ULSIF,
    DiscriminativeWeights,
    ImportanceWeighted,
    InstanceSelection,
    NearestNeighbourWeights,
    RuLSIF,
)
from transferkit.instance_based._kliep_solver import (
    kliep_gap,
    kliep_solve,
    scaled_problem,
    solve_scaled,
)
from transferkit.instance_based.density_ratio import lsif_loo_scores
from transferkit.instance_based.kmm import _prox_box_sum, kmm_objective, project_box_sum
from transferkit.shift.kernels import kernel_matrix
from transferkit.validation import TransferKitInputError


def _gauss_matrix(A, C, sigma):
    """Naive Gaussian kernel matrix, entry by entry."""
    K = np.empty((len(A), len(C)))
    for i, a in enumerate(A):
        for j, c in enumerate(C):
            K[i, j] = np.exp(-np.sum((a - c) ** 2) / (2 * sigma**2))
    return K


def _shift_data(n_s=60, n_t=40, d=3, seed=0, shift=0.7):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n_s, d))
    Xt = rng.normal(shift, 1.0, size=(n_t, d))
    return Xs, Xt


def _gaussian_1d(n_s=400, n_t=300, seed=0, mu_t=0.5, sd_t=0.7):
    """Source N(0, 1), target N(mu_t, sd_t^2): the true ratio is known."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(0.0, 1.0, n_s)
    xt = rng.normal(mu_t, sd_t, n_t)
    X, y = stack_domains(xs[:, None], np.zeros(n_s), xt[:, None])
    p_s, p_t = norm.pdf(xs, 0, 1), norm.pdf(xs, mu_t, sd_t)
    return X, y, p_s, p_t


# ============================================================== KMM
def _cvxopt_kmm(K, kappa, B, eps):
    cvxopt = pytest.importorskip("cvxopt")
    n = len(kappa)
    G = np.vstack([np.ones((1, n)), -np.ones((1, n)), np.eye(n), -np.eye(n)])
    h = np.hstack([n * (1 + eps), -n * (1 - eps), B * np.ones(n), np.zeros(n)])
    opts = {"show_progress": False, "abstol": 1e-12, "reltol": 1e-12, "feastol": 1e-12}
    sol = cvxopt.solvers.qp(cvxopt.matrix(K), cvxopt.matrix(-kappa), cvxopt.matrix(G),
                            cvxopt.matrix(h), options=opts)
    return np.array(sol["x"]).ravel()


@pytest.mark.parametrize("B, eps, seed", [(1000.0, None, 0), (3.0, 0.1, 1), (5.0, None, 2),
                                          (2.0, 0.05, 3)])
def test_kmm_exact_equals_generic_qp_solver(B, eps, seed):
    Xs, Xt = _shift_data(30, 20, seed=seed)
    X, y = stack_domains(Xs, np.zeros(30), Xt)
    sigma = 1.0
    kmm = KMM(bandwidth=sigma, B=B, eps=eps, solver="exact").fit(X, y)
    K = _gauss_matrix(Xs, Xs, sigma)
    kappa = 30 / 20 * _gauss_matrix(Xs, Xt, sigma).sum(axis=1)
    e = (np.sqrt(30) - 1) / np.sqrt(30) if eps is None else eps
    reference = _cvxopt_kmm(K, kappa, B, e)
    np.testing.assert_allclose(kmm.beta_, reference, atol=1e-5)
    assert kmm.objective_ <= kmm_objective(reference, K, kappa) + 1e-9
    np.testing.assert_allclose(kmm.weights_[:30], kmm.beta_ / kmm.beta_.mean())
    np.testing.assert_array_equal(kmm.weights_[30:], 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_projection_matches_bisection_reference(seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(1.0, 2.0, 50)
    upper = 3.0
    for low, high in [(10.0, 20.0), (60.0, 80.0), (0.0, 5.0), (40.0, 45.0)]:
        b, _ = project_box_sum(v, upper, low, high)
        # reference: bisection on tau, to machine precision
        total = np.clip(v, 0, upper).sum()
        if low <= total <= high:
            ref = np.clip(v, 0, upper)
        else:
            target = high if total > high else low
            lo, hi = v.min() - upper, v.max()
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if np.clip(v - mid, 0, upper).sum() > target else (lo, mid)
            ref = np.clip(v - 0.5 * (lo + hi), 0, upper)
        np.testing.assert_allclose(b, ref, atol=1e-10)
        assert low - 1e-9 <= b.sum() <= high + 1e-9


@pytest.mark.parametrize("upper", [4.0, 100.0])  # 100: the upper bound cannot bind
@pytest.mark.parametrize("low, high", [(0.0, 1e9), (30.0, 35.0), (70.0, 90.0)])
def test_penalised_prox_equals_generic_qp_solver(low, high, upper):
    """The prox used by the Nystroem path: min 1/2 |b - z|^2 + rho/2 (sum b)^2 over the
    box and the sum band, against cvxopt."""
    cvxopt = pytest.importorskip("cvxopt")
    rng = np.random.default_rng(0)
    z = rng.normal(2.0, 2.0, 40)
    rho = 0.02
    b, _ = _prox_box_sum(z, upper, low, high, rho, 0.0)
    n = len(z)
    P = np.eye(n) + rho * np.ones((n, n))
    G = np.vstack([np.ones((1, n)), -np.ones((1, n)), np.eye(n), -np.eye(n)])
    h = np.hstack([high, -low, upper * np.ones(n), np.zeros(n)])
    opts = {"show_progress": False, "abstol": 1e-12, "reltol": 1e-12, "feastol": 1e-12}
    sol = cvxopt.solvers.qp(cvxopt.matrix(P), cvxopt.matrix(-z), cvxopt.matrix(G),
                            cvxopt.matrix(h), options=opts)
    np.testing.assert_allclose(b, np.array(sol["x"]).ravel(), atol=1e-6)


def test_subsampled_model_selection_paths_are_deterministic():
    Xs, Xt = _shift_data(150, 120, d=2, seed=5)
    X, y = stack_domains(Xs, np.zeros(150), Xt)
    for make in (lambda: KLIEP(max_target_samples=50, n_folds=3, random_state=1),
                 lambda: ULSIF(max_loo_pairs=30, random_state=1)):
        first, second = make().fit(X, y), make().fit(X, y)
        np.testing.assert_array_equal(first.weights_, second.weights_)
        assert first.weights_[:150].mean() == pytest.approx(1.0)


def _classification_shift(n_s, n_t, seed):
    """Covariate shift where the source's decision boundary misleads: labels from a
    non-linear rule, target concentrated in one region."""
    rng = np.random.default_rng(seed)
    Xs = rng.normal(0, 1.0, size=(n_s, 2))
    Xt = rng.normal([1.0, 0.5], 0.6, size=(n_t, 2))

    def label(Z):
        return (Z[:, 1] > 0.5 * Z[:, 0] ** 2 - 0.6 + 0.3 * rng.normal(size=len(Z))).astype(int)

    return Xs, label(Xs), Xt, label(Xt)


def test_kmm_nystroem_close_to_exact_objective_and_accuracy():
    """The scalable path (default 200 components): the exact objective at the Nystroem
    solution is within 0.1% of the exact optimum (observed: 2e-5), and downstream target
    accuracy within 1 point (KMM lifts it from 0.74 unweighted to about 0.90 here)."""
    Xs, ys, Xt, yt = _classification_shift(600, 400, seed=0)
    X, y = stack_domains(Xs, ys, Xt)
    sigma = 1.0
    exact = KMM(bandwidth=sigma, solver="exact").fit(X, y)
    approx = KMM(bandwidth=sigma, solver="nystroem", random_state=0).fit(X, y)
    K = kernel_matrix(Xs, bandwidth=sigma)
    kappa = 600 / 400 * kernel_matrix(Xs, Xt, bandwidth=sigma).sum(axis=1)
    opt = kmm_objective(exact.beta_, K, kappa)
    at_approx = kmm_objective(approx.beta_, K, kappa)
    assert opt <= at_approx
    assert (at_approx - opt) <= 1e-3 * abs(opt)
    accuracies = []
    for weighter in (exact, approx):
        model = LogisticRegression().fit(Xs, ys, sample_weight=weighter.weights_[:600])
        accuracies.append(np.mean(model.predict(Xt) == yt))
    assert abs(accuracies[0] - accuracies[1]) <= 0.01
    unweighted = np.mean(LogisticRegression().fit(Xs, ys).predict(Xt) == yt)
    assert accuracies[0] > unweighted + 0.1


def test_kmm_auto_solver_choice_and_transductive():
    Xs, Xt = _shift_data(50, 30)
    X, y = stack_domains(Xs, np.zeros(50), Xt)
    assert KMM().fit(X, y).solver_ == "exact"
    kmm = KMM(exact_max_samples=20, n_components=30, random_state=0).fit(X, y)
    assert kmm.solver_ == "nystroem"
    with pytest.raises(NotImplementedError, match="transductive"):
        kmm.compute_weights(Xt)


def test_kmm_infeasible_constraints_error():
    Xs, Xt = _shift_data(30, 20)
    X, y = stack_domains(Xs, np.zeros(30), Xt)
    with pytest.raises(TransferKitInputError, match="Infeasible"):
        KMM(B=0.5, eps=0.1).fit(X, y)


# ============================================================== KLIEP
def _naive_kliep(Xt, Xs, centres, sigma, step_sizes, max_iter):
    """The paper's algorithm (Sugiyama et al. 2008, Fig. 2), written out literally with
    the un-normalised gradient A^T (1 / A alpha) and step eps / n_t."""
    A = _gauss_matrix(Xt, centres, sigma)
    b = _gauss_matrix(Xs, centres, sigma).mean(axis=0)
    n_t = len(Xt)
    alpha = np.ones(len(centres)) / (b @ np.ones(len(centres)))

    def score(a):
        return np.mean(np.log(A @ a))

    current = score(alpha)
    for eps in step_sizes:
        for _ in range(max_iter):
            new = alpha + (eps / n_t) * (A.T @ (1.0 / (A @ alpha)))
            new = new + (1 - b @ new) * b / (b @ b)
            new = np.maximum(0, new)
            new = new / (b @ new)
            if not score(new) > current:
                break
            alpha, current = new, score(new)
    return alpha


def _kliep_mean_loglik(Xt, centres, sigma, theta):
    return np.mean(np.log(_gauss_matrix(Xt, centres, sigma) @ theta))


def _slsqp_kliep(A, b):
    """KLIEP's problem handed to a generic constrained solver (scipy's SLSQP)."""
    from scipy.optimize import minimize

    # fitted values clipped at 1e-300, as KLIEP does (rows that underflow stay finite)
    result = minimize(lambda t: -np.mean(np.log(np.maximum(A @ t, 1e-300))),
                      np.ones(len(b)) / b.sum(),
                      jac=lambda t: -A.T @ (1.0 / np.maximum(A @ t, 1e-300)) / len(A),
                      method="SLSQP",
                      bounds=[(0, None)] * len(b),
                      constraints=[{"type": "eq", "fun": lambda t: b @ t - 1, "jac": lambda t: b}],
                      options={"ftol": 1e-14, "maxiter": 2000})
    assert result.success, result.message
    return result.x


@pytest.mark.parametrize("sigma", [0.3, 1.3, 6.0])
def test_kliep_reaches_the_optimum_of_a_generic_solver_and_beats_the_paper_steps(sigma):
    Xs, Xt = _shift_data(50, 30, d=2)
    X, y = stack_domains(Xs, np.zeros(50), Xt)
    kliep = KLIEP(bandwidth=sigma, n_centres=10, tol=1e-9, random_state=0).fit(X, y)
    A = _gauss_matrix(Xt, kliep.centres_, sigma)
    b = _gauss_matrix(Xs, kliep.centres_, sigma).mean(axis=0)
    reference = _slsqp_kliep(A, b)
    ours = _kliep_mean_loglik(Xt, kliep.centres_, sigma, kliep.coef_)
    assert ours == pytest.approx(_kliep_mean_loglik(Xt, kliep.centres_, sigma, reference),
                                 abs=1e-6)
    np.testing.assert_allclose(A @ kliep.coef_, A @ reference, rtol=1e-3, atol=1e-6)
    # the certificate: the gap bounds the distance to the optimum and is below tol
    assert kliep_gap(A, b, kliep.coef_) <= 1e-9
    assert kliep_gap(A, b, np.ones(10) / b.sum()) >= (
        ours - _kliep_mean_loglik(Xt, kliep.centres_, sigma, np.ones(10) / b.sum()))
    # the paper's fixed step schedule never does better
    paper = _naive_kliep(Xt, Xs, kliep.centres_, sigma, (1e3, 1e2, 1e1, 1.0, 0.1, 1e-2), 100)
    assert ours >= _kliep_mean_loglik(Xt, kliep.centres_, sigma, paper) - 1e-12
    # the constraint: mean of the estimated ratio over the source rows is 1
    assert abs(np.mean(_gauss_matrix(Xs, kliep.centres_, sigma) @ kliep.coef_) - 1) < 1e-9
    assert np.all(kliep.coef_ >= 0)
    np.testing.assert_allclose(kliep.compute_weights(Xs), kliep.weights_[:50], rtol=1e-10)


def test_kliep_solver_corner_cases():
    # one centre: the constraint alone fixes theta
    np.testing.assert_allclose(kliep_solve(np.array([[0.5], [0.2]]), np.array([0.25])), [4.0])
    # a centre with no source mass (underflowed kernel) gets weight 0, not infinity
    theta = kliep_solve(np.array([[0.5, 0.9], [0.2, 0.8]]), np.array([0.25, 0.0]))
    np.testing.assert_allclose(theta, [4.0, 0.0])
    # the simplex projection against its definition: the closest point, by brute force
    from transferkit.instance_based._kliep_solver import project_to_simplex
    v = np.array([0.9, -0.3, 0.6, 0.05])
    p = project_to_simplex(v)
    assert p.sum() == pytest.approx(1.0) and np.all(p >= 0)
    grid = np.random.default_rng(0).dirichlet(np.ones(4), size=20000)
    assert np.sum((p - v) ** 2) <= np.min(np.sum((grid - v) ** 2, axis=1)) + 1e-12
    # huge coordinates (a gradient step at a nearly unfitted row): still on the simplex
    np.testing.assert_array_equal(project_to_simplex(np.array([3e21, 1e21, 5.0])), [1, 0, 0])
    np.testing.assert_allclose(project_to_simplex(v + 1e6), p, atol=1e-9)


def test_kliep_warns_when_max_iter_stops_it_early():
    Xs, Xt = _shift_data(50, 30, d=2)
    X, y = stack_domains(Xs, np.zeros(50), Xt)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        KLIEP(bandwidth=0.3, n_centres=10, max_iter=1, random_state=0).fit(X, y)


def test_kliep_lcv_score_matches_hand_computation():
    Xs, Xt = _shift_data(40, 25, d=2, seed=3)
    X, y = stack_domains(Xs, np.zeros(40), Xt)
    grid = (0.5, 2.0)
    # tight tol: the folds start from each other's solutions, the reference starts cold
    kliep = KLIEP(bandwidth_grid=grid, n_centres=8, n_folds=3, tol=1e-10,
                  random_state=5).fit(X, y)
    from sklearn.model_selection import KFold
    from sklearn.utils import check_random_state

    from transferkit.shift.kernels import median_heuristic
    rng = check_random_state(5)
    median = median_heuristic(Xs, Xt, random_state=rng)
    centres = Xt[np.sort(rng.choice(25, size=8, replace=False))]
    np.testing.assert_array_equal(centres, kliep.centres_)
    folds = list(KFold(3, shuffle=True, random_state=rng.randint(2**31 - 1)).split(Xt))
    expected = []
    for m in grid:
        sigma = median * m
        A = _gauss_matrix(Xt, centres, sigma)
        b = _gauss_matrix(Xs, centres, sigma).mean(axis=0)
        fold_scores = []
        for train, test in folds:
            theta = kliep_solve(A[train], b, 1e-10, 1000)
            fold_scores.append(np.mean(np.log(A[test] @ theta)))
        expected.append(np.mean(fold_scores))
    np.testing.assert_allclose(kliep.cv_scores_, expected, rtol=1e-7)
    assert kliep.bandwidth_ == pytest.approx(median * grid[int(np.argmax(expected))])


@pytest.mark.parametrize("seed", range(3))
def test_kliep_converges_on_1d_data_with_overlapping_kernels(seed):
    """1-D data and small bandwidths: most centres must leave the support.  The old
    cut Newton step dropped one per two iterations and hit max_iter here."""
    rng = np.random.default_rng(seed)
    X, y = stack_domains(rng.normal(0, 1, (200, 1)), np.zeros(200), rng.normal(1, 1, (100, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        kliep = KLIEP(n_folds=3, max_iter=200, random_state=0).fit(X, y)
    Xs, Xt = X[:200], X[200:]
    A = _gauss_matrix(Xt, kliep.centres_, kliep.bandwidth_)
    b = _gauss_matrix(Xs, kliep.centres_, kliep.bandwidth_).mean(axis=0)
    assert kliep_gap(A, b, kliep.coef_) <= 1e-4
    assert np.count_nonzero(kliep.coef_) < len(kliep.coef_) // 2  # a sparse optimum


def test_kliep_tiny_bandwidths_raise_no_numpy_warnings():
    """64-d data with bandwidths down to 1/64 of the median: the Newton-type step's
    Hessian overflows at nearly unfitted rows; the solver must fall back quietly."""
    rng = np.random.default_rng(0)
    X, y = stack_domains(rng.normal(size=(200, 64)), np.zeros(200),
                         rng.normal(0.3, 0.9, size=(200, 64)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        kliep = KLIEP(bandwidth_grid=(1 / 64, 1 / 32, 1 / 16, 0.125, 0.25),
                      random_state=0).fit(X, y)
    assert np.all(np.isfinite(kliep.cv_scores_)) and np.all(np.isfinite(kliep.weights_))


@pytest.mark.parametrize("seed", [7, 8, 14])
def test_kliep_certificate_with_underflowing_rows(seed):
    """1-D, a tiny bandwidth: target rows far from every centre underflow, their fitted
    values are clipped, and beta'g < 1.  The stopping rule must use max g - beta'g
    (with max g - 1 these stopped 3e-3 to 6e-3 from the optimum)."""
    rng = np.random.default_rng(seed)
    Xt, Xs = rng.normal(0.5, 1.5, (150, 1)), rng.normal(0, 1, (200, 1))
    C = Xt[rng.choice(150, 15, replace=False)]
    A = _gauss_matrix(Xt, C, 0.05)
    b = _gauss_matrix(Xs, C, 0.05).mean(axis=0)
    assert np.sum(A.max(axis=1) < 1e-30) > 10  # rows no centre reaches
    theta = kliep_solve(A, b, 1e-8, 3000)
    assert kliep_gap(A, b, theta) <= 1e-8
    loglik = lambda t: np.mean(np.log(np.maximum(A @ t, 1e-300)))  # noqa: E731
    assert loglik(theta) >= loglik(_slsqp_kliep(A, b)) - 1e-9


def test_kliep_warm_start_reaches_the_same_optimum():
    rng = np.random.default_rng(4)
    xt, centres = rng.normal(1, 1, (120, 2)), rng.normal(1, 1, (15, 2))
    A = _gauss_matrix(xt, centres, 0.5)
    b = _gauss_matrix(rng.normal(0, 1, (150, 2)), centres, 0.5).mean(axis=0)
    At, _ = scaled_problem(A, b)
    cold, cold_gap = solve_scaled(At, 1e-9, 1000)
    f_cold = np.mean(np.log(At @ cold))
    near = 0.9 * cold + 0.1 / 15
    vertex = np.eye(15)[int(np.argmin(At.sum(axis=0)))]  # rows with (almost) no fit
    for start in (near, vertex, np.zeros(15), np.ones(3), np.full(15, np.nan)):
        beta, gap = solve_scaled(At, 1e-9, 1000, start=start)
        assert gap <= 1e-9 and beta.sum() == pytest.approx(1.0) and np.all(beta >= 0)
        assert np.mean(np.log(At @ beta)) == pytest.approx(f_cold, abs=2e-9)
    assert cold_gap <= 1e-9


# ============================================================== uLSIF / RuLSIF
@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5])
def test_lsif_closed_form_equals_direct_solve(alpha):
    Xs, Xt = _shift_data(50, 30, d=2)
    X, y = stack_domains(Xs, np.zeros(50), Xt)
    est = RuLSIF(alpha=alpha, bandwidth=1.2, reg=0.05, n_centres=12, random_state=0)
    est.fit(X, y)
    C = est.centres_
    H = np.zeros((12, 12))
    for x in Xt:
        psi = _gauss_matrix(x[None], C, 1.2)[0]
        H += alpha * np.outer(psi, psi) / 30
    for x in Xs:
        phi = _gauss_matrix(x[None], C, 1.2)[0]
        H += (1 - alpha) * np.outer(phi, phi) / 50
    h = _gauss_matrix(Xt, C, 1.2).mean(axis=0)
    theta = np.maximum(0, np.linalg.solve(H + 0.05 * np.eye(12), h))
    np.testing.assert_allclose(est.coef_, theta, rtol=1e-8, atol=1e-12)
    raw = _gauss_matrix(Xs, C, 1.2) @ theta
    np.testing.assert_allclose(est.weights_[:50], raw / raw.mean(), rtol=1e-8)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_lsif_loo_closed_form_equals_brute_force(alpha):
    rng = np.random.default_rng(1)
    Phi_s = rng.uniform(0, 1, (12, 5))
    Phi_t = rng.uniform(0, 1, (9, 5)) + 0.2
    pairs_s = rng.choice(12, 7, replace=False)
    pairs_t = rng.choice(9, 7, replace=False)
    regs = (1e-3, 0.1, 1.0)
    fast = lsif_loo_scores(Phi_s, Phi_t, pairs_s, pairs_t, alpha, regs)
    for k, reg in enumerate(regs):
        scores = []
        for i_s, i_t in zip(pairs_s, pairs_t):
            S = np.delete(Phi_s, i_s, axis=0)
            T = np.delete(Phi_t, i_t, axis=0)
            H = alpha * T.T @ T / len(T) + (1 - alpha) * S.T @ S / len(S)
            theta = np.maximum(0, np.linalg.solve(H + reg * np.eye(5), T.mean(axis=0)))
            r_t, r_s = Phi_t[i_t] @ theta, Phi_s[i_s] @ theta
            scores.append(alpha / 2 * r_t**2 + (1 - alpha) / 2 * r_s**2 - r_t)
        assert fast[k] == pytest.approx(np.mean(scores), rel=1e-9, abs=1e-12)


def test_lsif_model_selection_picks_the_loo_minimiser():
    X, y, _, _ = _gaussian_1d(200, 150)
    est = ULSIF(random_state=0).fit(X, y)
    i, j = np.unravel_index(np.argmin(est.loo_scores_), est.loo_scores_.shape)
    assert est.reg_ == pytest.approx((1e-3, 1e-2, 1e-1, 1.0)[j])
    assert est.loo_scores_.shape == (5, 4)


# ============================================================== known-ratio shifts
@pytest.mark.parametrize("make", [
    lambda: KLIEP(random_state=0),
    lambda: ULSIF(random_state=0),
    lambda: KMM(),
])
def test_ratio_estimates_track_the_true_ratio(make):
    X, y, p_s, p_t = _gaussian_1d()
    w = make().fit(X, y).weights_[:400]
    true = p_t / p_s
    assert pearsonr(w, true)[0] > 0.9


def test_rulsif_tracks_the_true_relative_ratio():
    X, y, p_s, p_t = _gaussian_1d()
    alpha = 0.2
    w = RuLSIF(alpha=alpha, random_state=0).fit(X, y).weights_[:400]
    true = p_t / (alpha * p_t + (1 - alpha) * p_s)
    assert pearsonr(w, true)[0] > 0.95


def test_nn_weights_track_the_true_ratio_on_average():
    # the Voronoi counts are noisy per row; averaged over bins they follow the ratio
    X, y, p_s, p_t = _gaussian_1d(2000, 2000)
    w = NearestNeighbourWeights().fit(X, y).weights_[:2000]
    xs = X[:2000, 0]
    bins = np.quantile(xs, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(bins, xs, side="right") - 1, 0, 9)
    mean_w = [w[which == k].mean() for k in range(10)]
    mean_true = [(p_t / p_s)[which == k].mean() for k in range(10)]
    assert pearsonr(mean_w, mean_true)[0] > 0.9


# ============================================================== nearest neighbours
def test_nn_weights_equal_brute_force_counts():
    Xs, Xt = _shift_data(40, 70, d=4, seed=2)
    X, y = stack_domains(Xs, np.zeros(40), Xt)
    nnw = NearestNeighbourWeights(smoothing=0.5).fit(X, y)
    D = ((Xt[:, None, :] - Xs[None, :, :]) ** 2).sum(axis=2)
    counts = np.bincount(D.argmin(axis=1), minlength=40).astype(float)
    np.testing.assert_array_equal(nnw.counts_, counts)
    raw = counts + 0.5
    np.testing.assert_allclose(nnw.weights_[:40], raw / raw.mean())
    # new rows get the weight of their nearest source row
    new = np.random.default_rng(9).normal(size=(15, 4))
    nearest = ((new[:, None, :] - Xs[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_allclose(nnw.compute_weights(new), (raw / raw.mean())[nearest])


def test_nn_weights_subsampled_counts_are_scaled():
    Xs, Xt = _shift_data(40, 100, d=2, seed=4)
    X, y = stack_domains(Xs, np.zeros(40), Xt)
    nnw = NearestNeighbourWeights(max_pairs=40 * 25, random_state=0).fit(X, y)
    assert nnw.n_queried_ == 25
    assert nnw.counts_.sum() == pytest.approx(100.0)
    np.testing.assert_allclose(nnw.counts_ * 25 / 100, np.round(nnw.counts_ * 25 / 100))


# ============================================================== instance selection
def _selection_data(seed=0):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(120, 2))
    ys = (Xs[:, 0] + rng.normal(0, 0.5, 120) > 0).astype(int)
    Xt = rng.normal(0.8, 1.0, size=(40, 2))
    yt = (Xt[:, 0] + rng.normal(0, 0.5, 40) > 0.8).astype(object)
    yt[20:] = None
    ys_obj = ys.astype(object)
    ys_obj[:10] = None  # some unlabelled source rows: never selected
    return Xs, ys_obj, Xt, yt


@pytest.mark.parametrize("n_keep", [30, 0.25, "auto"])
def test_instance_selection_keeps_the_top_weighted_rows(n_keep):
    Xs, ys, Xt, yt = _selection_data()
    X, y = stack_domains(Xs, ys, Xt, yt)
    lr = LogisticRegression(max_iter=5000, tol=1e-10)
    model = InstanceSelection(lr, n_keep=n_keep, random_state=0).fit(X, y)
    w = DiscriminativeWeights(random_state=0).fit(X, y).weights_
    labelled_source = np.arange(10, 120)
    scores = w[labelled_source]
    if n_keep == "auto":
        k = max(int(np.sum(scores >= 1.0)), int(np.ceil(0.1 * 110)))
    elif isinstance(n_keep, int):
        k = n_keep
    else:
        k = int(np.ceil(n_keep * 110))
    keep = labelled_source[np.argsort(-scores, kind="stable")[:k]]
    expected = np.zeros(160, dtype=bool)
    expected[keep] = True
    np.testing.assert_array_equal(model.selected_, expected)
    rows = np.concatenate([keep, 120 + np.arange(20)])
    labels = np.concatenate([ys[keep], yt[:20]]).astype(int)
    reference = clone(lr).fit(X[rows], labels)
    np.testing.assert_allclose(model.estimator_.coef_, reference.coef_, rtol=1e-6, atol=1e-8)
    assert model.training_weights_[120:140].tolist() == [1.0] * 20  # labelled target kept


def test_instance_selection_with_another_weighter_and_bad_n_keep():
    Xs, ys, Xt, yt = _selection_data()
    X, y = stack_domains(Xs, ys, Xt, yt)
    model = InstanceSelection(weighter=NearestNeighbourWeights(), n_keep=15).fit(X, y)
    assert model.n_selected_ == 15
    for bad in (0, 1.5, "most", -0.2, True):
        with pytest.raises(TransferKitInputError, match="n_keep"):
            InstanceSelection(n_keep=bad, random_state=0).fit(X, y)


# ============================================================== shared contract
WEIGHTERS = {
    "kmm_exact": lambda: KMM(solver="exact"),
    "kmm_nystroem": lambda: KMM(solver="nystroem", n_components=40, random_state=0),
    "kliep": lambda: KLIEP(n_folds=3, random_state=0),
    "ulsif": lambda: ULSIF(random_state=0),
    "rulsif": lambda: RuLSIF(random_state=0),
    "nn": lambda: NearestNeighbourWeights(),
}


@pytest.fixture(scope="module")
def contract_data():
    Xs, Xt = _shift_data(60, 40)
    ys = (Xs[:, 0] > 0).astype(int)
    yt = (Xt[:, 0] > 0.7).astype(object)
    yt[20:] = None
    return Xs, ys, Xt, yt


@pytest.mark.parametrize("name", list(WEIGHTERS))
def test_weighter_contract(name, contract_data):
    Xs, ys, Xt, yt = contract_data
    X, y = stack_domains(Xs, ys, Xt, yt)
    first = WEIGHTERS[name]().fit(X, y)
    w = first.weights_
    assert w.shape == (100,) and np.all(np.isfinite(w)) and np.all(w >= 0)
    assert w[:60].mean() == pytest.approx(1.0)
    np.testing.assert_array_equal(w[60:], 1.0)
    # determinism under random_state, and the DataFrame path equals the array path
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    np.testing.assert_array_equal(WEIGHTERS[name]().fit(frame, y).weights_, w)
    # several source domains are pooled: same rows under two names, same weights
    X2, y2 = stack_domains({"s1": Xs[:30], "s2": Xs[30:]}, {"s1": ys[:30], "s2": ys[30:]},
                           Xt, yt)
    np.testing.assert_allclose(WEIGHTERS[name]().fit(X2, y2).weights_, w, rtol=1e-10)
    # plugs into ImportanceWeighted
    model = ImportanceWeighted(weighter=WEIGHTERS[name](), flattening=1.0,
                               random_state=0).fit(X, y)
    assert model.predict(Xt).shape == (40,)
    np.testing.assert_allclose(model.training_weights_[:60], w[:60])


@pytest.mark.parametrize("name", list(WEIGHTERS))
def test_weighter_bad_input(name, contract_data):
    Xs, ys, Xt, yt = contract_data
    X, y = stack_domains(Xs, ys, Xt, yt)
    make = WEIGHTERS[name]
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(TransferKitInputError, match="NaN"):
        make().fit(X_nan, y)
    with pytest.raises(TransferKitInputError, match="tagged"):
        make().fit(X, np.r_[ys, np.zeros(40)])
    with pytest.raises(TransferKitInputError, match="rows"):
        make().fit(X[:-1], y)
    only_source = y.copy()
    only_source["is_target"] = False
    with pytest.raises(TransferKitInputError, match="No target rows"):
        make().fit(X, only_source)
    fitted = make().fit(X, y)
    if name.startswith("kmm"):
        return
    with pytest.raises(TransferKitInputError, match="features"):
        fitted.compute_weights(X[:, :2])


@pytest.mark.parametrize("make, match", [
    (lambda: KLIEP(bandwidth=-1.0), "bandwidth"),
    (lambda: KLIEP(bandwidth="silverman"), "bandwidth"),
    (lambda: KLIEP(n_centres=0), "n_centres"),
    (lambda: KLIEP(tol=0.0), "tol"),
    (lambda: KLIEP(max_iter=0), "max_iter"),
    (lambda: ULSIF(reg=0.0), "reg"),
    (lambda: ULSIF(reg_grid=()), "reg_grid"),
    (lambda: RuLSIF(alpha=1.0), "alpha"),
    (lambda: KMM(solver="cvx"), "solver"),
    (lambda: KMM(B=-1.0), "B"),
    (lambda: KMM(eps=-0.1), "eps"),
    (lambda: NearestNeighbourWeights(smoothing=-1.0), "smoothing"),
])
def test_bad_parameters(make, match, contract_data):
    Xs, ys, Xt, yt = contract_data
    X, y = stack_domains(Xs, ys, Xt, yt)
    with pytest.raises(TransferKitInputError, match=match):
        make().fit(X, y)


def test_tiny_target_needs_fixed_hyperparameters():
    Xs, Xt = _shift_data(20, 1)
    X, y = stack_domains(Xs, np.zeros(20), Xt)
    with pytest.raises(TransferKitInputError, match="at least 2"):
        ULSIF().fit(X, y)
    with pytest.raises(TransferKitInputError, match="at least 2"):
        KLIEP().fit(X, y)
    assert ULSIF(bandwidth=1.0, reg=0.1).fit(X, y).weights_.shape == (21,)


def test_registered_strategies_fit_and_predict():
    from transferkit.autopilot import _register_instance  # noqa: F401
    from transferkit.autopilot.registry import TaskInfo, get_strategy

    Xs, Xt = _shift_data(60, 40)
    rng = np.random.default_rng(0)
    ys_cls = (Xs[:, 0] > 0).astype(int)
    yt_cls = np.tile([0, 1], 20).astype(object)
    yt_cls[30:] = None
    ys_reg = Xs[:, 0] + 0.1 * rng.normal(size=60)
    yt_reg = (Xt[:, 0] + 0.1 * rng.normal(size=40)).astype(object)
    yt_reg[30:] = None
    for task, ys, yt in (("classification", ys_cls, yt_cls), ("regression", ys_reg, yt_reg)):
        X, y = stack_domains(Xs, ys, Xt, yt)
        info = TaskInfo(task=task, n_source=60, n_source_domains=1, n_labelled_target=30,
                        n_unlabelled_target=10, n_features=3)
        for name in ("kmm", "kliep", "ulsif", "rulsif", "nn_weights", "instance_selection"):
            strategy = get_strategy(name)
            assert strategy.applies(info)
            model = strategy.build(info, 0).fit(X, y)
            assert model.predict(Xt).shape == (40,)
