"""Kernels and bandwidth selection for the two-sample statistics.

Three kernels are available by name:

``"gaussian"``
    :math:`k(x, y) = \\exp\\!\\left(-\\frac{\\lVert x - y \\rVert^2}{2\\sigma^2}\\right)`
    with bandwidth :math:`\\sigma`.
``"mixture"``
    an equal-weight mixture of Gaussians at bandwidths
    :math:`\\sigma \\cdot 2^s`, :math:`s \\in \\{-2, -1, 0, 1, 2\\}`:
    :math:`k(x, y) = \\frac{1}{5} \\sum_s \\exp\\!\\left(-\\frac{\\lVert x - y
    \\rVert^2}{2 (2^s \\sigma)^2}\\right)`.  It is characteristic like the
    Gaussian and less sensitive to a poorly chosen :math:`\\sigma` (in the
    spirit of the multi-kernel MMD of Gretton et al., NeurIPS 2012).
``"linear"``
    :math:`k(x, y) = x^\\top y`.  Its MMD compares means only.

The default bandwidth is the *median heuristic*: :math:`\\sigma` is the median
of the pairwise Euclidean distances :math:`\\lVert z_i - z_j \\rVert`,
:math:`i < j`, of the pooled sample (source and target rows together).  For
speed it is computed on a random subsample of at most ``max_samples`` (1,000)
rows drawn without replacement with ``random_state``; with at most 1,000 rows
it is exact and needs no randomness.  Zero distances (duplicated rows) are
skipped when the median would otherwise be 0; if every distance is 0 the
bandwidth is 1.

Example
-------
>>> import numpy as np
>>> from transferkit.shift import kernel_matrix, median_heuristic
>>> X = np.array([[0.0], [1.0], [3.0]])
>>> median_heuristic(X)
2.0
>>> kernel_matrix(X, kernel="gaussian", bandwidth=1.0).round(3)
array([[1.   , 0.607, 0.011],
       [0.607, 1.   , 0.135],
       [0.011, 0.135, 1.   ]])
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.spatial.distance import pdist
from sklearn.utils import check_random_state

from transferkit.validation import TransferKitInputError, _suggest, check_matrix

__all__ = [
    "KERNELS",
    "MIXTURE_SCALES",
    "gaussian_kernel",
    "mixture_kernel",
    "linear_kernel",
    "kernel_matrix",
    "median_heuristic",
]

#: Kernel names accepted by every function of :mod:`transferkit.shift`.
KERNELS = ("gaussian", "mixture", "linear")

#: Bandwidth multipliers of the ``"mixture"`` kernel: ``sigma * 2**s`` for s = -2..2.
MIXTURE_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


# --------------------------------------------------------------------------
# argument checks shared by the subpackage
# --------------------------------------------------------------------------
def _check_kernel_name(kernel) -> str:
    if not isinstance(kernel, str) or kernel not in KERNELS:
        hint = _suggest(kernel, KERNELS) if isinstance(kernel, str) else ""
        raise TransferKitInputError(
            f"Unknown kernel {kernel!r}; choose one of {list(KERNELS)}.{hint}"
        )
    return kernel


def _check_bandwidth(bandwidth):
    """Return ``"median"`` or a positive finite float."""
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise TransferKitInputError(
                f"Unknown bandwidth {bandwidth!r}; pass 'median' (the median heuristic) "
                "or a positive number."
            )
        return bandwidth
    if isinstance(bandwidth, numbers.Real) and not isinstance(bandwidth, bool):
        value = float(bandwidth)
        if np.isfinite(value) and value > 0:
            return value
    raise TransferKitInputError(
        f"bandwidth must be 'median' or a positive finite number, got {bandwidth!r}."
    )


# --------------------------------------------------------------------------
# bandwidth
# --------------------------------------------------------------------------
def power_of_two_exponent(*arrays) -> int:
    """The exponent :math:`e` with :math:`\\max |a| / 2^e \\in [0.5, 1)` over the finite
    values of ``arrays`` (0 when they are all 0).

    Dividing by :math:`2^e` (``np.ldexp(a, -e)``) is exact in floating point, so
    a statistic computed on the rescaled data and scaled back is the one on the
    data, but squared distances neither overflow (from about 1e154 on) nor
    underflow (below about 1e-154).

    >>> power_of_two_exponent(np.array([3.0, -0.5]))
    2
    """
    peak = 0.0
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        if a.size:
            finite = np.abs(a[np.isfinite(a)])
            peak = max(peak, float(finite.max()) if finite.size else 0.0)
    return int(np.frexp(peak)[1]) if peak > 0 else 0


def centred_and_rescaled(Z: np.ndarray) -> tuple[np.ndarray, int]:
    """``(Z - mean) / 2^e`` with every value in (-1, 1), and ``e``: distances and
    the MMD statistics of the Gaussian and mixture kernels are unchanged once the
    bandwidth is divided by :math:`2^e` too (the linear kernel's scale by
    :math:`2^{2e}`).  Scaled before centring, so the mean cannot overflow."""
    first = power_of_two_exponent(Z)
    Z = np.ldexp(np.asarray(Z, dtype=np.float64), -first)
    Z = Z - Z.mean(axis=0)
    second = power_of_two_exponent(Z)
    return np.ldexp(Z, -second), first + second


def median_heuristic(X, Y=None, max_samples: int = 1000, random_state=None) -> float:
    """Median of the pairwise Euclidean distances of the pooled sample.

    .. math::
        \\sigma = \\operatorname{median}\\{\\lVert z_i - z_j \\rVert : i < j\\},
        \\qquad z = \\text{rows of } X \\text{ and } Y \\text{ stacked}.

    Parameters
    ----------
    X : array-like of shape (m, d)
    Y : array-like of shape (n, d), optional
        Second sample, pooled with ``X``.
    max_samples : int, default=1000
        When the pooled sample has more rows, the median is taken over a
        random subsample of ``max_samples`` rows (without replacement).  The
        median of 1,000 rows (about 500,000 distances) is an accurate
        estimate of the population median distance.
    random_state : int, RandomState or None
        Seed for the subsample; unused when no subsampling is needed.

    Returns
    -------
    float
        The bandwidth; zero distances are skipped if the median is 0, and 1.0
        is returned when every distance is 0 or there is a single row.

    References
    ----------
    Gretton, Borgwardt, Rasch, Schölkopf, Smola. "A Kernel Two-Sample Test."
    JMLR 13 (2012), section 8 (median heuristic).

    Example
    -------
    >>> median_heuristic([[0.0], [1.0], [3.0]])
    2.0
    """
    Z = check_matrix(X, name="X")
    if Y is not None:
        Y = check_matrix(Y, name="Y")
        if Y.shape[1] != Z.shape[1]:
            raise TransferKitInputError(
                f"X has {Z.shape[1]} features but Y has {Y.shape[1]}; both samples "
                "must have the same feature columns."
            )
    if not isinstance(max_samples, numbers.Integral) or max_samples < 2:
        raise TransferKitInputError(f"max_samples must be an integer >= 2, got {max_samples!r}.")
    return _median_distance(Z, max_samples, random_state, Y)


def _median_distance(Z: np.ndarray, max_samples: int, random_state, Y=None) -> float:
    """Median distance of the rows of ``Z`` and ``Y`` pooled (subsampled to ``max_samples``).

    The subsample is gathered from the two arrays: the pooled matrix is never built.
    """
    n_z = Z.shape[0]
    n_total = n_z + (0 if Y is None else Y.shape[0])
    if n_total > max_samples:
        rows = check_random_state(random_state).choice(n_total, max_samples, replace=False)
        Z = Z[rows] if Y is None else np.vstack([Z[rows[rows < n_z]], Y[rows[rows >= n_z] - n_z]])
    elif Y is not None:
        Z = np.vstack([Z, Y])
    if Z.shape[0] < 2:
        return 1.0
    Z = np.asarray(Z, dtype=np.float64)
    exponent = power_of_two_exponent(Z)          # distances of huge or tiny values
    distances = pdist(np.ldexp(Z, -exponent))
    median = float(np.median(distances))
    if not median > 0:
        positive = distances[distances > 0]
        if not positive.size:
            return 1.0
        median = float(np.median(positive))
    return float(np.ldexp(median, exponent))


# --------------------------------------------------------------------------
# kernel blocks (the one place where kernels are evaluated)
# --------------------------------------------------------------------------
def _gammas(kernel: str, bandwidth: float | None) -> tuple[float, ...]:
    """Coefficients ``1 / (2 sigma_s^2)`` of the Gaussian terms of a kernel."""
    if kernel == "gaussian":
        return (1.0 / (2.0 * bandwidth**2),)
    if kernel == "mixture":
        return tuple(1.0 / (2.0 * (bandwidth * s) ** 2) for s in MIXTURE_SCALES)
    return ()


def _factors(Z: np.ndarray, kernel: str, gammas, dtype=np.float64):
    """Factors ``L`` (N x d') and ``R`` (d' x N) of the kernel's inner matrix.

    For the linear kernel ``L @ R = Z Z^T``.  For the Gaussian kernels
    ``L @ R = -gamma_0 * D`` with ``D`` the squared distances: with
    :math:`\\lVert z_i - z_j\\rVert^2 = |z_i|^2 + |z_j|^2 - 2 z_i^\\top z_j`,
    ``L = [2 gamma_0 Z, -gamma_0 |z|^2, -gamma_0]`` and
    ``R = [Z, 1, |z|^2]^T``, so one matrix product gives the exponent
    directly (no extra passes over the block for the norms and the scale).
    ``R`` is its own contiguous buffer (a transposed view of ``L`` would
    send numpy to the slower ``syrk`` routine).
    """
    Z = np.asarray(Z, dtype=np.float64)
    if kernel == "linear":
        return np.ascontiguousarray(Z, dtype=dtype), np.ascontiguousarray(Z.T, dtype=dtype)
    n, d = Z.shape
    gamma = gammas[0]
    sq = np.einsum("ij,ij->i", Z, Z)
    L = np.empty((n, d + 2), dtype=dtype)
    L[:, :d] = (2.0 * gamma) * Z
    L[:, d] = -gamma * sq
    L[:, d + 1] = -gamma
    R = np.empty((d + 2, n), dtype=dtype)
    R[:d] = Z.T
    R[d] = 1.0
    R[d + 1] = sq
    return L, R


def _kernel_block(L, R, kernel, gammas, diagonal_offset=None, out=None, work=None):
    """Kernel block between the rows behind ``L`` and the columns behind ``R``.

    ``L`` and ``R`` come from :func:`_factors` (the same ``gammas``).  When
    ``diagonal_offset`` is an int ``o``, row ``i`` and column ``i + o`` are
    the same point and their distance is set to exactly 0, so ``k(z, z)`` is
    exact.  ``out`` (and, for the mixture, ``work``: two more arrays of the
    same shape) are optional preallocated buffers; reusing them avoids
    fresh page faults on every block.  Returns the kernel block (``out``,
    or a buffer of ``work`` for the mixture).
    """
    G = np.matmul(L, R, out=out)
    if kernel == "linear":
        return G
    np.minimum(G, 0.0, out=G)  # squared distances are >= 0
    if diagonal_offset is not None:
        rows = np.arange(G.shape[0])
        G[rows, rows + diagonal_offset] = 0.0
    if len(gammas) == 1:
        return np.exp(G, out=G)
    if work is None:
        work = (np.empty_like(G), np.empty_like(G))
    K, tmp = work
    ratios = [g / gammas[0] for g in gammas]
    np.multiply(G, ratios[0], out=K)
    np.exp(K, out=K)
    for ratio in ratios[1:]:
        np.multiply(G, ratio, out=tmp)
        np.exp(tmp, out=tmp)
        K += tmp
    K *= 1.0 / len(gammas)
    return K


def _kernel_pairs(U, V, kernel, gammas):
    """``k(u_i, v_i)`` for paired rows (used by the linear-time estimator)."""
    if kernel == "linear":
        return np.einsum("ij,ij->i", U, V)
    diff = U - V
    sq = np.einsum("ij,ij->i", diff, diff)
    return np.mean([np.exp(-g * sq) for g in gammas], axis=0)


# --------------------------------------------------------------------------
# public kernel functions
# --------------------------------------------------------------------------
def _pair_inputs(X, Y):
    X = check_matrix(X, name="X")
    if Y is None:
        return X, X, True
    Y = check_matrix(Y, name="Y")
    if Y.shape[1] != X.shape[1]:
        raise TransferKitInputError(
            f"X has {X.shape[1]} features but Y has {Y.shape[1]}; both must have the "
            "same feature columns."
        )
    return X, Y, False


def kernel_matrix(X, Y=None, kernel: str = "gaussian", bandwidth="median",
                  random_state=None) -> np.ndarray:
    """Dense kernel matrix ``K[i, j] = k(x_i, y_j)`` in float64 (small inputs).

    Parameters
    ----------
    X : array-like of shape (m, d)
    Y : array-like of shape (n, d), optional
        Defaults to ``X``.
    kernel : {"gaussian", "mixture", "linear"}
        See the module docstring for the formulas.
    bandwidth : "median" or float
        :math:`\\sigma`; ``"median"`` applies :func:`median_heuristic` to the
        pooled rows of ``X`` and ``Y``.  Ignored by the linear kernel.
    random_state : int, RandomState or None
        Seed of the median heuristic's subsample.

    Returns
    -------
    ndarray of shape (m, n)

    Notes
    -----
    This builds the full matrix; the statistics of :mod:`transferkit.shift`
    never do and work in row blocks instead.

    Example
    -------
    >>> kernel_matrix([[0.0], [2.0]], kernel="linear")
    array([[0., 0.],
           [0., 4.]])
    """
    kernel = _check_kernel_name(kernel)
    bandwidth = _check_bandwidth(bandwidth)
    X, Y, same = _pair_inputs(X, Y)
    exponent = power_of_two_exponent(X, Y)
    X, Y = np.ldexp(X, -exponent), np.ldexp(Y, -exponent)
    if kernel == "linear":
        with np.errstate(over="ignore"):
            K = np.ldexp(X @ np.array(Y.T), 2 * exponent)
        if not np.isfinite(K).all():
            raise TransferKitInputError(
                "The linear kernel of these rows overflows float64 (values around "
                f"2^{exponent}); rescale the features (e.g. standardise them) first.")
        return K
    if bandwidth == "median":
        pooled = X if same else np.vstack([X, Y])
        bandwidth = _median_distance(pooled, 1000, random_state)
    else:
        bandwidth = float(np.ldexp(float(bandwidth), -exponent))
    gammas = _gammas(kernel, bandwidth)
    L, _ = _factors(X, kernel, gammas)
    _, R = _factors(Y, kernel, gammas)
    return _kernel_block(L, R, kernel, gammas, diagonal_offset=0 if same else None)


def gaussian_kernel(X, Y=None, bandwidth: float = 1.0) -> np.ndarray:
    """Gaussian kernel :math:`\\exp(-\\lVert x - y \\rVert^2 / (2\\sigma^2))`.

    Parameters
    ----------
    X : array-like of shape (m, d)
    Y : array-like of shape (n, d), optional
    bandwidth : float or "median"
        :math:`\\sigma`.

    Returns
    -------
    ndarray of shape (m, n)

    Example
    -------
    >>> float(gaussian_kernel([[0.0]], [[1.0]], bandwidth=1.0)[0, 0])  # exp(-1/2)
    0.6065306597126334
    """
    return kernel_matrix(X, Y, kernel="gaussian", bandwidth=bandwidth)


def mixture_kernel(X, Y=None, bandwidth: float = 1.0) -> np.ndarray:
    """Mean of Gaussian kernels at bandwidths ``bandwidth * 2**s``, s = -2..2.

    .. math::
        k(x, y) = \\frac{1}{5} \\sum_{s=-2}^{2}
        \\exp\\!\\left(-\\frac{\\lVert x - y \\rVert^2}{2 (2^s \\sigma)^2}\\right)

    Parameters
    ----------
    X : array-like of shape (m, d)
    Y : array-like of shape (n, d), optional
    bandwidth : float or "median"
        Base bandwidth :math:`\\sigma`.

    Returns
    -------
    ndarray of shape (m, n)

    Example
    -------
    >>> float(mixture_kernel([[0.0]], [[0.0]])[0, 0])
    1.0
    """
    return kernel_matrix(X, Y, kernel="mixture", bandwidth=bandwidth)


def linear_kernel(X, Y=None) -> np.ndarray:
    """Linear kernel :math:`x^\\top y`.

    Example
    -------
    >>> linear_kernel([[1.0, 2.0]], [[3.0, 4.0]])
    array([[11.]])
    """
    return kernel_matrix(X, Y, kernel="linear")
