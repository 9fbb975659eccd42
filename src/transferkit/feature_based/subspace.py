"""Subspace Alignment (SA).

Fernando, Habrard, Sebban & Tuytelaars, "Unsupervised Visual Domain
Adaptation Using Subspace Alignment", ICCV 2013.

The maths
---------
Let :math:`X_S, X_T \\in \\mathbb{R}^{d \\times k}` hold the ``k`` leading
principal directions (orthonormal columns) of the source and of the target
rows.  SA aligns the source basis with the target one through

.. math::
    M = X_S^\\top X_T = \\arg\\min_M \\lVert X_S M - X_T \\rVert_F ,

and represents source rows in the target-aligned coordinates
:math:`X_a = X_S M` and target rows in the target coordinates :math:`X_T`:

.. math::
    x_s \\mapsto (x_s - \\mu_s) X_S M, \\qquad x_t \\mapsto (x_t - \\mu_t) X_T .

Each domain is centred on its own mean (PCA centring; this also aligns
the means).  New rows at ``transform`` time are target rows.  Several
source domains are pooled into one source.  The map does not depend on the
sign of the source directions; the target directions' signs are fixed so
that each one's largest-magnitude entry is positive.

Choice of ``k``.  The paper bounds ``k`` through the stability of
:math:`M`; we use a simple rule instead: ``n_components=None`` takes the
smallest ``k`` whose target principal directions explain at least a share
``variance_kept`` (default 90%) of the target variance, capped by the ranks
of both domains.  PCA comes from
the eigendecomposition of the ``d x d`` covariance when ``d <= n`` (linear
in ``n``) and from an SVD of the centred rows otherwise.

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains
>>> from transferkit.feature_based import SubspaceAlignment
>>> rng = np.random.default_rng(0)
>>> X, y = stack_domains(rng.normal(size=(50, 4)), np.zeros(50), rng.normal(size=(30, 4)))
>>> sa = SubspaceAlignment(n_components=2).fit(X, y)
>>> sa.fit_transform(X, y).shape, sa.alignment_matrix_.shape
((80, 2), (2, 2))
"""

from __future__ import annotations

import numbers

import numpy as np

from transferkit.base import DomainAdapter, map_rows
from transferkit.domains import DomainInfo, domain_rows
from transferkit.feature_based._kernels import blas_threads
from transferkit.feature_based._moments import mean_and_scatter
from transferkit.validation import TransferKitInputError

__all__ = ["SubspaceAlignment"]


def _pca(X: np.ndarray):
    """Mean, principal directions (d x r, descending) and variances of ``X``."""
    n, d = X.shape
    if d <= n:
        mean, S = mean_and_scatter(X)
        lam, U = np.linalg.eigh(S / n)
        lam, U = lam[::-1], U[:, ::-1]
    else:
        mean = X.mean(axis=0)
        _, s, Vt = np.linalg.svd(X - mean, full_matrices=False)
        lam, U = s**2 / n, Vt.T
    rank = int(np.sum(lam > 1e-10 * max(lam[0], np.finfo(float).tiny)))
    return mean, U[:, :rank], np.maximum(lam[:rank], 0.0)


class SubspaceAlignment(DomainAdapter):
    """Subspace Alignment (Fernando et al., ICCV 2013); see the module docstring.

    Parameters
    ----------
    n_components : int or None, default=None
        Dimension ``k`` of the subspaces; ``None`` = smallest ``k`` explaining
        a share ``variance_kept`` of the target variance.
    variance_kept : float in (0, 1], default=0.9
        Used when ``n_components`` is None.

    Attributes
    ----------
    source_components_, target_components_ : ndarray (d, k)
        :math:`X_S`, :math:`X_T`.
    alignment_matrix_ : ndarray (k, k)
        :math:`M = X_S^\\top X_T`.
    source_mean_, target_mean_ : ndarray (d,)
    n_components_ : int
    """

    def __init__(self, n_components=None, variance_kept: float = 0.9):
        self.n_components = n_components
        self.variance_kept = variance_kept

    def _fit(self, X: np.ndarray, info: DomainInfo) -> None:
        # d x d eigendecompositions: one BLAS thread is fastest (see blas_threads).
        with blas_threads(1):
            self._fit_one_thread(X, info)

    def _fit_one_thread(self, X: np.ndarray, info: DomainInfo) -> None:
        k = self.n_components
        if k is not None and not (isinstance(k, numbers.Integral) and not isinstance(k, bool)
                                  and k >= 1):
            raise TransferKitInputError(
                f"n_components must be a positive integer or None, got {k!r}."
            )
        share_kept = self.variance_kept
        if (not isinstance(share_kept, numbers.Real) or isinstance(share_kept, bool)
                or not 0 < share_kept <= 1):
            raise TransferKitInputError(
                f"variance_kept must be a number in (0, 1], got {share_kept!r}."
            )
        mu_s, U_s, _ = _pca(domain_rows(X, info.is_source))
        mu_t, U_t, var_t = _pca(domain_rows(X, info.is_target))
        max_k = min(U_s.shape[1], U_t.shape[1])
        if max_k == 0:
            raise TransferKitInputError(
                "Subspace alignment needs at least 2 distinct rows in each domain (the "
                "source or the target rows have no variance)."
            )
        if k is None:
            share = np.cumsum(var_t) / var_t.sum()
            k = min(int(np.searchsorted(share, share_kept - 1e-12) + 1), max_k)
        elif k > max_k:
            raise TransferKitInputError(
                f"n_components={k} exceeds the rank of the data: the source subspace has "
                f"dimension {U_s.shape[1]} and the target subspace {U_t.shape[1]}; use at "
                f"most {max_k}."
            )
        U_s, U_t = U_s[:, :k], U_t[:, :k]
        idx = np.argmax(np.abs(U_t), axis=0)
        U_t = U_t * np.where(U_t[idx, np.arange(k)] < 0, -1.0, 1.0)
        self.source_mean_, self.target_mean_ = mu_s, mu_t
        self.source_components_, self.target_components_ = U_s, U_t
        self.alignment_matrix_ = U_s.T @ U_t
        self.n_components_ = k

    def _transform(self, X: np.ndarray, is_target: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], self.n_components_))
        U_t = self.target_components_
        map_rows(X, is_target, U_t, -(self.target_mean_ @ U_t), out)
        U_a = self.source_components_ @ self.alignment_matrix_
        map_rows(X, ~is_target, U_a, -(self.source_mean_ @ U_a), out)
        return out
