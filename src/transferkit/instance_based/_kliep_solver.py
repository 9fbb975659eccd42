"""KLIEP's optimisation problem, solved to a certified accuracy.

KLIEP (Sugiyama et al. 2008) fits the coefficients of a kernel model of the
density ratio by

.. math::

    \\max_{\\theta \\ge 0} \\; \\frac{1}{n}\\sum_{j=1}^{n} \\log (A\\theta)_j
    \\quad \\text{s.t.} \\quad b^\\top\\theta = 1,

with ``A[j, l]`` the kernel between target row ``j`` and centre ``l`` and
``b[l]`` the mean kernel between the source rows and centre ``l``.  With
:math:`\\beta_l = b_l\\theta_l` and :math:`\\tilde A = A\\,\\mathrm{diag}(1/b)`
this is the maximum-likelihood problem for the weights of a mixture with
fixed components,

.. math::

    \\max_{\\beta \\in \\Delta} f(\\beta) = \\frac{1}{n}\\sum_j \\log(\\tilde A\\beta)_j,
    \\qquad \\Delta = \\{\\beta \\ge 0,\\ \\textstyle\\sum_l \\beta_l = 1\\},

a concave problem over the probability simplex.  Its gradient
:math:`g = \\tilde A^\\top (1/\\tilde A\\beta)/n` satisfies :math:`\\beta^\\top g = 1`
at every :math:`\\beta`, so the Frank-Wolfe duality gap is

.. math::

    \\mathrm{gap}(\\beta) = \\max_l g_l - 1 \\;\\ge\\; f(\\beta^\\star) - f(\\beta),

a computable bound on the distance to the optimum; the solver stops when it
is below ``tol`` (the paper's fixed-step projected gradient ascent has no such
certificate and, with its step schedule, often stops far from the optimum).
Fitted values are clipped at 1e-300 (a target row far from every centre at a
tiny bandwidth underflows); then :math:`\\beta^\\top g < 1` and the solver
uses the general gap :math:`\\max_l g_l - \\beta^\\top g`, which is the same
otherwise.

Each iteration takes one of two ascent steps:

* a Newton-type step (when the support :math:`S` did not change in the
  previous iteration): on the working set :math:`W = S \\cup \\{l : g_l >
  \\beta^\\top g\\}` (the support and the centres whose gradient says they
  should enter; :math:`\\beta^\\top g = 1` but for clipped rows), the
  quadratic model :math:`f(\\beta) + g^\\top p - \\tfrac12 p^\\top H p` with
  :math:`H = \\frac1n \\tilde A_W^\\top \\mathrm{diag}(1/(\\tilde A\\beta)^2)
  \\tilde A_W` (minus the Hessian) is maximised over the simplex exactly, by
  :func:`~transferkit.instance_based._simplex_qp.solve_simplex_qp`, and the
  step to that maximiser is halved until :math:`f` increases.  Solving the
  model over the simplex, rather than taking the unconstrained Newton step
  cut at the boundary, lets one step drop every centre that should leave the
  support: with strongly overlapping kernels (1-D data, small bandwidths)
  the cut step dropped one centre per two iterations and needed thousands of
  iterations where this needs tens;
* otherwise (or when that fails) a spectral projected gradient step (Birgin,
  Martínez & Raydan 2000, "Nonmonotone spectral projected gradient methods on
  convex sets", SIAM J. Optim. 10(4):1196-1211): the Barzilai-Borwein step
  length, the Euclidean projection onto the simplex, and the nonmonotone line
  search of Grippo, Lampariello & Lucidi (1986) over the last 10 values.

A warm start (``start``: e.g. the previous cross-validation fold's solution)
begins near the optimum, and its first iteration may already take the
Newton-type step; the stopping certificate is the same.

Example
-------
>>> import numpy as np
>>> A = np.array([[1.0, 0.2], [0.9, 0.1], [0.1, 1.0]])
>>> b_vec = np.array([0.5, 0.5])
>>> theta = kliep_solve(A, b_vec, tol=1e-9)
>>> round(float(b_vec @ theta), 12)
1.0
>>> bool(kliep_gap(A, b_vec, theta) <= 1e-9)
True
"""

from __future__ import annotations

import numpy as np

from transferkit.instance_based._simplex_qp import solve_simplex_qp

__all__ = ["kliep_solve", "kliep_gap", "mean_log_likelihood", "scaled_problem",
           "solve_scaled", "unscale"]

