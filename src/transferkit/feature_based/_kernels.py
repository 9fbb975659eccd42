"""Private kernel helpers of the feature-based family: blocked kernel evaluation,
landmark choice and the Nystroem feature map used by TCA and JDA.

Nystroem map
------------
With landmarks :math:`Z` (``m`` rows), :math:`C = K(X, Z)` and
:math:`K_{ZZ} = U \\Lambda U^\\top`, the Nystroem approximation of the kernel
matrix is

.. math::
    \\hat K = C K_{ZZ}^{+} C^\\top = \\Phi \\Phi^\\top, \\qquad
    \\Phi = C\\, U_r \\Lambda_r^{-1/2},

where :math:`r` keeps the eigenvalues above ``rcond * max(Lambda)``.
:class:`NystroemBasis` also diagonalises :math:`G = \\Phi^\\top \\Phi = Q \\Sigma Q^\\top`
(the non-zero eigenvalues of :math:`\\hat K` are :math:`\\Sigma`) and exposes
the rotated, rescaled features :math:`F = \\Phi Q \\Sigma^{1/2} = C P`, for which
:math:`F F^\\top = \\hat K^2` and :math:`F^\\top F = \\Sigma^2`.  TCA and JDA on
:math:`\\hat K` reduce to an ``r x r`` eigenproblem in these features (see
:mod:`transferkit.feature_based.tca`).  When the landmarks are all training
rows, :math:`\\hat K = K` (up to the eigenvalues dropped by ``rcond``).
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg
from sklearn.utils import check_random_state
from threadpoolctl import ThreadpoolController

from transferkit.shift.kernels import KERNELS, MIXTURE_SCALES, median_heuristic
from transferkit.validation import TransferKitInputError, _suggest

_CONTROLLER = None


def blas_threads(limit):
    """Context manager limiting the BLAS thread pools to ``limit`` threads (``None``: as is).

    Same effect as ``threadpoolctl.threadpool_limits(limit, user_api="blas")``,
    but the loaded libraries are inspected once per process (a cached
    :class:`threadpoolctl.ThreadpoolController`) instead of on every call.
    Small LAPACK calls (e.g. a 64 x 64 ``eigh``) run on one thread: on a loaded
    machine a multi-threaded BLAS made them up to 100x slower.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=limit, user_api="blas")


#: Bytes of one kernel block (rows x landmarks x 8) kept in memory at a time.
_BLOCK_BYTES = 64 * 2**20
#: Above this many bytes (float64) the Nystroem features are cached in float32.
_CACHE_FLOAT64_BYTES = 256 * 2**20


def _kernel_block(A, Bt, a_sq, b_sq, kernel, gammas):
    """``k(A_i, B_j)`` from ``A``, ``B^T`` and the squared row norms (float64).

    The kernels are those of :mod:`transferkit.shift.kernels` (same names and
    formulas: Gaussian, mixture of Gaussians at ``MIXTURE_SCALES``, linear).
    """
    G = A @ Bt
    if kernel == "linear":
        return G
    G *= -2.0
    G += a_sq[:, None]
    G += b_sq[None, :]
    np.maximum(G, 0.0, out=G)  # squared distances
    if len(gammas) == 1:
        G *= -gammas[0]
        return np.exp(G, out=G)
    K = np.zeros_like(G)
    tmp = np.empty_like(G)
    for gamma in gammas:
        np.multiply(G, -gamma, out=tmp)
        K += np.exp(tmp, out=tmp)
    K /= len(gammas)
    return K


def symmetric_eigh(M: np.ndarray, subset=None):
    """Eigendecomposition (ascending) of the symmetric part of ``M``.

    ``subset = [lo, hi]`` asks for the eigenpairs ``lo..hi`` (ascending
    order).
    Runs LAPACK single-threaded up to 1,500 rows: for such matrices the
    multi-threaded OpenBLAS routines spend far more CPU time than they save,
    and stall on a busy machine.
    """
    r = M.shape[0]
    M = (M + M.T) / 2.0
    with blas_threads(1 if r <= 1500 else None):
        if subset is None:
            return np.linalg.eigh(M)
        return scipy.linalg.eigh(M, subset_by_index=subset, driver="evr")


