"""Transfer Component Analysis (TCA).

Pan, Tsang, Kwok & Yang, "Domain Adaptation via Transfer Component
Analysis", IEEE Transactions on Neural Networks 22(2), 2011, 199-210.

The maths
---------
Stack the ``n = n_s + n_t`` training rows, let :math:`K` be their kernel
matrix, :math:`H = I - \\tfrac1n 1 1^\\top` the centring matrix and
:math:`L = e e^\\top` with :math:`e_i = 1/n_s` on source rows and
:math:`-1/n_t` on target rows (so :math:`\\operatorname{tr}(K L)` is the
empirical MMD² between the domains).  TCA looks for a projection
:math:`W \\in \\mathbb{R}^{n \\times m}` of the empirical kernel map that
keeps the embedded MMD small and the embedded variance large,

.. math::
    \\min_W \\operatorname{tr}(W^\\top K L K W) + \\mu \\operatorname{tr}(W^\\top W)
    \\quad\\text{s.t.}\\quad W^\\top K H K W = I,

whose solution is the ``m`` leading eigenvectors of
:math:`(K L K + \\mu I)^{-1} K H K`, i.e. of the symmetric-definite pencil
:math:`K H K w = \\lambda (K L K + \\mu I) w`.  Rows are embedded as
:math:`K W` and new rows as :math:`K(X_{new}, X_{train}) W` (the paper's
out-of-sample rule), both minus the training rows' mean embedding.
Every row, source or target, uses the same map.

Centring and scale.  The embedding is shifted so that the training rows
have mean zero (``offset_``; :math:`K W` is only defined up to a shift,
and a far-off-centre embedding slows and biases regularised downstream
models).  We rescale each eigenvector so that its embedded coordinate has
unit variance over the training rows (:math:`w^\\top K H K w = n`, the
paper's constraint up to the constant ``n``): the embedding's scale then
does not depend on ``n``, which suits regularised downstream models.
Components whose eigenvalue is numerically zero (``<= 1e-10`` times the
largest) are dropped, so ``n_components_`` can be below ``n_components``
(e.g. the linear kernel has rank at most ``d``).  Signs are fixed so that
each embedded column's largest-magnitude entry is positive.

Exact path (``method="exact"``, or ``"auto"`` with ``n <= 1000`` rows).
Dense ``n x n`` matrices.  Since :math:`K L K = (K e)(K e)^\\top` has rank
one, :math:`(K L K + \\mu I)^{-1/2}` has a closed form and the pencil becomes
a standard symmetric eigenproblem (LAPACK up to 1,500 rows, Lanczos to
machine precision above): :math:`O(n^3)` time (the product :math:`K K`),
:math:`O(n^2)` memory; refused above 10,000 rows (at 16,000 rows the dense products already crashed
OpenBLAS here).

Nystroem path (``method="nystroem"``, or ``"auto"`` with ``n > 1000``).
``n_landmarks`` rows are drawn (half source, half target, ``random_state``)
and :math:`K` is replaced by its Nystroem approximation
:math:`\\hat K = C K_{ZZ}^{+} C^\\top = \\Phi\\Phi^\\top` with
:math:`C = K(X, Z)`.  TCA is then solved *exactly for* :math:`\\hat K`:
every eigenvector with a non-zero eigenvalue lies in the range of
:math:`\\hat K`, and writing :math:`\\Phi^\\top\\Phi = Q\\Sigma Q^\\top`,
:math:`F = \\Phi Q \\Sigma^{1/2}` (``n x r``, :math:`r \\le m`) the pencil
becomes the ``r x r`` problem

.. math::
    F^\\top H F g = \\lambda (F^\\top e\\, e^\\top F + \\mu I) g,
    \\qquad \\text{embedding } F g = K(X, Z)\\, K_{ZZ}^{-1/2} Q \\Sigma^{1/2} g,

with the same eigenvalues as the exact problem on :math:`\\hat K`.  Cost:
:math:`O(n m (d + m))` time and :math:`O(n m)` memory (the kernel is
evaluated in row blocks; :math:`C` is cached, in float32 when larger
than 256 MB, so a fit evaluates the kernel once).  When the landmarks are all rows, :math:`\\hat K = K` and the two
paths agree (tested to 1e-6).  With fewer landmarks the error is that of
the Nystroem approximation of :math:`K`.  Measured: on 3-class shifted
Gaussian blobs (2,000 + 2,000 rows, d = 10) the downstream target accuracy
of 500 and of 200 landmarks was within 0.1 point of the exact path; on the
benchmark's covariate-shift task (n = 2,000 per domain, d = 64) within 2
points; the tests assert 2 points and leading eigenvalues within 5% for
100 landmarks on 800 rows.

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains
>>> from transferkit.feature_based import TCA
>>> rng = np.random.default_rng(0)
>>> X, y = stack_domains(rng.normal(0, 1, (60, 3)), rng.integers(0, 2, 60),
...                      rng.normal(1, 1, (40, 3)))
>>> Z = TCA(n_components=2, random_state=0).fit_transform(X, y)
>>> Z.shape
(100, 2)
>>> np.allclose(Z.var(axis=0), 1.0)
True
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg

from transferkit.base import DomainAdapter
from transferkit.domains import DomainInfo
from transferkit.feature_based._kernels import (
    KernelSpec,
    NystroemBasis,
    check_positive_float,
    check_positive_int,
    choose_landmarks,
    resolve_kernel,
    symmetric_eigh,
)
from transferkit.validation import TransferKitInputError

__all__ = ["TCA"]

#: ``method="auto"`` uses the exact path up to this many training rows.
EXACT_MAX_ROWS = 1000
#: ``method="exact"`` refuses more rows than this (dense n x n matrices).
_EXACT_HARD_LIMIT = 10000
_EIG_TOL = 1e-10
#: Above this many rows the exact eigenproblem is solved by Lanczos iterations.
_DENSE_MAX = 1500


def mmd_vector(is_target: np.ndarray) -> np.ndarray:
    """The vector ``e`` with ``L = e e^T`` (1/n_s on source, -1/n_t on target)."""
    n_t = int(is_target.sum())
    n_s = is_target.size - n_t
    return np.where(is_target, -1.0 / n_t, 1.0 / n_s)


def solve_pencil(A: np.ndarray, BT: np.ndarray, mu: float, k: int, n: int):
    """Leading eigenpairs of ``A g = lam (BT BT^T + mu I) g``, rescaled.

    Returns ``(eigenvalues, G)`` with eigenvalues descending, numerically-zero
    ones dropped, and each column scaled so that ``g^T A g = n``.
    """
    r = A.shape[0]
    k = min(k, r)
    # B = mu I + BT BT^T has the closed-form inverse square root
    # mu^{-1/2} (I - U U^T) + U diag((mu + s^2)^{-1/2}) U^T  (BT = U S V^T, thin SVD),
    # which turns the pencil into a standard symmetric eigenproblem.
    U, s, _ = np.linalg.svd(BT, full_matrices=False)
    U = U[:, s > 0]
    s = s[s > 0]
    a = 1.0 / np.sqrt(mu)
    UD = U * (1.0 / np.sqrt(mu + s**2) - a)  # inv_sqrt = a I + UD U^T
    AU = A @ U
    core = U.T @ AU
    if r > _DENSE_MAX and k <= r // 10:
        # Large exact problems: Lanczos on C = inv_sqrt A inv_sqrt as an operator
        # (no further r x r matrix is formed).
        def matvec(v):
            v = v.reshape(r, -1)
            w = UD.T @ v
            return a * a * (A @ v) + a * (AU @ w) + UD @ (a * (AU.T @ v) + core @ w)

        op = scipy.sparse.linalg.LinearOperator((r, r), matvec=matvec, matmat=matvec,
                                                dtype=np.float64)
        lam, V = scipy.sparse.linalg.eigsh(op, k=k, which="LA", tol=0.0,
                                           v0=np.full(r, 1.0 / np.sqrt(r)))
        order = np.argsort(lam)
        lam, V = lam[order], V[:, order]
    else:
        C = a * a * A
        cross = a * (AU @ UD.T)
        C += cross
        C += cross.T
        C += UD @ core @ UD.T
        lam, V = symmetric_eigh(C, subset=[r - k, r - 1])
    G = a * V + UD @ (U.T @ V)
    lam, G = lam[::-1], G[:, ::-1]
    keep = lam > _EIG_TOL * max(lam[0], np.finfo(float).tiny)
    if not keep.any():
        raise TransferKitInputError(
            "All transfer components are numerically zero: the kernel matrix carries no "
            "variance (constant features?)."
        )
    lam, G = lam[keep], G[:, keep]
    # eigh normalises g^T B g = 1, so g^T A g = lam: rescale to g^T A g = n.
    return lam, G * np.sqrt(n / lam)


def fix_signs(Z: np.ndarray) -> np.ndarray:
    """Sign per column making each column's largest-magnitude entry positive."""
    idx = np.argmax(np.abs(Z), axis=0)
    return np.where(Z[idx, np.arange(Z.shape[1])] < 0, -1.0, 1.0)


