"""Strictly convex quadratic programs over the probability simplex.

.. math::

    \\min_x \\; \\tfrac12 x^\\top H x - c^\\top x
    \\quad \\text{s.t.} \\quad x \\ge 0,\\ \\textstyle\\sum_l x_l = 1,

with :math:`H` symmetric positive definite.  At the solution, with
:math:`F` the free set (the coordinates that may be positive),

.. math::

    x_F = H_{FF}^{-1}(c_F - \\nu 1), \\quad x_{\\bar F} = 0, \\quad
    \\lambda = Hx - c + \\nu 1 \\ge 0 \\text{ on } \\bar F,

where :math:`\\nu` makes :math:`x_F` sum to 1 (the equality constraint's
multiplier).  A free set is optimal when its :math:`x_F \\ge 0` and its
:math:`\\lambda_{\\bar F} \\ge 0`.

:func:`solve_simplex_qp` first runs block principal pivoting (Júdice & Pires
1994, "A block principal pivoting algorithm for large-scale strictly monotone
linear complementarity problems", Computers & Operations Research
21(5):587-596, with the safeguard of Kim & Park 2011, "Fast
nonnegativity-constrained least squares algorithms based on block principal
pivoting", SIAM J. Sci. Comput. 33(6):3261-3281): every infeasible coordinate
changes sides at once, which usually ends in a few factorisations even when
most of the coordinates leave the free set.  On an ill-conditioned
:math:`H` it can cycle; then the primal active-set method (Nocedal & Wright
2006, "Numerical Optimization", 2nd ed., Algorithm 16.3) takes over from the
feasible start: one coordinate changes sides per step, and the objective never
increases, so its answer is never worse than the start.

Example
-------
>>> import numpy as np
>>> H = np.array([[2.0, 0.0], [0.0, 1.0]])
>>> solve_simplex_qp(H, np.array([1.0, 0.0]), np.array([0.5, 0.5])).round(6).tolist()
[0.666667, 0.333333]
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

__all__ = ["solve_simplex_qp"]

#: Block exchanges tried before falling back to the primal active-set method.
MAX_EXCHANGES = 15
#: Block exchanges that may leave the number of infeasible coordinates unchanged
#: or larger before only the largest-index one is moved (Kim & Park's safeguard).
_FULL_EXCHANGE_TRIES = 3


def _free_set_solution(H: np.ndarray, c: np.ndarray, free: np.ndarray):
    """``(x_F, nu)`` of the equality-constrained problem on the indices ``free``, or None."""
    try:
        factor = cho_factor(H[np.ix_(free, free)], lower=True, check_finite=False)
    except (LinAlgError, ValueError):
        return None
    rhs = np.empty((len(free), 2))
    rhs[:, 0] = c[free]
    rhs[:, 1] = 1.0
    u, v = cho_solve(factor, rhs, check_finite=False).T
    if not v.sum() > 0:
        return None
    nu = (u.sum() - 1.0) / v.sum()
    x_free = u - nu * v
    return (x_free, nu) if np.all(np.isfinite(x_free)) else None


def block_principal_pivoting(H: np.ndarray, c: np.ndarray, free: np.ndarray,
                             max_exchanges: int = MAX_EXCHANGES):
    """The solution from the starting free set ``free`` (boolean), or None if not found."""
    free = free.copy()
    if not free.any():
        free[int(np.argmax(c - 0.5 * np.diag(H)))] = True  # the best vertex
    fewest, tries = len(c) + 1, _FULL_EXCHANGE_TRIES
    for _ in range(max_exchanges):
        indices = np.flatnonzero(free)
        solved = _free_set_solution(H, c, indices)
        if solved is None:
            return None
        x = np.zeros(len(c))
        x[indices] = solved[0]
        multipliers = H @ x - c + solved[1]
        infeasible = np.flatnonzero(np.where(free, x < 0, multipliers < 0))
        if infeasible.size == 0:
            return x
        if infeasible.size < fewest:
            fewest, tries = infeasible.size, _FULL_EXCHANGE_TRIES
        elif tries > 0:
            tries -= 1
        else:
            infeasible = infeasible[-1:]
        free[infeasible] = ~free[infeasible]
        if not free.any():
            return None
    return None


def primal_active_set(H: np.ndarray, c: np.ndarray, x: np.ndarray, max_steps: int) -> np.ndarray:
    """Improve the feasible ``x`` (a copy) one active-set change at a time; return the result.

    The objective never increases; the result is optimal unless ``max_steps`` ran out.
    """
    x = x.copy()
    free = x > 0
    for _ in range(max_steps):
        indices = np.flatnonzero(free)
        solved = _free_set_solution(H, c, indices)
        if solved is None:
            break
        target, nu = solved
        blocking = target < 0
        if blocking.any():
            # move towards the target until the first free coordinate reaches 0
            current = x[indices]
            ratios = current[blocking] / (current[blocking] - target[blocking])
            first = int(np.argmin(ratios))
            x[indices] = current + ratios[first] * (target - current)
            leaving = indices[np.flatnonzero(blocking)[first]]
            x[leaving] = 0.0
            free[leaving] = False
            np.maximum(x, 0.0, out=x)
            continue
        x[indices] = target
        multipliers = H @ x - c + nu
        multipliers[free] = np.inf
        entering = int(np.argmin(multipliers))
        if not multipliers[entering] < 0:
            break
        free[entering] = True
    return x / x.sum()


def solve_simplex_qp(H: np.ndarray, c: np.ndarray, start: np.ndarray,
                     max_exchanges: int = MAX_EXCHANGES) -> np.ndarray:
    """Minimise :math:`\\tfrac12 x^\\top Hx - c^\\top x` over the simplex (see the module docstring).

    ``start`` is a feasible point; its positive coordinates are the first
    free set.  Returns the solution (or, if neither method finished within
    its step limit, a feasible point no worse than ``start``).
    """
    x = block_principal_pivoting(H, c, start > 0, max_exchanges)
    if x is not None:
        return x / x.sum()
    return primal_active_set(H, c, start, max_steps=4 * len(c) + 10)
