"""CORrelation ALignment (CORAL).

Sun, Feng & Saenko, "Return of Frustratingly Easy Domain Adaptation",
AAAI 2016.

The maths
---------
With source and target covariance estimates :math:`C_s, C_t` (``d x d``),
CORAL whitens the source rows and re-colours them with the target
covariance:

.. math::
    A = C_s^{-1/2} C_t^{1/2}, \\qquad
    x_s \\mapsto (x_s - \\mu_s) A + \\mu_t ,

so that :math:`A^\\top C_s A = C_t` (:math:`A` is the paper's closed form;
matrix powers via the symmetric eigendecomposition).  Target rows, and new
rows at ``transform`` time, are left unchanged.

Covariances.  The paper uses :math:`\\operatorname{cov} + I` on
standardised features.  We estimate each domain's covariance with
automatic shrinkage, ``shrinkage="ledoit_wolf"`` (default; Ledoit & Wolf
2004, "A well-conditioned estimator for large-dimensional covariance
matrices", J. Multivariate Anal.) or ``"oas"`` (Chen, Wiesel, Eldar & Hero
2010, oracle approximating shrinkage), both from :mod:`sklearn.covariance`
(shrinkage towards :math:`\\tfrac{\\operatorname{tr} S}{d} I`, intensity
chosen from the data), or ``None`` for the empirical (maximum-likelihood,
divide-by-``n``) covariance.  ``reg`` (default ``None`` = 0) adds a fixed
multiple of the identity after that; ``shrinkage=None, reg=1.0`` is the
paper's estimator.  Eigenvalues below ``1e-10`` times the largest are
raised to that floor before the inverse square root (singular data).

Means.  The paper standardises features, so its map is linear; we also
move the source mean onto the target mean (``align_means=True``,
default), which CORAL's second-order alignment leaves untouched otherwise.

Several source domains are pooled into one source.

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains
>>> from transferkit.feature_based import CORAL
>>> rng = np.random.default_rng(0)
>>> X, y = stack_domains(rng.normal(0, 1, (200, 2)), np.zeros(200),
...                      rng.normal(0, 1, (300, 2)) * [3.0, 0.5] + 1.0)
>>> coral = CORAL(shrinkage=None).fit(X, y)
>>> Z = coral.fit_transform(X, y)
>>> np.allclose(np.cov(Z[:200].T, bias=True), coral.target_covariance_)
True
>>> np.allclose(coral.transform(X[200:]), X[200:])  # new rows are target rows
True
"""

from __future__ import annotations

import numpy as np
from sklearn.covariance import ledoit_wolf, oas

from transferkit.base import DomainAdapter, map_rows
from transferkit.domains import DomainInfo, domain_rows
from transferkit.feature_based._kernels import blas_threads, check_positive_float
from transferkit.feature_based._moments import centred_row_norms, mean_and_scatter
from transferkit.validation import TransferKitInputError

__all__ = ["CORAL"]

_FLOOR = 1e-10
_SHRINKAGE = ("ledoit_wolf", "oas", None)