class _ExactBasis:
    """The exact path's 'features': the kernel matrix itself (``F = K``)."""

    def __init__(self, K: np.ndarray):
        self.K = (K + K.T) / 2.0

    def features_t_dot(self, V: np.ndarray) -> np.ndarray:
        return self.K @ V

    def embed(self, G: np.ndarray) -> np.ndarray:
        return self.K @ G


class _KernelComponents(DomainAdapter):
    """Shared machinery of TCA and JDA (exact and Nystroem paths)."""

    def _check_params(self, n: int):
        self._k = check_positive_int(self.n_components, "n_components")
        self._mu = check_positive_float(self.mu, "mu")
        self._m = check_positive_int(self.n_landmarks, "n_landmarks")
        if self.method not in ("auto", "exact", "nystroem"):
            raise TransferKitInputError(
                f"method must be 'auto', 'exact' or 'nystroem', got {self.method!r}."
            )
        method = self.method
        if method == "auto":
            method = "exact" if n <= EXACT_MAX_ROWS else "nystroem"
        if method == "exact" and n > _EXACT_HARD_LIMIT:
            gb = 3 * n * n * 8 / 2**30
            raise TransferKitInputError(
                f"method='exact' with {n} rows needs dense {n}x{n} matrices (about {gb:.0f} "
                "GB); use method='nystroem' (or 'auto')."
            )
        return method

    def _prepare(self, X: np.ndarray, info: DomainInfo, V: np.ndarray):
        """Resolve the kernel and set up the pencil's 'features' ``F``.

        ``F = K`` on the exact path and the Nystroem features on the other.
        Returns ``(basis, A, FtV)`` with ``A = F^T H F`` and ``FtV = F^T V``;
        ``basis`` offers ``features_t_dot(E)`` and ``embed(G)``.  Sets
        ``basis_``, ``method_``, ``bandwidth_``.
        """
        n = X.shape[0]
        method = self._check_params(n)
        spec = resolve_kernel(self.kernel, self.bandwidth, X, self.random_state)
        self.bandwidth_ = spec.bandwidth
        self.method_ = method
        if method == "exact":
            basis = _ExactBasis(spec.block(X, X))
            self.basis_ = X.copy()
            A = basis.K.T @ basis.K  # K K (symmetric rank-k update)
            sums = basis.K.sum(axis=0)
            FtV = basis.features_t_dot(V)
        else:
            rows = choose_landmarks(info.is_target, self._m, self.random_state)
            basis = NystroemBasis(spec).fit(X, X[rows], V)
            self.basis_ = X[rows].copy()
            self.landmark_indices_ = rows
            A = np.diag(basis.sigma**2)  # F^T F = Sigma^2
            sums, FtV = basis.column_sums, basis.projected
        A -= np.outer(sums, sums) / n
        return basis, A, FtV

    def _solve(self, basis, A, FtE, n):
        """Solve the pencil for ``F^T E`` (E: mismatch vectors); return the embedding."""
        lam, G = solve_pencil(A, FtE, self._mu, self._k, n)
        Z = basis.embed(G)
        # Centre on the training rows' mean (the paper's K W is defined up to a
        # constant shift; an off-centre embedding hampers regularised models).
        offset = Z.mean(axis=0)
        Z -= offset
        signs = fix_signs(Z)
        Z *= signs
        G = G * signs
        self.offset_ = offset * signs
        self.eigenvalues_ = lam
        self.n_components_ = lam.size
        self.coef_ = G if isinstance(basis, _ExactBasis) else basis.to_features @ G
        return Z

    def fit(self, X, y):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None, **fit_params):
        X_arr, info = self._validate_fit(X, y)
        Z = self._fit(X_arr, info)
        self.n_features_in_ = X_arr.shape[1]
        return Z

    def _transform(self, X: np.ndarray, is_target: np.ndarray) -> np.ndarray:
        spec = KernelSpec(self.kernel, self.bandwidth_)
        return spec.project(X, self.basis_, self.coef_) - self.offset_


