"""Nearest-neighbour importance weights (Voronoi-cell counts).

Loog (2012), "Nearest neighbor-based importance weighting", IEEE
International Workshop on Machine Learning for Signal Processing (MLSP),
estimates the density ratio at a source row :math:`x^s_i` from the number of
target rows that fall in its Voronoi cell, i.e. whose nearest source row it
is:

.. math::

    c_i = \\#\\{ j : \\arg\\min_{i'} \\lVert x^t_j - x^s_{i'} \\rVert = i \\},
    \\qquad
    \\hat w_i \\propto c_i + s ,

with smoothing :math:`s` (default 1: add-one smoothing, so that no source
row gets weight zero).  :math:`c_i / n_t` estimates the target mass of the
cell and :math:`1/n_s` its source mass, so :math:`n_s c_i / n_t` estimates
:math:`p_t/p_s` on the cell; ``weights_`` are normalised to mean 1 over the
source rows.  Several source domains are pooled into one source sample.

The estimated ratio is piecewise constant on the source Voronoi cells, so
:meth:`NearestNeighbourWeights.compute_weights` gives a new row the weight
of its nearest source row.

Scale: the nearest-neighbour search (scikit-learn ``NearestNeighbors``) costs
:math:`O(n_s n_t d)` in high dimension.  When :math:`n_s n_t` exceeds
``max_pairs`` (default :math:`2\\cdot 10^8`), only a random subsample of
``max_pairs // n_s`` target rows is queried and the counts are scaled by
:math:`n_t / m`: an unbiased Monte-Carlo estimate of the full counts, with
extra variance (per-cell relative standard error about
:math:`1/\\sqrt{\\mathbb{E}[c_i]\\, m / n_t}`).  Large searches run in float32.

Example
-------
>>> import numpy as np
>>> from transferkit.domains import stack_domains
>>> from transferkit.instance_based import NearestNeighbourWeights
>>> Xs = np.array([[0.0], [1.0], [5.0]])
>>> Xt = np.array([[0.1], [0.2], [4.0], [6.0]])
>>> X, y = stack_domains(Xs, np.zeros(3), Xt)
>>> nnw = NearestNeighbourWeights(smoothing=1.0).fit(X, y)
>>> nnw.counts_          # target rows per source Voronoi cell
array([2., 0., 2.])
>>> nnw.weights_[:3]     # (counts + 1), normalised to mean 1
array([1.28571429, 0.42857143, 1.28571429])
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from transferkit.instance_based.density_ratio import (
    _check_new_rows,
    _domains_and_matrix,
    _full_weights,
)
from transferkit.validation import TransferKitInputError

__all__ = ["NearestNeighbourWeights"]

_FLOAT32_PAIRS = 50_000_000


class NearestNeighbourWeights(BaseEstimator):
    """Importance weights from target counts in the source rows' Voronoi cells.

    Loog (2012), "Nearest neighbor-based importance weighting", IEEE MLSP.
    See the module docstring for the maths.

    Parameters
    ----------
    smoothing : float, default=1.0
        Added to every count (>= 0; 0 lets rows with no target neighbour get
        weight 0).
    max_pairs : int, default=200_000_000
        Largest :math:`n_s \\times` (target rows queried); above it the target
        rows are subsampled (see the module docstring).
    algorithm : str, default="auto"
        Passed to :class:`sklearn.neighbors.NearestNeighbors` (trees in low
        dimension, brute force in high dimension).
    n_jobs : int, optional
        Passed to :class:`~sklearn.neighbors.NearestNeighbors`.
    random_state : int, optional
        Seeds the target subsample (used only above ``max_pairs``).

    Attributes
    ----------
    weights_ : ndarray of shape (n_rows,)
        Source rows: ``(counts_ + smoothing)`` normalised to mean 1; target
        rows: 1.
    counts_ : ndarray of shape (n_source,)
        Number of target rows whose nearest source row each source row is
        (scaled by ``n_t / n_queried`` when subsampled).
    n_queried_ : int
        Number of target rows queried.
    """

    def __init__(self, smoothing: float = 1.0, max_pairs: int = 200_000_000,
                 algorithm: str = "auto", n_jobs=None, random_state=None):
        self.smoothing = smoothing
        self.max_pairs = max_pairs
        self.algorithm = algorithm
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y):
        """Count the target rows in each source row's Voronoi cell."""
        X_arr, info, Xs, Xt = _domains_and_matrix(X, y, "NearestNeighbourWeights")
        s = self.smoothing
        if (not isinstance(s, numbers.Real) or isinstance(s, bool) or not np.isfinite(s)
                or s < 0):
            raise TransferKitInputError(
                f"smoothing must be a non-negative number, got {s!r}.")
        if (not isinstance(self.max_pairs, numbers.Real) or isinstance(self.max_pairs, bool)
                or not self.max_pairs >= 1):
            raise TransferKitInputError(
                f"max_pairs must be a number >= 1, got {self.max_pairs!r}.")
        n_s, n_t = Xs.shape[0], Xt.shape[0]
        m = int(min(n_t, max(1, self.max_pairs // n_s)))
        if m < n_t:
            rng = check_random_state(self.random_state)
            queries = Xt[np.sort(rng.choice(n_t, size=m, replace=False))]
        else:
            queries = Xt
        dtype = np.float32 if n_s * m > _FLOAT32_PAIRS else np.float64
        nn = NearestNeighbors(n_neighbors=1, algorithm=self.algorithm, n_jobs=self.n_jobs)
        nn.fit(Xs.astype(dtype, copy=False))
        nearest = nn.kneighbors(queries.astype(dtype, copy=False),
                                return_distance=False)[:, 0]
        counts = np.bincount(nearest, minlength=n_s).astype(float) * (n_t / m)
        raw = counts + float(s)
        if float(s) == 0.0 and not raw.any():
            raise TransferKitInputError("No counts and smoothing=0: every weight is 0.")
        self.counts_ = counts
        self.n_queried_ = m
        self.nn_ = nn
        self.search_dtype_ = np.dtype(dtype)
        self.raw_weights_ = raw
        self.weights_, self.normaliser_ = _full_weights(info, raw, "NearestNeighbourWeights")
        self.n_features_in_ = X_arr.shape[1]
        return self

    def compute_weights(self, X) -> np.ndarray:
        """Weight of each new row = the weight of its nearest source row (its Voronoi cell)."""
        check_is_fitted(self, "nn_")
        X_arr = _check_new_rows(X, self.n_features_in_, "NearestNeighbourWeights")
        nearest = self.nn_.kneighbors(X_arr.astype(self.search_dtype_, copy=False),
                                      return_distance=False)[:, 0]
        return self.raw_weights_[nearest] / self.normaliser_