class KernelSpec:
    """A resolved kernel: name and Gaussian coefficients (bandwidth fixed)."""

    def __init__(self, kernel: str, bandwidth: float | None):
        self.kernel = kernel
        self.bandwidth = bandwidth
        if kernel == "gaussian":
            self.gammas = (1.0 / (2.0 * bandwidth**2),)
        elif kernel == "mixture":
            self.gammas = tuple(1.0 / (2.0 * (bandwidth * s) ** 2) for s in MIXTURE_SCALES)
        else:
            self.gammas = ()

    def block(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Dense kernel matrix ``k(A_i, B_j)`` in float64."""
        return _kernel_block(A, np.array(B.T), np.einsum("ij,ij->i", A, A),
                             np.einsum("ij,ij->i", B, B), self.kernel, self.gammas)

    def blocks(self, X: np.ndarray, B: np.ndarray):
        """Yield ``(row_slice, k(X[rows], B))`` over row blocks of ``X``."""
        Bt = np.array(B.T)
        b_sq = np.einsum("ij,ij->i", B, B)
        for rows in _row_slices(X.shape[0], B.shape[0]):
            A = X[rows]
            yield rows, _kernel_block(A, Bt, np.einsum("ij,ij->i", A, A), b_sq,
                                      self.kernel, self.gammas)

    def project(self, X: np.ndarray, B: np.ndarray, coef: np.ndarray) -> np.ndarray:
        """``k(X, B) @ coef`` computed in row blocks (never the full kernel)."""
        out = np.empty((X.shape[0], coef.shape[1]), dtype=np.float64)
        for rows, Kb in self.blocks(X, B):
            out[rows] = Kb @ coef
        return out


def resolve_kernel(kernel, bandwidth, X: np.ndarray, random_state) -> KernelSpec:
    """Check ``kernel``/``bandwidth`` and apply the median heuristic if asked."""
    if not isinstance(kernel, str) or kernel not in KERNELS:
        hint = _suggest(kernel, KERNELS) if isinstance(kernel, str) else ""
        raise TransferKitInputError(
            f"Unknown kernel {kernel!r}; choose one of {list(KERNELS)}.{hint}"
        )
    if kernel == "linear":
        return KernelSpec(kernel, None)
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise TransferKitInputError(
                f"Unknown bandwidth {bandwidth!r}; pass 'median' (the median heuristic) "
                "or a positive number."
            )
        bandwidth = median_heuristic(X, max_samples=1000, random_state=random_state)
    bandwidth = check_positive_float(bandwidth, "bandwidth")
    return KernelSpec(kernel, bandwidth)


def check_positive_int(value, name: str, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    extra = " or None" if allow_none else ""
    raise TransferKitInputError(f"{name} must be a positive integer{extra}, got {value!r}.")


def check_nonnegative_int(value, name: str) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise TransferKitInputError(f"{name} must be a non-negative integer, got {value!r}.")


def check_positive_float(value, name: str, allow_zero: bool = False) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
        if np.isfinite(value) and (value > 0 or (allow_zero and value == 0)):
            return value
    bound = ">= 0" if allow_zero else "> 0"
    raise TransferKitInputError(f"{name} must be a finite number {bound}, got {value!r}.")


def choose_landmarks(is_target: np.ndarray, n_landmarks: int, random_state) -> np.ndarray:
    """Row indices of the landmarks, drawn without replacement, half from each side.

    Half of the landmarks come from the source rows and half from the target
    rows (a side with too few rows gives all of them and the other side
    fills up), so a small target is not drowned by a large source.  When
    ``n_landmarks >= n`` every row is a landmark (in row order).
    """
    n = is_target.shape[0]
    if n_landmarks >= n:
        return np.arange(n)
    rng = check_random_state(random_state)
    src, tgt = np.flatnonzero(~is_target), np.flatnonzero(is_target)
    n_tgt = min(tgt.size, n_landmarks // 2)
    n_src = min(src.size, n_landmarks - n_tgt)
    n_tgt = n_landmarks - n_src
    picked = np.concatenate([rng.choice(src, n_src, replace=False),
                             rng.choice(tgt, n_tgt, replace=False)])
    return np.sort(picked)


class NystroemBasis:
    """Nystroem features of the training rows (see the module docstring).

    ``fit`` makes one pass over row blocks of :math:`C = K(X, Z)`,
    accumulating :math:`C^\\top C`, :math:`C^\\top 1` and :math:`C^\\top V`
    for the given vectors ``V``, and caches :math:`C` (float32 when it
    exceeds 256 MB).  The features :math:`F = C P` (``P`` = ``to_features``,
    ``m x r``) are never formed: only :math:`F^\\top V = P^\\top C^\\top V`
    (``r x c``) and embeddings :math:`C (P g)` (``n x k``) are needed; with
    the float32 cache these products run in float32 (relative error about
    1e-6, far below the Nystroem approximation error).

    Attributes after :meth:`fit`: ``landmarks`` (m x d), ``sigma``
    (eigenvalues :math:`\\Sigma` of :math:`\\hat K`, descending, so
    :math:`F^\\top F = \\Sigma^2`), ``to_features`` (``P``), ``column_sums``
    (:math:`F^\\top 1`), ``projected`` (:math:`F^\\top V`).
    """

    def __init__(self, spec: KernelSpec, rcond: float = 1e-10):
        self.spec = spec
        self.rcond = rcond

    def fit(self, X: np.ndarray, landmarks: np.ndarray, V: np.ndarray) -> NystroemBasis:
        self.landmarks = landmarks
        lam, U = symmetric_eigh(self.spec.block(landmarks, landmarks))
        keep = lam > self.rcond * max(lam[-1], np.finfo(float).tiny)
        if not keep.any():
            raise TransferKitInputError(
                "The kernel matrix of the landmarks is zero: the features are constant "
                "or the bandwidth is degenerate."
            )
        R = U[:, keep] / np.sqrt(lam[keep])  # K_mm^{-1/2} on its range
        n, m = X.shape[0], landmarks.shape[0]
        dtype = np.float64 if n * m * 8 <= _CACHE_FLOAT64_BYTES else np.float32
        self._C = np.empty((n, m), dtype=dtype)
        CtC = np.zeros((m, m))
        CtV = np.zeros((m, V.shape[1] + 1))
        for rows, Cb in self.spec.blocks(X, landmarks):
            CtC += Cb.T @ Cb
            CtV[:, 0] += Cb.sum(axis=0)
            CtV[:, 1:] += Cb.T @ V[rows]
            self._C[rows] = Cb
        sig, Q = symmetric_eigh(R.T @ CtC @ R)  # G = Phi^T Phi, Phi = C R
        keep = sig > self.rcond * max(sig[-1], np.finfo(float).tiny)
        sig, Q = sig[keep][::-1], Q[:, keep][:, ::-1]
        self.sigma = sig
        self.to_features = R @ (Q * np.sqrt(sig))  # F = Phi Q Sigma^{1/2} = C P
        FtV = self.to_features.T @ CtV
        self.column_sums, self.projected = FtV[:, 0], FtV[:, 1:]
        return self

    def features_t_dot(self, V: np.ndarray) -> np.ndarray:
        """:math:`F^\\top V` for an ``n x c`` matrix ``V`` (blocked over rows)."""
        C = self._C
        CtV = np.asarray(C.T @ V.astype(C.dtype, copy=False), dtype=np.float64)
        return self.to_features.T @ CtV

    def embed(self, G: np.ndarray) -> np.ndarray:
        """:math:`F G` (``n x k``) for feature-space coefficients ``G`` (``r x k``)."""
        C = self._C
        return np.asarray(C @ (self.to_features @ G).astype(C.dtype, copy=False),
                          dtype=np.float64)


def _row_slices(n: int, width: int):
    step = max(1, _BLOCK_BYTES // (8 * max(1, width)))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))