_MEMORY = 10  # nonmonotone line-search memory
_ARMIJO = 1e-4
_MIN_STEP = 1e-12
_TINY = 1e-300
#: relative ridge on the Newton system: keeps it solvable when centres nearly coincide
_DAMPING = 1e-8


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` onto the probability simplex.

    The projection is :math:`\\max(v - \\tau, 0)` with :math:`\\tau` the
    threshold that makes it sum to 1 (Held, Wolfe & Crowder 1974; sort-based).
    The projection does not change when a constant is added to every
    coordinate, so it is computed for ``v - max(v)``: with a huge ``v`` the
    threshold would otherwise lose the 1 it must subtract to rounding.
    """
    v = v - v.max()
    u = np.sort(v)[::-1]
    excess = np.cumsum(u) - 1.0
    rho = np.nonzero(u * np.arange(1, len(u) + 1) > excess)[0][-1]
    return np.maximum(v - excess[rho] / (rho + 1), 0.0)


def mean_log_likelihood(fitted: np.ndarray) -> float:
    """KLIEP's objective at fitted ratios ``A @ theta``: their mean log (0 clipped to 1e-300)."""
    return float(np.mean(np.log(np.maximum(fitted, _TINY))))


def _gradient(At: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    return At.T @ (1.0 / np.maximum(fitted, _TINY)) / At.shape[0]


def _model_step(At, beta, fitted, score, grad, workspace):
    """Step to the maximiser of the quadratic model over the simplex (see the module
    docstring); return (beta, fitted, score) if it increases f, else None.

    ``workspace``: scratch space of at least ``At.size`` floats (see :func:`solve_scaled`).
    """
    working = np.flatnonzero((beta > 0) | (grad > beta @ grad))
    R = workspace[:At.shape[0] * len(working)].reshape(At.shape[0], len(working))
    np.take(At, working, axis=1, out=R, mode="clip")  # valid indices: no buffered copy
    with np.errstate(over="ignore", invalid="ignore"):
        # at tiny bandwidths a nearly unfitted row can overflow H: the spectral step
        # is taken instead
        R /= np.maximum(fitted, _TINY)[:, None]
        H = R.T @ R / At.shape[0]
    if not np.all(np.isfinite(H)):
        return None
    H[np.diag_indices_from(H)] += _DAMPING * np.trace(H) / len(working) + _TINY
    current = beta[working]
    target = solve_simplex_qp(H, grad[working] + H @ current, current)
    direction = np.zeros_like(beta)
    direction[working] = target - current
    if not (np.all(np.isfinite(direction)) and grad @ direction > 0):
        return None
    t = 1.0
    while t > _MIN_STEP:
        new = np.maximum(beta + t * direction, 0.0)
        new /= new.sum()
        new_fitted = At @ new
        new_score = mean_log_likelihood(new_fitted)
        if new_score > score:
            return new, new_fitted, new_score
        t *= 0.5
    return None


def _spectral_step(At, beta, grad, step_length, history):
    """Spectral projected gradient step with the nonmonotone line search."""
    direction = project_to_simplex(beta + step_length * grad) - beta
    slope = float(grad @ direction)
    reference = max(history[-_MEMORY:])
    t = 1.0
    while True:
        new = beta + t * direction
        new_fitted = At @ new
        new_score = mean_log_likelihood(new_fitted)
        if new_score >= reference + _ARMIJO * t * slope or t < _MIN_STEP:
            return new, new_fitted, new_score
        t *= 0.5


def _duality_gap(beta: np.ndarray, grad: np.ndarray) -> float:
    """Frank-Wolfe gap :math:`\\max_l g_l - \\beta^\\top g` (1 is :math:`\\beta^\\top g`
    only while no fitted value is clipped at 1e-300)."""
    return float(grad.max() - beta @ grad)


def _starting_point(At: np.ndarray, start) -> np.ndarray:
    """``start`` normalised onto the simplex (the uniform point if None or unusable),
    mixed with the uniform point if it leaves a row's fitted ratio at 0."""
    uniform = np.full(At.shape[1], 1.0 / At.shape[1])
    if start is None:
        return uniform
    beta = np.maximum(np.asarray(start, dtype=float), 0.0)
    total = beta.sum()
    if beta.shape != uniform.shape or not (np.isfinite(total) and total > 0):
        return uniform
    beta /= total
    return beta if np.all(At @ beta > 0) else 0.5 * (beta + uniform)


def _solve_simplex(At: np.ndarray, tol: float, max_iter: int, start=None, workspace=None):
    """Maximise mean log(At beta) over the simplex; return (beta, gap, n_iter)."""
    if workspace is None or workspace.size < At.size:
        workspace = np.empty(At.size)
    beta = _starting_point(At, start)
    fitted = At @ beta
    score = mean_log_likelihood(fitted)
    grad = _gradient(At, fitted)
    step_length = 1.0 / max(float(np.abs(grad).max()), 1e-12)
    history = [score]
    previous_support = None if start is None else np.flatnonzero(beta > 0)
    n_iter = 0
    while _duality_gap(beta, grad) > tol and n_iter < max_iter:
        support = np.flatnonzero(beta > 0)
        taken = None
        if previous_support is not None and np.array_equal(support, previous_support):
            taken = _model_step(At, beta, fitted, score, grad, workspace)
        if taken is None:
            taken = _spectral_step(At, beta, grad, step_length, history)
        new, new_fitted, new_score = taken
        new_grad = _gradient(At, new_fitted)
        # Barzilai-Borwein step length from the last move (s) and gradient change (y)
        s, y = new - beta, grad - new_grad
        sy = float(s @ y)
        step_length = min(max(float(s @ s) / sy, 1e-10), 1e10) if sy > 0 else 1e10
        beta, fitted, score, grad = new, new_fitted, new_score, new_grad
        previous_support = support
        history.append(score)
        n_iter += 1
    return beta, _duality_gap(beta, grad), n_iter


def _usable_centres(A: np.ndarray, b_vec: np.ndarray) -> np.ndarray:
    """Centres with positive source mass (others would make the problem unbounded)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scaled_max = A.max(axis=0, initial=0.0) / b_vec
    return (b_vec > 0) & np.isfinite(scaled_max)


def scaled_problem(A: np.ndarray, b_vec: np.ndarray,
                   overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(A~, usable)``: the simplex problem's matrix :math:`\\tilde A = A\\,\\mathrm{diag}(1/b)`
    over the usable centres (see :func:`kliep_solve`), and which centres those are.

    Rows of ``A~`` give the same fitted values as rows of ``A``:
    ``A~[rows] @ beta == A[rows] @ theta`` with :math:`\\beta = b \\circ \\theta`.
    ``overwrite=True`` may compute ``A~`` in ``A`` itself.
    """
    usable = _usable_centres(A, b_vec)
    if usable.all():
        if overwrite:
            A /= b_vec
            return A, usable
        return A / b_vec, usable
    return A[:, usable] / b_vec[usable], usable


def solve_scaled(At: np.ndarray, tol: float = 1e-4, max_iter: int = 1000, start=None,
                 workspace=None):
    """Maximise :math:`\\frac1n\\sum_j \\log(\\tilde A\\beta)_j` over the simplex.

    ``start``: a point to begin from (a warm start; default: the uniform point).
    ``workspace``: a float64 array of at least ``At.size`` elements the solver may
    overwrite; passing one buffer to a series of solves saves allocating (and
    page-faulting in) fresh memory for every Newton-type step.
    Returns :math:`\\beta` and its duality gap (``> tol`` only when ``max_iter``
    stopped the solver).  ``At`` with no column is the problem without a usable
    centre: an empty :math:`\\beta` and gap 0.
    """
    if At.shape[1] == 0:
        return np.zeros(0), 0.0
    beta, gap, _ = _solve_simplex(At, tol, max_iter, start, workspace)
    return beta, gap


def kliep_solve(A: np.ndarray, b_vec: np.ndarray, tol: float = 1e-4,
                max_iter: int = 1000) -> np.ndarray:
    """Solve KLIEP's problem; return :math:`\\theta` (see the module docstring).

    Parameters
    ----------
    A : ndarray of shape (n, b)
        Kernel between the target rows and the centres.
    b_vec : ndarray of shape (b,)
        Mean kernel between the source rows and each centre.
    tol : float, default=1e-4
        Stop when the duality gap (an upper bound on how far the mean
        log-likelihood is below its maximum) is at most ``tol``.
    max_iter : int, default=1000
        Iteration cap; :func:`kliep_gap` tells whether ``tol`` was reached.

    Centres whose source mass ``b_vec[l]`` is 0 (a kernel that underflowed)
    get :math:`\\theta_l = 0`: with them the likelihood would be unbounded.
    """
    At, usable = scaled_problem(A, b_vec)
    beta, _ = solve_scaled(At, tol, max_iter)
    return unscale(beta, b_vec, usable)


def unscale(beta: np.ndarray, b_vec: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """:math:`\\theta = \\beta / b` on the usable centres, 0 on the others."""
    theta = np.zeros(len(b_vec))
    theta[usable] = beta / b_vec[usable]
    return theta


def kliep_gap(A: np.ndarray, b_vec: np.ndarray, theta: np.ndarray) -> float:
    """Duality gap of a feasible :math:`\\theta`: how far, at most, it is from optimal."""
    usable = _usable_centres(A, b_vec)
    At = A[:, usable] / b_vec[usable]
    beta = theta[usable] * b_vec[usable]
    return _duality_gap(beta, _gradient(At, At @ beta))
