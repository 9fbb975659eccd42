"""The simplex-constrained QP behind KLIEP's Newton-type step, against cvxopt."""

import numpy as np
import pytest

from transferkit.instance_based._simplex_qp import (
    block_principal_pivoting,
    primal_active_set,
    solve_simplex_qp,
)


def _cvxopt_simplex_qp(H, c):
    cvxopt = pytest.importorskip("cvxopt")
    m = len(c)
    opts = {"show_progress": False, "abstol": 1e-12, "reltol": 1e-12, "feastol": 1e-12}
    sol = cvxopt.solvers.qp(cvxopt.matrix(H), cvxopt.matrix(-c), cvxopt.matrix(-np.eye(m)),
                            cvxopt.matrix(np.zeros(m)), cvxopt.matrix(np.ones((1, m))),
                            cvxopt.matrix(1.0), options=opts)
    assert sol["status"] == "optimal"
    return np.maximum(np.array(sol["x"]).ravel(), 0.0)


def _objective(H, c, x):
    return 0.5 * x @ H @ x - c @ x


def _problem(m, seed, condition=1e2, sparse_optimum=True):
    """SPD H with the given condition number; c puts the optimum on a face of the simplex."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(m, m)))
    H = (Q * np.geomspace(1.0, condition, m)) @ Q.T
    c = rng.normal(size=m) * (3.0 if sparse_optimum else 0.1) + H @ np.full(m, 1.0 / m)
    return (H + H.T) / 2, c


def _kliep_like_problem(seed):
    """The quadratic model of KLIEP's likelihood at the uniform point, 1-D data, a small
    bandwidth: strongly overlapping kernels, an ill-conditioned H, a sparse optimum."""
    rng = np.random.default_rng(seed)
    xt, centres = rng.normal(1, 1, 150), np.sort(rng.normal(1, 1, 40))
    A = np.exp(-(xt[:, None] - centres[None, :]) ** 2 / (2 * 0.3**2))
    beta = np.full(40, 1 / 40)
    R = A / (A @ beta)[:, None]
    H = R.T @ R / len(xt)
    H[np.diag_indices_from(H)] += 1e-8 * np.trace(H) / 40
    grad = R.mean(axis=0)
    return H, grad + H @ beta, beta


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sparse_optimum", [True, False])
def test_block_principal_pivoting_matches_cvxopt(seed, sparse_optimum):
    H, c = _problem(12, seed, sparse_optimum=sparse_optimum)
    x = block_principal_pivoting(H, c, np.ones(12, dtype=bool))
    assert x is not None
    reference = _cvxopt_simplex_qp(H, c)
    assert np.all(x >= 0) and x.sum() == pytest.approx(1.0)
    assert _objective(H, c, x) == pytest.approx(_objective(H, c, reference), abs=1e-9)
    np.testing.assert_allclose(x, reference, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_primal_active_set_matches_cvxopt_and_never_worsens_the_start(seed):
    H, c = _problem(12, seed, condition=1e6)
    start = np.random.default_rng(seed).dirichlet(np.ones(12))
    x = primal_active_set(H, c, start, max_steps=100)
    reference = _cvxopt_simplex_qp(H, c)
    assert np.all(x >= 0) and x.sum() == pytest.approx(1.0)
    assert _objective(H, c, x) == pytest.approx(_objective(H, c, reference), abs=1e-9)
    # cut short, it still returns a feasible point no worse than the start
    for steps in range(1, 4):
        early = primal_active_set(H, c, start, max_steps=steps)
        assert np.all(early >= 0) and early.sum() == pytest.approx(1.0)
        assert _objective(H, c, early) <= _objective(H, c, start) + 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_solve_simplex_qp_on_kliep_models(seed):
    """The ill-conditioned models of 1-D KLIEP: whichever method finishes, the optimum."""
    H, c, start = _kliep_like_problem(seed)
    x = solve_simplex_qp(H, c, start)
    reference = _cvxopt_simplex_qp(H, c)
    assert np.all(x >= 0) and x.sum() == pytest.approx(1.0)
    scale = abs(_objective(H, c, reference))
    assert _objective(H, c, x) <= _objective(H, c, reference) + 1e-7 * scale
    assert (x > 0).sum() < 40  # the optimum is sparse: many centres left in one solve


def test_solve_simplex_qp_falls_back_when_pivoting_gives_up():
    H, c, start = _kliep_like_problem(0)
    assert block_principal_pivoting(H, c, start > 0, max_exchanges=1) is None
    x = solve_simplex_qp(H, c, start, max_exchanges=1)  # the primal method's answer
    reference = _cvxopt_simplex_qp(H, c)
    scale = abs(_objective(H, c, reference))
    assert _objective(H, c, x) <= _objective(H, c, reference) + 1e-7 * scale


def test_vertex_and_one_coordinate_cases():
    # c strongly favours coordinate 2: the optimum is that vertex
    H = np.eye(3)
    x = solve_simplex_qp(H, np.array([0.0, 0.0, 10.0]), np.full(3, 1 / 3))
    np.testing.assert_allclose(x, [0.0, 0.0, 1.0], atol=1e-12)
    # from a vertex start (one free coordinate) the interior optimum is still found
    x = solve_simplex_qp(H, np.zeros(3), np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(x, np.full(3, 1 / 3), atol=1e-12)
    np.testing.assert_allclose(solve_simplex_qp(np.eye(1) * 2, np.array([5.0]), np.ones(1)), [1.0])
