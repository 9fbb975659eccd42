"""Kernel mean matching (KMM): source weights that match the target's kernel mean.

KMM (Huang, Smola, Gretton, Borgwardt & Schölkopf 2007, "Correcting sample
selection bias by unlabeled data", NIPS 19) chooses source weights
:math:`\\beta` so that the weighted source mean in a Gaussian RKHS matches
the target mean, which for a characteristic kernel makes the weighted source
distribution match the target one.  Squaring the RKHS distance gives the
quadratic programme

.. math::

    \\min_{\\beta}\\; \\tfrac12 \\beta^\\top K \\beta - \\kappa^\\top \\beta
    \\quad\\text{s.t.}\\quad 0 \\le \\beta_i \\le B,\\quad
    \\Big|\\sum_i \\beta_i - n_s\\Big| \\le n_s \\varepsilon,

with :math:`K_{ii'} = k(x^s_i, x^s_{i'})` and
:math:`\\kappa_i = \\frac{n_s}{n_t}\\sum_j k(x^s_i, x^t_j)`.

Two solvers, both written here (no QP library needed):

``"exact"``
    The full kernel matrix and accelerated projected gradient (FISTA with
    adaptive restart; Beck & Teboulle 2009, O'Donoghue & Candès 2015) with
    an exact Euclidean projection onto the feasible set (box ∩ sum band:
    :math:`\\mathrm{clip}(v - \\tau, 0, B)` with :math:`\\tau` found exactly on
    the piecewise-linear sum).  The iterate's active set is then *polished*:
    the KKT system on the free coordinates is solved directly, and the
    solution is kept when it is feasible, satisfies the KKT sign conditions
    and does not raise the objective, so on small problems the answer is
    the QP's optimum to machine precision.  Memory and time are
    :math:`O(n_s^2)` per iteration.
``"nystroem"``
    A rank-``n_components`` Nyström factor :math:`\\Phi` (landmarks drawn at
    random from the pooled rows) with the exact kernel diagonal restored,
    :math:`K \\approx \\Phi\\Phi^\\top + \\mathrm{diag}(k(x,x) - \\lVert\\phi(x)\\rVert^2)`,
    and :math:`\\kappa \\approx \\frac{n_s}{n_t}\\Phi_s \\Phi_t^\\top 1`.  Each
    gradient costs :math:`O(n_s D)`; the projection is the same.  The
    dominant, near-constant direction of the kernel matrix is split off
    (:math:`K = (K - c11^\\top) + c11^\\top`, ``c`` the mean kernel entry) and
    handled exactly inside the proximal step, so the step size is set by the
    Lanczos bound on :math:`|\\lambda(K - c11^\\top)|` instead of
    :math:`\\lambda_{max}(K) \\approx c n_s`: several times fewer iterations.  The
    diagonal term keeps the QP strictly convex (a pure low-rank :math:`K`
    leaves the solution undetermined in the null space) and is the exact
    diagonal of the kernel.  Trade-off: the Nyström error on the
    off-diagonal entries; the tests check that the exact objective at the
    Nyström solution is within 0.1% of the exact optimum (2e-5 observed) and
    that downstream accuracy is within 1 point.

``solver="auto"`` uses ``"exact"`` up to ``exact_max_samples`` source rows
and ``"nystroem"`` above.  Several source domains are pooled into one source
sample.  ``weights_`` holds :math:`\\beta` normalised to mean 1 over the
source rows (1 for target rows).

KMM is *transductive*: :math:`\\beta` exists only for the source rows seen in
``fit``, so :meth:`KMM.compute_weights` raises; use KLIEP, uLSIF or
discriminative weights when weights of new rows are needed.

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains
>>> from transferkit.instance_based import KMM
>>> rng = np.random.default_rng(0)
>>> X, y = stack_domains(rng.normal(0, 1, (200, 1)), np.zeros(200),
...                      rng.normal(1, 1, (100, 1)))
>>> w = KMM().fit(X, y).weights_[:200]
>>> bool(w[X[:200, 0] > 1].mean() > w[X[:200, 0] < 0].mean())
True
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from transferkit.instance_based.density_ratio import (
    MEDIAN_HEURISTIC_ROWS,
    _check_positive_float,
    _check_positive_int,
    _domains_and_matrix,
    _full_weights,
    _gauss,
    _one_blas_thread,
    _sq_distances,
)
from transferkit.shift.kernels import median_heuristic
from transferkit.validation import TransferKitInputError

__all__ = ["KMM", "project_box_sum", "kmm_objective"]

_BLOCK = 2048
#: Rows per kernel block of the Nyström features (bounds the block's memory).
_ROW_BLOCK = 16384
#: The Nyström path stops at this tolerance at the finest: its approximation
#: error (about 1e-4 relative in the objective at 300 components) dominates, and
#: at 1e-3 the objective is within about 1e-4 (relative) of the 1e-6 solution.
_NYSTROEM_TOL = 1e-3


def project_box_sum(v: np.ndarray, upper: float, low: float, high: float,
                    tau0: float = 0.0) -> tuple[np.ndarray, float]:
    """Euclidean projection of ``v`` onto ``{0 <= b <= upper, low <= sum(b) <= high}``.

    The projection is :math:`\\mathrm{clip}(v - \\tau, 0, B)` where
    :math:`\\tau = 0` if that already satisfies the sum band, and otherwise
    solves :math:`\\sum_i \\mathrm{clip}(v_i - \\tau, 0, B) = s` for the
    violated bound ``s`` (the KKT conditions of the projection).  The sum is
    piecewise linear and non-increasing in :math:`\\tau`: safeguarded Newton
    steps find the linear piece (warm-started at ``tau0``) and :math:`\\tau`
    is then solved for exactly.  Returns the projection and :math:`\\tau`.
    """
    b = np.clip(v, 0.0, upper)
    total = float(b.sum())
    if low <= total <= high:
        return b, 0.0
    target = high if total > high else low
    tolerance = 1e-12 * max(1.0, abs(target))
    # bracket: s(lo) = n * upper >= target >= 0 = s(hi)
    lo, hi = float(v.min()) - upper, float(v.max())
    tau = tau0 if lo < tau0 < hi else 0.5 * (lo + hi)
    for _ in range(200):
        shifted = v - tau
        s = float(np.clip(shifted, 0.0, upper).sum())
        if s > target:
            lo = tau
        else:
            hi = tau
        free = (shifted > 0) & (shifted < upper)
        n_free = int(free.sum())
        if n_free:
            # the exact tau if the current linear piece is the right one
            cand = (float(v[free].sum()) + upper * float((shifted >= upper).sum())
                    - target) / n_free
            b = np.clip(v - cand, 0.0, upper)
            if abs(float(b.sum()) - target) <= tolerance:
                return b, cand
            tau = cand if lo < cand < hi else 0.5 * (lo + hi)
        else:
            tau = 0.5 * (lo + hi)
        if hi - lo <= 1e-15 * max(1.0, abs(hi)):
            break
    return np.clip(v - tau, 0.0, upper), tau


def kmm_objective(beta: np.ndarray, K: np.ndarray, kappa: np.ndarray) -> float:
    """The KMM objective :math:`\\tfrac12\\beta^\\top K\\beta - \\kappa^\\top\\beta`."""
    return float(0.5 * beta @ (K @ beta) - kappa @ beta)


def _prox_box_sum(z, upper, low, high, rho, theta0):
    """Prox of the feasible set plus the penalty :math:`\\tfrac{\\rho}{2}(\\sum_i b_i)^2`.

    Minimises :math:`\\tfrac12\\lVert b - z\\rVert^2 + \\tfrac{\\rho}{2}(1^\\top b)^2`
    over :math:`\\{0 \\le b \\le B, \\text{low} \\le 1^\\top b \\le \\text{high}\\}`.
    KKT: :math:`b = \\mathrm{clip}(z - \\theta, 0, B)` with
    :math:`\\theta = \\rho\\, 1^\\top b` when the sum lies inside the band, i.e. the
    root of :math:`h(\\theta) = \\theta - \\rho \\sum_i \\mathrm{clip}(z_i - \\theta, 0, B)`,
    increasing and piecewise linear: Newton steps (each exact on the current
    linear piece, warm-started at ``theta0``) inside a shrinking bracket find it.
    Otherwise the sum sits on the nearer bound and :math:`b` is that bound's
    projection.  ``rho = 0`` is :func:`project_box_sum`.  Returns ``b`` and the
    warm start for the next call.

    The prox runs once per iteration of the Nyström solver, so each Newton step
    is a few passes over ``z``; when :math:`\\max_i z_i \\le B` the upper bound
    cannot bind (:math:`\\theta \\ge 0`) and is not evaluated at all.
    """
    if rho <= 0:
        return project_box_sum(z, upper, low, high, theta0)
    upper_binds = float(z.max()) > upper
    lo, hi = 0.0, max(float(z.max()), 0.0) + 1.0  # h(lo) <= 0 < h(hi)
    theta = theta0 if lo < theta0 < hi else 0.0
    b = np.empty_like(z)
    for _ in range(200):
        np.subtract(z, theta, out=b)
        if upper_binds:
            np.clip(b, 0.0, upper, out=b)
            n_free = np.count_nonzero((b > 0) & (b < upper))
        else:
            np.maximum(b, 0.0, out=b)
            n_free = np.count_nonzero(b)
        total = float(b.sum())
        h = theta - rho * total
        if abs(h) <= 1e-12 * max(1.0, abs(theta)):
            break
        if h < 0:
            lo = theta
        else:
            hi = theta
        # the root if theta's linear piece is the right one (slope 1 + rho * n_free)
        cand = theta - h / (1.0 + rho * n_free)
        theta = cand if lo < cand < hi else 0.5 * (lo + hi)
        if hi - lo <= 1e-15 * max(1.0, abs(hi)):
            b = np.clip(z - theta, 0.0, upper)
            total = float(b.sum())
            break
    if low <= total <= high:
        return b, theta
    bound = high if total > high else low
    return project_box_sum(z, upper, bound, bound)[0], theta


def _fista(matvec, kappa, lipschitz, upper, low, high, tol, max_iter, c=0.0):
    """Accelerated proximal gradient with gradient-based adaptive restart.

    FISTA (Beck & Teboulle 2009) with step :math:`1/L`; the momentum is reset
    whenever it points uphill (O'Donoghue & Candès 2015).  With ``c > 0`` the
    objective is split as :math:`[\\tfrac12\\beta^\\top(K - c11^\\top)\\beta -
    \\kappa^\\top\\beta] + [\\tfrac{c}{2}(1^\\top\\beta)^2 + \\iota_C(\\beta)]`:
    the dominant near-constant direction of a Gaussian kernel matrix goes
    into the exactly solvable prox (:func:`_prox_box_sum`) and ``lipschitz``
    must bound :math:`|\\lambda|` of :math:`K - c11^\\top`, which is far
    smaller than :math:`\\lambda_{max}(K)`, so far fewer iterations are
    needed.  Stops when an iteration moves no coordinate by more than
    ``tol * max(1, max beta)``.
    """
    n = kappa.shape[0]
    step = 1.0 / lipschitz
    rho = step * c
    beta, theta = project_box_sum(np.ones(n), upper, low, high)
    z = beta.copy()
    t = 1.0
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        grad = matvec(z) - kappa
        if c:
            grad -= c * float(z.sum())
        new, theta = _prox_box_sum(z - step * grad, upper, low, high, rho, theta)
        delta = new - beta
        if float((z - new) @ delta) > 0:  # restart the momentum
            t = 1.0
            z = new.copy()
        else:
            t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            z = new + ((t - 1.0) / t_new) * delta
            t = t_new
        change = float(np.max(np.abs(delta)))
        beta = new
        if change <= tol * max(1.0, float(np.max(beta))):
            break
    return beta, n_iter


def _deflation(matvec, n: int, rng):
    """``c`` = mean kernel entry and a bound on ``|eig(K - c 11^T)|`` (Lanczos, +5%).

    Returns ``(0, None)`` when it cannot be computed (tiny or non-convergent).
    """
    if n < 20:
        return 0.0, None
    ones = np.ones(n)
    c = float(ones @ matvec(ones)) / n**2
    op = LinearOperator((n, n), dtype=np.float64,
                        matvec=lambda v: matvec(np.ravel(v)) - c * float(np.sum(v)))
    try:
        top = eigsh(op, k=1, which="LM", tol=1e-3, v0=rng.uniform(0.5, 1.5, n),
                    return_eigenvectors=False)
    except ArpackNoConvergence:
        return 0.0, None
    return c, 1.05 * float(np.abs(top).max())


def _polish(beta, K, kappa, upper, low, high, tol=1e-6):
    """Solve the KKT system on the free set identified by ``beta``; keep it if valid."""
    n = beta.shape[0]
    scale = max(1.0, upper)
    at_zero = beta <= tol * scale
    at_upper = beta >= upper - tol * scale
    free = ~(at_zero | at_upper)
    fixed = np.where(at_upper, upper, 0.0)
    best, best_obj = beta, kmm_objective(beta, K, kappa)
    nf = int(free.sum())
    if nf == 0:
        return best
    Kff = K[np.ix_(free, free)]
    rhs = kappa[free] - K[np.ix_(free, ~free)] @ fixed[~free]
    candidates = []
    total = float(beta.sum())
    # sum constraint inactive
    try:
        candidates.append((np.linalg.solve(Kff, rhs), 0.0))
    except np.linalg.LinAlgError:
        pass
    # sum constraint active at the bound it is nearest to
    for bound in (low, high):
        if abs(total - bound) <= 1e-3 * max(1.0, abs(bound)) + tol * n * scale:
            M = np.zeros((nf + 1, nf + 1))
            M[:nf, :nf] = Kff
            M[:nf, nf] = 1.0
            M[nf, :nf] = 1.0
            r = np.append(rhs, bound - float(fixed.sum()))
            try:
                sol = np.linalg.solve(M, r)
            except np.linalg.LinAlgError:
                continue
            candidates.append((sol[:nf], float(sol[nf])))
    for b_free, nu in candidates:
        cand = fixed.copy()
        cand[free] = b_free
        s = float(cand.sum())
        if (np.any(b_free < -1e-12 * scale) or np.any(b_free > upper * (1 + 1e-12))
                or s < low * (1 - 1e-12) - 1e-12 or s > high * (1 + 1e-12) + 1e-12):
            continue
        grad = K @ cand - kappa + nu  # stationarity residual with the sum multiplier
        slack = 1e-7 * max(1.0, float(np.max(np.abs(kappa))))
        if np.any(grad[at_zero] < -slack) or np.any(grad[at_upper] > slack):
            continue
        # nu >= 0 pushes the sum down (upper bound active); nu <= 0 the lower one
        if nu > slack and abs(s - high) > 1e-9 * max(1.0, high):
            continue
        if nu < -slack and abs(s - low) > 1e-9 * max(1.0, low):
            continue
        cand = np.clip(cand, 0.0, upper)
        obj = kmm_objective(cand, K, kappa)
        if obj <= best_obj + 1e-12 * max(1.0, abs(best_obj)):
            best, best_obj = cand, obj
    return best


def _perron_upper_bound(K: np.ndarray, n_iter: int = 50) -> float:
    """Upper bound on the largest eigenvalue of an entrywise non-negative matrix.

    Collatz-Wielandt: :math:`\\lambda_{max}(K) \\le \\max_i (Kx)_i / x_i` for
    every positive ``x``; power iterations from the all-ones vector tighten
    the bound towards :math:`\\lambda_{max}`.
    """
    x = np.ones(K.shape[0])
    best = np.inf
    for _ in range(n_iter):
        y = K @ x
        best = min(best, float(np.max(y / x)))
        x = y / np.linalg.norm(y)
        if not np.all(x > 0):
            return float(np.abs(K).sum(axis=1).max())  # Gershgorin
    return best


def _gauss_block_rowsums(A, C, sigma):
    """``sum_j k(a_i, c_j)`` for every row of ``A``, in blocks of ``C``'s rows."""
    out = np.zeros(A.shape[0])
    for start in range(0, C.shape[0], _BLOCK):
        out += _gauss(_sq_distances(A, C[start:start + _BLOCK]), sigma).sum(axis=1)
    return out


class KMM(BaseEstimator):
    """Kernel mean matching weights (see the module docstring for the maths).

    Huang, Smola, Gretton, Borgwardt & Schölkopf (2007), "Correcting sample
    selection bias by unlabeled data", NIPS 19.

    Parameters
    ----------
    bandwidth : "median" or float, default="median"
        Gaussian :math:`\\sigma` (:math:`k(x,x') = \\exp(-\\lVert x-x'\\rVert^2 /
        2\\sigma^2)`); ``"median"``: median heuristic on the pooled rows (a
        random subsample of 500 of them).
    B : float, default=1000.0
        Upper bound on each :math:`\\beta_i` (the paper's experiments use 1000).
    eps : float or None, default=None
        Half-width of the sum band relative to :math:`n_s`; default
        :math:`(\\sqrt{n_s} - 1)/\\sqrt{n_s}`.
    solver : {"auto", "exact", "nystroem"}, default="auto"
    exact_max_samples : int, default=1000
        ``"auto"`` uses the exact solver up to this many source rows.
    n_components : int, default=200
        Nyström landmarks of the scalable solver.
    tol : float, default=1e-6
        Stop when no coordinate of :math:`\\beta` moves by more than
        ``tol * max(1, max beta)`` in an iteration (the Nyström path uses
        at least 1e-3: its approximation error dominates below that).
    max_iter : int or None, default=None
        Iteration cap; default 20,000 (exact) or 2,000 (Nyström).
    random_state : int, optional
        Seeds the Nyström landmarks and the median heuristic's subsample.

    Attributes
    ----------
    weights_ : ndarray of shape (n_rows,)
        :math:`\\beta` normalised to mean 1 over the source rows; 1 for
        target rows.
    beta_ : ndarray of shape (n_source,)
        The QP solution (unnormalised).
    objective_ : float
        Objective at ``beta_`` (of the approximated QP for ``"nystroem"``).
    solver_ : str
    bandwidth_ : float
    n_iter_ : int

    Example
    -------
    >>> import numpy as np
    >>> from transferkit.domains import stack_domains
    >>> rng = np.random.default_rng(0)
    >>> X, y = stack_domains(rng.normal(size=(50, 2)), np.zeros(50),
    ...                      rng.normal(0.5, 1, (30, 2)))
    >>> kmm = KMM(solver="nystroem", n_components=40, random_state=0).fit(X, y)
    >>> kmm.solver_, round(float(kmm.weights_[:50].mean()), 6)
    ('nystroem', 1.0)
    """

    def __init__(self, bandwidth="median", B: float = 1000.0, eps=None, solver: str = "auto",
                 exact_max_samples: int = 1000, n_components: int = 200, tol: float = 1e-6,
                 max_iter=None, random_state=None):
        self.bandwidth = bandwidth
        self.B = B
        self.eps = eps
        self.solver = solver
        self.exact_max_samples = exact_max_samples
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def _check_params(self, n_s: int):
        if self.solver not in ("auto", "exact", "nystroem"):
            raise TransferKitInputError(
                f"solver must be 'auto', 'exact' or 'nystroem', got {self.solver!r}.")
        upper = _check_positive_float(self.B, "B")
        if self.eps is None:
            eps = (np.sqrt(n_s) - 1.0) / np.sqrt(n_s)
        else:
            if (not isinstance(self.eps, numbers.Real) or isinstance(self.eps, bool)
                    or not np.isfinite(self.eps) or self.eps < 0):
                raise TransferKitInputError(
                    f"eps must be None or a non-negative number, got {self.eps!r}.")
            eps = float(self.eps)
        low, high = n_s * (1.0 - eps), n_s * (1.0 + eps)
        if low > n_s * upper:
            raise TransferKitInputError(
                f"Infeasible KMM constraints: the weights must sum to at least "
                f"{low:.4g} but B * n_source = {n_s * upper:.4g}; increase B or eps."
            )
        tol = _check_positive_float(self.tol, "tol")
        return upper, max(low, 0.0), high, tol

    def fit(self, X, y):
        """Solve the KMM programme for the source rows of ``X`` (tagged ``y``)."""
        with _one_blas_thread():
            return self._fit(X, y)

    def _fit(self, X, y):
        X_arr, info, Xs, Xt = _domains_and_matrix(X, y, "KMM")
        n_s, n_t = Xs.shape[0], Xt.shape[0]
        upper, low, high, tol = self._check_params(n_s)
        exact_max = _check_positive_int(self.exact_max_samples, "exact_max_samples")
        solver = self.solver
        if solver == "auto":
            solver = "exact" if n_s <= exact_max else "nystroem"
        rng = check_random_state(self.random_state)
        if isinstance(self.bandwidth, str):
            if self.bandwidth != "median":
                raise TransferKitInputError(
                    f"bandwidth must be 'median' or a positive number, got {self.bandwidth!r}.")
            sigma = median_heuristic(Xs, Xt, max_samples=MEDIAN_HEURISTIC_ROWS,
                                     random_state=rng)
        else:
            sigma = _check_positive_float(self.bandwidth, "bandwidth")
        if self.max_iter is None:
            max_iter = 20000 if solver == "exact" else 2000
        else:
            max_iter = _check_positive_int(self.max_iter, "max_iter")
        if solver == "exact":
            with _one_blas_thread():
                K = _gauss(_sq_distances(Xs, Xs), sigma)
                np.fill_diagonal(K, 1.0)
                kappa = (n_s / n_t) * _gauss_block_rowsums(Xs, Xt, sigma)
                lipschitz = _perron_upper_bound(K)
                beta, n_iter = _fista(lambda b: K @ b, kappa, max(lipschitz, 1e-12), upper,
                                      low, high, tol, max_iter)
                beta = _polish(beta, K, kappa, upper, low, high)
                objective = kmm_objective(beta, K, kappa)
        else:
            Phi_s, target_sum = self._nystroem(Xs, Xt, sigma, rng)
            diag = np.maximum(1.0 - np.einsum("ij,ij->i", Phi_s, Phi_s, dtype=np.float64), 0.0)
            kappa = (n_s / n_t) * (Phi_s @ target_sum.astype(Phi_s.dtype)).astype(np.float64)

            def matvec(b):
                bf = b.astype(Phi_s.dtype)
                return (Phi_s @ (Phi_s.T @ bf)).astype(np.float64) + diag * b

            c, lipschitz = _deflation(matvec, n_s, rng)
            # |eig(K - c 11^T)| <= lambda_max(K), and lambda_max(K) >= 1'K1 / n = c n: a
            # deflated bound below c n beats the plain one, which is needed only otherwise
            if lipschitz is None or lipschitz >= c * n_s:
                gram = (Phi_s.T @ Phi_s).astype(np.float64)
                plain = float(np.linalg.eigvalsh(gram)[-1]) + float(diag.max())
                if lipschitz is None or plain <= lipschitz:
                    c, lipschitz = 0.0, plain
            beta, n_iter = _fista(matvec, kappa, max(lipschitz, 1e-12), upper, low, high,
                                  max(tol, _NYSTROEM_TOL), max_iter, c=c)
            objective = float(0.5 * beta @ matvec(beta) - kappa @ beta)
        self.beta_ = beta
        self.objective_ = objective
        self.solver_ = solver
        self.bandwidth_ = float(sigma)
        self.n_iter_ = n_iter
        self.weights_, self.normaliser_ = _full_weights(info, beta, "KMM")
        self.n_features_in_ = X_arr.shape[1]
        return self

    def _nystroem(self, Xs, Xt, sigma, rng):
        """Nyström features of the source rows (float32) and the sum of the target rows' ones.

        Only :math:`\\Phi_t^\\top 1 = P^\\top \\sum_j k(L, x^t_j)` (``P`` the
        landmark projection) enters :math:`\\kappa`, so the target rows' kernel
        columns are summed and never multiplied by ``P``.
        """
        m = _check_positive_int(self.n_components, "n_components")
        n_s, n_t = Xs.shape[0], Xt.shape[0]
        m = min(m, n_s + n_t)
        pick = np.sort(rng.choice(n_s + n_t, size=m, replace=False))
        landmarks = np.vstack([Xs[pick[pick < n_s]], Xt[pick[pick >= n_s] - n_s]])
        W = _gauss(_sq_distances(landmarks, landmarks), sigma)
        np.fill_diagonal(W, 1.0)
        with _one_blas_thread():
            evals, evecs = np.linalg.eigh(W)
        keep = evals > 1e-8 * evals[-1]
        proj = evecs[:, keep] / np.sqrt(evals[keep])
        dtype = np.float32
        L = landmarks.astype(dtype)

        def kernel_blocks(A):
            for start in range(0, A.shape[0], _ROW_BLOCK):
                block = A[start:start + _ROW_BLOCK].astype(dtype)
                yield start, _gauss(_sq_distances(block, L), sigma)

        proj_f = proj.astype(dtype)
        Phi_s = np.empty((n_s, proj.shape[1]), dtype=dtype)
        for start, K in kernel_blocks(Xs):
            Phi_s[start:start + K.shape[0]] = K @ proj_f
        column_sums = sum(K.sum(axis=0, dtype=np.float64) for _, K in kernel_blocks(Xt))
        return Phi_s, column_sums @ proj

    def compute_weights(self, X):
        """Not available: KMM is transductive (weights exist only for fitted source rows).

        Raises
        ------
        NotImplementedError
            Always.  Use :class:`~transferkit.instance_based.KLIEP`,
            :class:`~transferkit.instance_based.ULSIF` or
            :class:`~transferkit.instance_based.DiscriminativeWeights` for a
            ratio that extends to new rows.
        """
        check_is_fitted(self, "beta_")
        raise NotImplementedError(
            "KMM is transductive: its weights are defined only for the source rows seen "
            "in fit (weights_). Use KLIEP, ULSIF, RuLSIF or DiscriminativeWeights for "
            "weights of new rows."
        )
