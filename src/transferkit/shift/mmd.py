"""Maximum mean discrepancy (MMD): estimators and a blocked permutation test.

The squared MMD between distributions :math:`p` and :math:`q` in the
reproducing kernel Hilbert space of a kernel :math:`k` is

.. math::
    \\mathrm{MMD}^2 = \\mathbb{E}\\,k(x, x') + \\mathbb{E}\\,k(y, y')
    - 2\\,\\mathbb{E}\\,k(x, y), \\qquad x, x' \\sim p,\\; y, y' \\sim q .

Two estimators from Gretton et al. (2012) are implemented:

* ``"unbiased"`` (eq. 3, :math:`\\mathrm{MMD}_u^2`), quadratic time: for
  samples :math:`X` (:math:`m` rows) and :math:`Y` (:math:`n` rows)

  .. math::
      \\mathrm{MMD}_u^2 = \\frac{1}{m(m-1)} \\sum_{i \\ne j} k(x_i, x_j)
      + \\frac{1}{n(n-1)} \\sum_{i \\ne j} k(y_i, y_j)
      - \\frac{2}{mn} \\sum_{i, j} k(x_i, y_j).

* ``"linear"`` (Lemma 14, :math:`\\mathrm{MMD}_l^2`), linear time: with
  :math:`m_2 = \\lfloor \\min(m, n) / 2 \\rfloor` and rows paired *in the given
  order*,

  .. math::
      \\mathrm{MMD}_l^2 = \\frac{1}{m_2} \\sum_{i=1}^{m_2}
      h\\big((x_{2i-1}, y_{2i-1}), (x_{2i}, y_{2i})\\big),\\quad
      h\\big((x, y), (x', y')\\big) = k(x, x') + k(y, y') - k(x, y') - k(x', y).

  Rows beyond :math:`2 m_2` of the longer sample (and an odd last row) are
  not used; shuffle the rows first if their order is not random.

How the permutation test is computed
------------------------------------
Pool the rows, :math:`Z = [X; Y]` (:math:`N = m + n` rows, kernel matrix
:math:`K`), and describe a split by the indicator :math:`a \\in \\{0,1\\}^N`
of the rows labelled "X" (:math:`m` ones).  With :math:`q = a^\\top K a`,
:math:`r = K\\mathbf{1}`, :math:`T = \\mathbf{1}^\\top K \\mathbf{1}` and the
diagonal :math:`\\delta = \\operatorname{diag}(K)`,

.. math::
    S_{XX} = q - a^\\top\\delta,\\quad
    S_{XY} = a^\\top r - q,\\quad
    S_{YY} = T - 2 a^\\top r + q - (\\mathbf{1} - a)^\\top\\delta,

so every permutation's :math:`\\mathrm{MMD}_u^2` needs only :math:`q`: the
rest is shared.  For all :math:`P` permutations at once (:math:`A` the
:math:`N \\times P` 0/1 matrix of indicators), :math:`q = \\operatorname{diag}
(A^\\top K A)` is accumulated one row block :math:`K_B` (:math:`B \\times N`)
at a time from the product :math:`K_B A`; by symmetry only the blocks on and
above the diagonal are formed.  The full :math:`N \\times N` kernel is never
held in memory (peak about :math:`B N + N P` numbers, :math:`B` rows per
block) and the cost is about :math:`N^2 (d + P) / 2` multiply-adds.
Because :math:`\\mathrm{MMD}_u^2` does not change when a constant is added
to the kernel, the blocks are centred by the mean kernel value of the first
block before they are summed, which keeps the float32 sums accurate.

Precision: ``dtype=None`` computes the Gaussian and mixture kernels in float32
when the pooled sample has more than 4,096 rows and in float64 otherwise.
The float32 path agrees with float64 to better than 1e-5 relative on the
statistic (about 1e-6 measured at 10,000 rows per sample, d = 128, for a
small shift) and its permutation statistics differ from float64 by far less
than their spread; pass ``dtype=np.float64`` for the exact (about twice
slower) path.  ``dtype`` concerns the unbiased estimator's kernel blocks;
the linear-time estimator always runs in float64, and so does the linear
kernel, through its feature map (:math:`q = \\lVert Z^\\top a \\rVert^2`,
:math:`O(N d P)` time).

References
----------
Gretton, Borgwardt, Rasch, Schölkopf, Smola. "A Kernel Two-Sample Test."
Journal of Machine Learning Research 13 (2012): 723-773.

Example
-------
>>> import numpy as np
>>> from transferkit.shift import mmd2, mmd_test
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 3)); Y = rng.normal(loc=1.0, size=(200, 3))
>>> mmd2(X, Y) > 0.1
True
>>> mmd_test(X, Y, n_permutations=200, random_state=0).p_value < 0.01
True
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from transferkit.shift.kernels import (
    _check_bandwidth,
    _check_kernel_name,
    _factors,
    _gammas,
    _kernel_block,
    _kernel_pairs,
    _median_distance,
    centred_and_rescaled,
)
from transferkit.validation import TransferKitInputError, check_matrix

__all__ = ["MMDTestResult", "mmd2", "mmd_test"]

ESTIMATORS = ("unbiased", "linear")

#: Pooled sizes above this use float32 kernels when ``dtype=None``.
FLOAT32_MIN_ROWS = 4096
#: Target size of one kernel row block in bytes (``block_size=None``).
_BLOCK_BYTES = 64 * 2**20
#: Largest permutation-indicator matrix (bytes) held at once; more
#: permutations are processed in several passes over the kernel.
_MAX_INDICATOR_BYTES = 512 * 2**20


@dataclass(frozen=True)
class MMDTestResult:
    """Outcome of :func:`mmd_test`.

    Attributes
    ----------
    statistic : float
        Observed squared MMD (the chosen estimator).
    p_value : float
        Permutation p-value
        :math:`(1 + \\#\\{b : \\mathrm{MMD}^2_b \\ge \\mathrm{MMD}^2_{obs}\\}) / (1 + P)`.
    n_permutations : int
        Number :math:`P` of random permutations.
    kernel : str
        Kernel name.
    bandwidth : float or None
        Bandwidth :math:`\\sigma` used (None for the linear kernel).
    estimator : str
        ``"unbiased"`` or ``"linear"``.
    """

    statistic: float
    p_value: float
    n_permutations: int
    kernel: str
    bandwidth: float | None
    estimator: str = "unbiased"


# --------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------
def _check_estimator(estimator) -> str:
    if estimator not in ESTIMATORS:
        raise TransferKitInputError(
            f"Unknown estimator {estimator!r}; choose 'unbiased' (quadratic time, "
            "Gretton et al. 2012 eq. 3) or 'linear' (linear time, Lemma 14)."
        )
    return estimator


def _is_empty(data) -> bool:
    try:
        return np.size(data) == 0
    except (TypeError, ValueError):
        return False


def _check_samples(X, Y) -> tuple[np.ndarray, np.ndarray]:
    """Both samples as float64 2-D arrays; each needs at least 2 rows."""
    arrays = []
    for name, data in (("X", X), ("Y", Y)):
        if data is None or _is_empty(data):
            raise TransferKitInputError(f"{name} is an empty sample (no rows); pass at least 2 rows.")
        array = check_matrix(data, name=name, min_rows=0)
        if array.shape[0] == 0:
            raise TransferKitInputError(
                f"{name} is an empty sample (0 rows); each sample needs at least 2 rows."
            )
        arrays.append(array)
    X, Y = arrays
    if X.shape[1] != Y.shape[1]:
        raise TransferKitInputError(
            f"X has {X.shape[1]} features but Y has {Y.shape[1]}; both samples must have "
            "the same feature columns (in the same order)."
        )
    for name, array in (("X", X), ("Y", Y)):
        if array.shape[0] < 2:
            raise TransferKitInputError(
                f"{name} has {array.shape[0]} row; the MMD estimators need at least 2 rows "
                "per sample (the unbiased one divides by m(m-1), the linear one pairs rows)."
            )
    return X, Y


def _check_dtype(dtype, n_rows: int, kernel: str):
    if dtype is None:
        if kernel != "linear" and n_rows > FLOAT32_MIN_ROWS:
            return np.dtype(np.float32)
        return np.dtype(np.float64)
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TransferKitInputError(
            f"dtype must be None, numpy.float32 or numpy.float64, got {dtype!r}."
        )
    return resolved


def _check_block_size(block_size):
    if block_size is None:
        return None
    if not isinstance(block_size, numbers.Integral) or isinstance(block_size, bool) or block_size < 1:
        raise TransferKitInputError(f"block_size must be None or a positive integer, got {block_size!r}.")
    return int(block_size)


def _resolve_bandwidth(kernel, bandwidth, Z, random_state, exponent=0):
    """The bandwidth on ``Z``, the data divided by ``2**exponent``
    (:func:`~transferkit.shift.kernels.centred_and_rescaled`)."""
    bandwidth = _check_bandwidth(bandwidth)
    if kernel == "linear":
        return None
    if bandwidth == "median":
        return _median_distance(Z, 1000, random_state)
    return float(np.ldexp(float(bandwidth), -exponent))


def _unscaled(statistic, kernel, exponent):
    """A statistic of the rescaled data in the data's units (the linear kernel
    scales with the square of the data; the Gaussian and mixture ones do not)."""
    if kernel != "linear":
        return statistic
    with np.errstate(over="ignore"):
        value = np.ldexp(statistic, 2 * exponent)
    if not np.all(np.isfinite(value)):
        raise TransferKitInputError(
            f"The linear-kernel MMD of these samples overflows float64 (values around "
            f"2^{exponent}); rescale the features (e.g. standardise them) first.")
    return value


# --------------------------------------------------------------------------
# core computations on the pooled, centred sample
# --------------------------------------------------------------------------
def _stat_from_sums(s_xx, s_yy, s_xy, m, n):
    return s_xx / (m * (m - 1.0)) + s_yy / (n * (n - 1.0)) - 2.0 * s_xy / (m * float(n))


def _indicator_rows(x_sets: np.ndarray, n_rows: int, dtype) -> np.ndarray:
    """The P x N 0/1 matrix whose row p marks the rows ``x_sets[p]`` of Z."""
    At = np.zeros((x_sets.shape[0], n_rows), dtype=dtype)
    for p, rows in enumerate(x_sets):
        At[p, rows] = 1.0
    return At


def _perm_chunks(n_rows: int, n_perm: int, itemsize: int):
    per_chunk = max(1, _MAX_INDICATOR_BYTES // max(1, n_rows * itemsize))
    return [(s, min(s + per_chunk, n_perm)) for s in range(0, n_perm, per_chunk)]


def _unbiased_sums_kernel(Zc, m, kernel, gammas, x_sets, dtype, block_size):
    """Blocked pass over the kernel of ``Zc`` (Gaussian or mixture).

    Returns the per-row sums over the "X" columns and "Y" columns of the
    identity split, the diagonal (all of the kernel centred by a constant
    ``c``) and ``q[p] = a_p^T (K - c) a_p`` for the rows ``x_sets[p]``.
    """
    N = Zc.shape[0]
    L, R = _factors(Zc, kernel, gammas, dtype)
    B = block_size or int(min(N, max(64, _BLOCK_BYTES // (N * np.dtype(dtype).itemsize))))
    B = min(B, N)
    n_perm = 0 if x_sets is None else x_sets.shape[0]
    # A = At.T is N x P (Fortran order): row slices A[s:] feed the BLAS directly
    A = _indicator_rows(x_sets, N, dtype).T if n_perm else None
    lower = np.tril(np.ones((B, B), dtype=bool), k=-1) if n_perm else None
    # reused block buffers (a fresh 64 MiB array per block costs page faults)
    buffers = [np.empty(B * N, dtype=dtype) for _ in range(3 if len(gammas) > 1 else 1)]

    r_x = np.zeros(N)
    r_y = np.zeros(N)
    diag = np.zeros(N)
    q = np.zeros(n_perm)
    shift = None
    for s in range(0, N, B):
        e = min(s + B, N)
        b = e - s
        views = [buf[: b * (N - s)].reshape(b, N - s) for buf in buffers]
        K = _kernel_block(L[s:e], R[:, s:], kernel, gammas, diagonal_offset=0,
                          out=views[0], work=views[1:] or None)
        if shift is None:
            shift = K.mean(dtype=np.float64)
        K -= K.dtype.type(shift)
        rows = np.arange(b)
        diag[s:e] = K[rows, rows]
        n_xcols = int(np.clip(m - s, 0, N - s))
        r_x[s:e] += K[:, :n_xcols].sum(axis=1)
        r_y[s:e] += K[:, n_xcols:].sum(axis=1)
        if e < N:
            # the block above the diagonal also stands for its transpose
            off = K[:, b:]
            n_xrows = int(np.clip(m - s, 0, b))
            if n_xrows:
                r_x[e:] += off[:n_xrows].sum(axis=0)
            if n_xrows < b:
                r_y[e:] += off[n_xrows:].sum(axis=0)
        if n_perm:
            # q = 2 * sum_{i<j} a_i a_j K_ij + sum_i a_i K_ii: keep the upper
            # triangle of the diagonal square, halve its diagonal, double.
            square = K[:, :b]
            square[lower[:b, :b]] = 0.0
            square[rows, rows] *= 0.5
            KA = K @ A[s:]
            KA *= A[s:e]
            q += 2.0 * KA.sum(axis=0, dtype=np.float64)
    return r_x, r_y, diag, q


def _unbiased_sums_linear(Zc, m, x_sets):
    """Same sums as :func:`_unbiased_sums_kernel` for ``k(x, y) = x.y``."""
    N = Zc.shape[0]
    total = Zc.sum(axis=0)
    sum_x = Zc[:m].sum(axis=0)
    r_x = Zc @ sum_x
    r_y = Zc @ (total - sum_x)
    diag = np.einsum("ij,ij->i", Zc, Zc)
    n_perm = 0 if x_sets is None else x_sets.shape[0]
    q = np.zeros(n_perm)
    if n_perm:
        for s, e in _perm_chunks(N, n_perm, 8):
            S = _indicator_rows(x_sets[s:e], N, np.float64) @ Zc  # (p, d) column sums
            q[s:e] = np.einsum("ij,ij->i", S, S)
    return r_x, r_y, diag, q


def _unbiased(Zc, m, kernel, gammas, x_sets, dtype, block_size):
    """Observed MMD_u^2 (first m rows vs the rest) and permutation statistics."""
    N = Zc.shape[0]
    n = N - m
    n_perm = 0 if x_sets is None else x_sets.shape[0]
    if kernel == "linear":
        r_x, r_y, diag, q = _unbiased_sums_linear(Zc, m, x_sets)
    else:
        q = np.zeros(n_perm)
        chunks = _perm_chunks(N, n_perm, np.dtype(dtype).itemsize) if n_perm else [(0, 0)]
        for s, e in chunks:
            part = x_sets[s:e] if n_perm else None
            r_x, r_y, diag, q_part = _unbiased_sums_kernel(
                Zc, m, kernel, gammas, part, dtype, block_size
            )
            q[s:e] = q_part
    observed = _stat_from_sums(
        r_x[:m].sum() - diag[:m].sum(), r_y[m:].sum() - diag[m:].sum(), r_y[:m].sum(), m, n
    )
    if not n_perm:
        return float(observed), np.zeros(0)
    r = r_x + r_y
    total = r.sum()
    diag_total = diag.sum()
    a_r = np.empty(n_perm)
    a_diag = np.empty(n_perm)
    for s in range(0, n_perm, 64):  # gather in chunks to bound memory
        a_r[s:s + 64] = r[x_sets[s:s + 64]].sum(axis=1)
        a_diag[s:s + 64] = diag[x_sets[s:s + 64]].sum(axis=1)
    s_xx = q - a_diag
    s_xy = a_r - q
    s_yy = total - 2.0 * a_r + q - (diag_total - a_diag)
    return float(observed), _stat_from_sums(s_xx, s_yy, s_xy, m, n)


def _linear_time(X, Y, kernel, gammas):
    """MMD_l^2 of Gretton et al. (2012, Lemma 14) with rows paired in order."""
    half = min(X.shape[0], Y.shape[0]) // 2
    x1, x2 = X[0 : 2 * half : 2], X[1 : 2 * half : 2]
    y1, y2 = Y[0 : 2 * half : 2], Y[1 : 2 * half : 2]
    h = (
        _kernel_pairs(x1, x2, kernel, gammas)
        + _kernel_pairs(y1, y2, kernel, gammas)
        - _kernel_pairs(x1, y2, kernel, gammas)
        - _kernel_pairs(x2, y1, kernel, gammas)
    )
    return float(h.mean())


def _permutation_mmd2(Z, m, permutations, kernel="gaussian", bandwidth=1.0,
                      estimator="unbiased", block_size=None, dtype=np.float64):
    """Observed statistic and the statistics of explicit permutations.

    Private helper (used by :func:`mmd_test` and by the tests).

    Parameters
    ----------
    Z : ndarray of shape (N, d)
        Pooled sample; the observed split is ``Z[:m]`` vs ``Z[m:]``.
    m : int
        Size of the first sample.
    permutations : int array of shape (P, N)
        Row orders; permutation ``p`` compares ``Z[perm[:m]]`` with
        ``Z[perm[m:]]`` (in that order, which matters for the linear-time
        estimator only).  The unbiased estimator reads only the first ``m``
        columns, so shape (P, m) is accepted there.
    kernel, bandwidth, estimator, block_size, dtype
        As in :func:`mmd_test`; ``bandwidth`` is a number (or None for the
        linear kernel).

    Returns
    -------
    observed : float
    statistics : ndarray of shape (P,)
    """
    Z = np.asarray(Z, dtype=np.float64)
    # every statistic here is invariant to translating all rows (for the
    # linear kernel too), so centre once for accuracy
    Zc = Z - Z.mean(axis=0)
    permutations = np.asarray(permutations)
    gammas = _gammas(kernel, bandwidth)
    if estimator == "unbiased":
        x_sets = np.ascontiguousarray(permutations[:, :m]) if permutations.shape[0] else None
        return _unbiased(Zc, m, kernel, gammas, x_sets, dtype, block_size)
    n = Zc.shape[0] - m
    used = 2 * (min(m, n) // 2)  # rows of each sample the estimator reads
    observed = _linear_time(Zc[:m], Zc[m:], kernel, gammas)
    stats = np.array(
        [_linear_time(Zc[p[:used]], Zc[p[m:m + used]], kernel, gammas) for p in permutations]
    )
    return observed, stats


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
def mmd2(X, Y, kernel: str = "gaussian", bandwidth="median", estimator: str = "unbiased",
         random_state=None, block_size: int | None = None, dtype=None) -> float:
    """Squared maximum mean discrepancy between two samples.

    Parameters
    ----------
    X : array-like of shape (m, d)
        First sample (e.g. source rows); at least 2 rows.
    Y : array-like of shape (n, d)
        Second sample (e.g. target rows); at least 2 rows, same ``d``.
    kernel : {"gaussian", "mixture", "linear"}, default="gaussian"
        See :mod:`transferkit.shift.kernels` for the formulas.
    bandwidth : "median" or float, default="median"
        Gaussian bandwidth :math:`\\sigma` (the base bandwidth of the
        mixture); ``"median"`` is the median pairwise distance of the pooled
        sample (:func:`~transferkit.shift.median_heuristic`, on at most 1,000
        random rows).
    estimator : {"unbiased", "linear"}, default="unbiased"
        ``"unbiased"``: :math:`\\mathrm{MMD}_u^2` (Gretton et al. 2012, eq. 3),
        computed in row blocks, :math:`O((m+n)^2 d)` time and
        :math:`O(B (m+n))` memory.  ``"linear"``: :math:`\\mathrm{MMD}_l^2`
        (Lemma 14), :math:`O(\\min(m, n) d)`, rows paired in the given order.
        Both can be negative when the distributions are equal.
    random_state : int, RandomState or None
        Seed of the median heuristic's subsample (only used with more than
        1,000 pooled rows).
    block_size : int or None
        Rows per kernel block (default: blocks of about 64 MiB).
    dtype : None, numpy.float32 or numpy.float64
        Precision of the Gaussian / mixture kernel blocks; None picks float32
        above 4,096 pooled rows and float64 otherwise.

    Returns
    -------
    float

    See Also
    --------
    mmd_test : permutation test built on the same statistic.

    References
    ----------
    Gretton et al. "A Kernel Two-Sample Test." JMLR 13 (2012), eq. 3 and
    Lemma 14.

    Example
    -------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0]]); Y = np.array([[0.0], [3.0]])
    >>> mmd2(X, Y, kernel="linear")  # 0/2 + 0/2 - 2 * (0*0 + 0*3 + 1*0 + 1*3) / 4
    -1.5
    """
    kernel = _check_kernel_name(kernel)
    estimator = _check_estimator(estimator)
    block_size = _check_block_size(block_size)
    X, Y = _check_samples(X, Y)
    # exact power-of-two rescaling: no overflow or underflow at any magnitude
    Z, exponent = centred_and_rescaled(np.vstack([X, Y]))
    dtype = _check_dtype(dtype, Z.shape[0], kernel)
    bandwidth = _resolve_bandwidth(kernel, bandwidth, Z, random_state, exponent)
    empty = np.zeros((0, Z.shape[0]), dtype=np.intp)
    observed, _ = _permutation_mmd2(Z, X.shape[0], empty, kernel, bandwidth, estimator,
                                    block_size, dtype)
    return float(_unscaled(observed, kernel, exponent))


def mmd_test(X, Y, kernel: str = "gaussian", bandwidth="median", n_permutations: int = 1000,
             estimator: str = "unbiased", random_state=None, block_size: int | None = None,
             dtype=None) -> MMDTestResult:
    """Permutation two-sample test based on the squared MMD.

    The rows of ``X`` and ``Y`` are pooled and randomly re-split
    ``n_permutations`` times into samples of the original sizes; the
    p-value is

    .. math::
        p = \\frac{1 + \\#\\{b : \\mathrm{MMD}^2_b \\ge \\mathrm{MMD}^2_{obs}\\}}
        {1 + P},

    which makes the test exact (level :math:`\\le \\alpha`) for any
    :math:`P`.  The bandwidth is chosen once on the pooled sample, which the
    permutations leave unchanged, so the median heuristic does not break the
    test's validity.  With the unbiased estimator all permutations are
    evaluated in one blocked pass over the kernel matrix (see the module
    docstring): the :math:`N \\times N` kernel is never stored, and its cost
    is about that of one :math:`N \\times N \\times P` matrix product.

    Parameters
    ----------
    X : array-like of shape (m, d)
    Y : array-like of shape (n, d)
    kernel : {"gaussian", "mixture", "linear"}, default="gaussian"
    bandwidth : "median" or float, default="median"
    n_permutations : int, default=1000
        Number :math:`P \\ge 1` of random permutations.
    estimator : {"unbiased", "linear"}, default="unbiased"
        The linear-time estimator makes each permutation :math:`O(N d)`
        (useful for very large samples) at the price of power.
    random_state : int, RandomState or None
        Seed for the permutations and the median heuristic's subsample.
    block_size : int or None
        Rows per kernel block (default: blocks of about 64 MiB).
    dtype : None, numpy.float32 or numpy.float64
        Precision of the Gaussian / mixture kernel blocks; None picks float32
        above 4,096 pooled rows (below 1e-5 relative error on the statistic)
        and float64 otherwise.

    Returns
    -------
    MMDTestResult

    References
    ----------
    Gretton et al. "A Kernel Two-Sample Test." JMLR 13 (2012).

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> res = mmd_test(rng.normal(size=(100, 2)), rng.normal(size=(80, 2)),
    ...                n_permutations=99, random_state=0)
    >>> res.n_permutations, res.kernel, 0.0 < res.p_value <= 1.0
    (99, 'gaussian', True)
    """
    kernel = _check_kernel_name(kernel)
    estimator = _check_estimator(estimator)
    block_size = _check_block_size(block_size)
    if (not isinstance(n_permutations, numbers.Integral) or isinstance(n_permutations, bool)
            or n_permutations < 1):
        raise TransferKitInputError(
            f"n_permutations must be an integer >= 1, got {n_permutations!r}; "
            "use a few hundred or more for a usable p-value (the smallest possible "
            "p-value is 1 / (1 + n_permutations))."
        )
    X, Y = _check_samples(X, Y)
    # exact power-of-two rescaling: no overflow or underflow at any magnitude; the
    # p-value does not depend on it, the statistic is scaled back
    Z, exponent = centred_and_rescaled(np.vstack([X, Y]))
    N, m = Z.shape[0], X.shape[0]
    dtype = _check_dtype(dtype, N, kernel)
    rng = check_random_state(random_state)
    bandwidth = _resolve_bandwidth(kernel, bandwidth, Z, rng, exponent)
    index_dtype = np.int32 if N < 2**31 else np.int64
    # the unbiased statistic depends only on which rows form the first sample
    width = m if estimator == "unbiased" else N
    permutations = np.empty((int(n_permutations), width), dtype=index_dtype)
    for p in range(int(n_permutations)):
        permutations[p] = rng.permutation(N)[:width]
    observed, stats = _permutation_mmd2(Z, m, permutations, kernel, bandwidth, estimator,
                                        block_size, dtype)
    p_value = (1.0 + np.count_nonzero(stats >= observed)) / (1.0 + n_permutations)
    return MMDTestResult(
        statistic=float(_unscaled(observed, kernel, exponent)),
        p_value=float(p_value),
        n_permutations=int(n_permutations),
        kernel=kernel,
        bandwidth=None if bandwidth is None else float(np.ldexp(bandwidth, exponent)),
        estimator=estimator,
    )