def _ledoit_wolf(S: np.ndarray, n: int, row_sq_norms: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf shrunk covariance from the scatter matrix of centred rows.

    The formulas of ``sklearn.covariance.ledoit_wolf(Xc, assume_centered=True)``
    (for ``1 < d <= 1000``, one feature block there), from what they use of
    the centred rows ``Xc``: ``S = Xc.T @ Xc`` and their squared norms
    :math:`r_i = \\lVert x_i - \\mu\\rVert^2`, since the sum of
    ``(Xc**2).T @ (Xc**2)`` is
    :math:`\\sum_{j,k}\\sum_i x_{ij}^2 x_{ik}^2 = \\sum_i r_i^2`.
    """
    d = S.shape[0]
    emp_cov_trace = np.diag(S) / n  # the column sums of squares
    mu = np.sum(emp_cov_trace) / d
    beta_ = np.sum(row_sq_norms**2)
    delta_ = np.sum(S**2) / n**2
    beta = 1.0 / (d * n) * (beta_ / n - delta_)
    delta = (delta_ - 2.0 * mu * emp_cov_trace.sum() + d * mu**2) / d
    beta = min(beta, delta)
    shrinkage = 0 if beta == 0 else beta / delta
    emp_cov = S / n
    mu = np.sum(np.trace(emp_cov)) / d
    shrunk = (1.0 - shrinkage) * emp_cov
    shrunk.flat[:: d + 1] += shrinkage * mu
    return shrunk


def _mean_and_covariance(X: np.ndarray, shrinkage, reg: float):
    """Mean and covariance estimate of the rows of ``X``."""
    n, d = X.shape
    if shrinkage == "oas" or (shrinkage == "ledoit_wolf" and (d == 1 or d > 1000)):
        mean = X.mean(axis=0)
        estimator = oas if shrinkage == "oas" else ledoit_wolf
        C = estimator(X - mean, assume_centered=True)[0]
    else:
        mean, S = mean_and_scatter(X)
        if shrinkage == "ledoit_wolf":
            C = _ledoit_wolf(S, n, centred_row_norms(X, mean, S))
        else:
            C = S / n
    C = np.atleast_2d(C)
    C = (C + C.T) / 2.0
    C[np.diag_indices_from(C)] += reg
    return mean, C


def _sym_power(C: np.ndarray, power: float) -> np.ndarray:
    """``C**power`` for symmetric PSD ``C`` (tiny eigenvalues floored)."""
    lam, U = np.linalg.eigh(C)
    top = max(lam[-1], np.finfo(float).tiny)
    lam = np.maximum(lam, _FLOOR * top)
    return (U * lam**power) @ U.T


class CORAL(DomainAdapter):
    """CORAL (Sun, Feng & Saenko, AAAI 2016); see the module docstring.

    Parameters
    ----------
    shrinkage : {"ledoit_wolf", "oas", None}, default="ledoit_wolf"
        Covariance estimator of each domain.
    reg : float or None, default=None
        Fixed ridge added to both covariances' diagonals (``None`` = 0).
    align_means : bool, default=True
        Also move the source mean onto the target mean.

    Attributes
    ----------
    source_covariance_, target_covariance_ : ndarray (d, d)
        The (shrunk, regularised) estimates :math:`C_s, C_t`.
    transform_matrix_ : ndarray (d, d)
        :math:`A = C_s^{-1/2} C_t^{1/2}`.
    source_mean_, target_mean_ : ndarray (d,)
    """

    def __init__(self, shrinkage="ledoit_wolf", reg=None, align_means: bool = True):
        self.shrinkage = shrinkage
        self.reg = reg
        self.align_means = align_means

    def _fit(self, X: np.ndarray, info: DomainInfo) -> None:
        # d x d eigendecompositions and thin products: one BLAS thread is fastest.
        with blas_threads(1):
            self._fit_one_thread(X, info)

    def _fit_one_thread(self, X: np.ndarray, info: DomainInfo) -> None:
        if self.shrinkage not in _SHRINKAGE:
            raise TransferKitInputError(
                f"shrinkage must be 'ledoit_wolf', 'oas' or None, got {self.shrinkage!r}."
            )
        reg = 0.0 if self.reg is None else check_positive_float(self.reg, "reg",
                                                                 allow_zero=True)
        Xs, Xt = domain_rows(X, info.is_source), domain_rows(X, info.is_target)
        for name, part in (("source", Xs), ("target", Xt)):
            if part.shape[0] < 2:
                raise TransferKitInputError(
                    f"CORAL needs at least 2 {name} rows to estimate a covariance; got "
                    f"{part.shape[0]}."
                )
        self.source_mean_, self.source_covariance_ = _mean_and_covariance(
            Xs, self.shrinkage, reg)
        self.target_mean_, self.target_covariance_ = _mean_and_covariance(
            Xt, self.shrinkage, reg)
        self.transform_matrix_ = (_sym_power(self.source_covariance_, -0.5)
                                  @ _sym_power(self.target_covariance_, 0.5))

    def _transform(self, X: np.ndarray, is_target: np.ndarray) -> np.ndarray:
        A = self.transform_matrix_
        offset = self.target_mean_ - self.source_mean_ @ A if self.align_means else 0.0
        out = np.empty_like(X)
        map_rows(X, is_target, None, None, out)
        map_rows(X, ~is_target, A, offset, out)
        return out