class TCA(_KernelComponents):
    """Transfer Component Analysis (Pan et al., IEEE TNN 2011); see the module docstring.

    Parameters
    ----------
    n_components : int, default=20
        Number of transfer components ``m`` (upper bound; numerically-zero
        components are dropped).
    kernel : {"gaussian", "mixture", "linear"}, default="gaussian"
        Kernel of :mod:`transferkit.shift.kernels`.
    bandwidth : "median" or float, default="median"
        Gaussian bandwidth; the median heuristic on the training rows.
    mu : float, default=1.0
        Trade-off :math:`\\mu > 0` between the MMD term and the complexity
        term :math:`\\operatorname{tr}(W^\\top W)`.
    method : {"auto", "exact", "nystroem"}, default="auto"
        ``"auto"``: exact for at most 1,000 training rows, Nystroem above.
    n_landmarks : int, default=500
        Landmarks of the Nystroem path (all rows when ``n_landmarks >= n``).
    random_state : int, RandomState or None
        Seeds the landmark draw and the median heuristic's subsample.

    Attributes
    ----------
    eigenvalues_ : ndarray (n_components_,)
        Leading eigenvalues of :math:`(KLK + \\mu I)^{-1} KHK`.
    coef_ : ndarray (n_basis, n_components_)
        New rows are embedded as ``k(X_new, basis_) @ coef_``.
    offset_ : ndarray (n_components_,)
        Subtracted from ``k(X_new, basis_) @ coef_`` (training-row mean).
    basis_ : ndarray (n_basis, d)
        Training rows (exact) or landmarks (Nystroem).
    method_ : str
        Path used.
    bandwidth_ : float or None
    n_components_ : int
    """

    def __init__(self, n_components: int = 20, kernel: str = "gaussian", bandwidth="median",
                 mu: float = 1.0, method: str = "auto", n_landmarks: int = 500,
                 random_state=None):
        self.n_components = n_components
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.mu = mu
        self.method = method
        self.n_landmarks = n_landmarks
        self.random_state = random_state

    def _fit(self, X: np.ndarray, info: DomainInfo) -> np.ndarray:
        e = mmd_vector(info.is_target)[:, None]
        basis, A, FtE = self._prepare(X, info, e)
        return self._solve(basis, A, FtE, X.shape[0])
