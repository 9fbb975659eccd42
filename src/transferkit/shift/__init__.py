"""Distribution shift: discrepancy measures and two-sample tests.

* :func:`mmd2`, :func:`mmd_test`: squared maximum mean discrepancy (unbiased
  and linear-time estimators) and a blocked permutation test;
* :func:`proxy_a_distance`: domain-classifier based proxy A-distance;
* :func:`coral_distance`: distance between the two covariance matrices;
* :func:`feature_shift_table`: per-column tests (Kolmogorov-Smirnov,
  chi-squared) for DataFrames, ranked by shift size;
* kernels and the median heuristic for the bandwidth.

Example
-------
>>> import numpy as np
>>> from transferkit.shift import mmd_test
>>> rng = np.random.default_rng(0)
>>> result = mmd_test(rng.normal(size=(100, 4)), rng.normal(0.5, size=(100, 4)),
...                   n_permutations=200, random_state=0)
>>> result.p_value < 0.05
True
"""

from transferkit.shift.discrepancy import coral_distance, proxy_a_distance
from transferkit.shift.feature_shift import feature_shift_table
from transferkit.shift.kernels import (
    KERNELS,
    MIXTURE_SCALES,
    gaussian_kernel,
    kernel_matrix,
    linear_kernel,
    median_heuristic,
    mixture_kernel,
)
from transferkit.shift.mmd import MMDTestResult, mmd2, mmd_test

__all__ = [
    "KERNELS",
    "MIXTURE_SCALES",
    "MMDTestResult",
    "coral_distance",
    "feature_shift_table",
    "gaussian_kernel",
    "kernel_matrix",
    "linear_kernel",
    "median_heuristic",
    "mixture_kernel",
    "mmd2",
    "mmd_test",
    "proxy_a_distance",
]
