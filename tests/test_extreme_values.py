"""Numbers that stay numbers (issue 19): the shift statistics, kernels and the autopilot give
the same answer on data scaled by 1e-300 ... 1e300 as on the data itself, or a clear error
where the answer itself does not fit in float64; never NaN or a p-value computed from NaN."""

import numpy as np
import pytest

from transferkit.autopilot import Autopilot
from transferkit.domains import stack_domains
from transferkit.preprocessing import TabularPreprocessor
from transferkit.shift import (coral_distance, kernel_matrix, median_heuristic, mixture_kernel,
                               mmd2, mmd_test, proxy_a_distance)
from transferkit.validation import TransferKitInputError

SCALES = [1e-300, 1e-200, 1e-154, 1e-100, 1e100, 1e154, 1e200, 1e300]
RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
Y_SAME = RNG.normal(size=(50, 3))
Y_SHIFTED = RNG.normal(size=(50, 3)) + 3.0


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("kernel", ["gaussian", "mixture"])
def test_mmd_test_is_the_same_at_any_magnitude(scale, kernel):
    for Y in (Y_SAME, Y_SHIFTED):
        reference = mmd_test(X, Y, kernel=kernel, n_permutations=99, random_state=0)
        scaled = mmd_test(X * scale, Y * scale, kernel=kernel, n_permutations=99,
                          random_state=0)
        assert np.isfinite(scaled.statistic)
        np.testing.assert_allclose(scaled.statistic, reference.statistic, rtol=1e-9, atol=1e-12)
        assert scaled.p_value == reference.p_value
        np.testing.assert_allclose(scaled.bandwidth / scale, reference.bandwidth, rtol=1e-12)
    assert mmd_test(X * scale, Y_SHIFTED * scale, kernel=kernel, n_permutations=99,
                    random_state=0).p_value == 0.01     # a 3-sd shift is found at any scale


@pytest.mark.parametrize("scale", SCALES)
def test_mmd2_median_and_kernels_at_any_magnitude(scale):
    np.testing.assert_allclose(mmd2(X * scale, Y_SHIFTED * scale), mmd2(X, Y_SHIFTED),
                               rtol=1e-9)
    np.testing.assert_allclose(median_heuristic(X * scale) / scale, median_heuristic(X),
                               rtol=1e-12)
    np.testing.assert_allclose(kernel_matrix(X * scale, Y_SAME * scale),
                               kernel_matrix(X, Y_SAME), rtol=1e-9, atol=1e-300)
    K = mixture_kernel(X * scale, bandwidth=scale)
    np.testing.assert_allclose(K, mixture_kernel(X, bandwidth=1.0), rtol=1e-9)


@pytest.mark.parametrize("scale", [1e-75, 1e-60, 1e60, 1e75])
def test_linear_kernel_statistics_scale_by_the_square(scale):
    np.testing.assert_allclose(mmd2(X * scale, Y_SHIFTED * scale, kernel="linear") / scale**2,
                               mmd2(X, Y_SHIFTED, kernel="linear"), rtol=1e-9)
    np.testing.assert_allclose(coral_distance(X * scale, 2 * Y_SAME * scale) / scale**4,
                               coral_distance(X, 2 * Y_SAME), rtol=1e-9)


@pytest.mark.parametrize("call", [
    lambda: mmd2(X * 1e200, Y_SHIFTED * 1e200, kernel="linear"),
    lambda: kernel_matrix(X * 1e200, kernel="linear"),
    lambda: coral_distance(X * 1e154, 2 * Y_SAME * 1e154),
])
def test_an_answer_too_large_for_float64_is_a_clear_error(call):
    with pytest.raises(TransferKitInputError, match="overflows float64 .* rescale the features"):
        call()


@pytest.mark.parametrize("scale", SCALES)
def test_proxy_a_distance_at_any_magnitude(scale):
    reference = proxy_a_distance(X, Y_SHIFTED, random_state=0)
    assert proxy_a_distance(X * scale, Y_SHIFTED * scale, random_state=0) == reference
    assert reference > 1.5


def test_constant_features_keep_every_statistic_finite():
    Xc = np.column_stack([X, np.full(len(X), 5.0)])
    Yc = np.column_stack([Y_SHIFTED, np.full(len(Y_SHIFTED), 5.0)])
    result = mmd_test(Xc, Yc, n_permutations=49, random_state=0)
    assert np.isfinite(result.statistic) and result.p_value == 0.02
    assert np.isfinite(coral_distance(Xc, Yc)) and np.isfinite(proxy_a_distance(Xc, Yc))
    assert np.isfinite(TabularPreprocessor().fit_transform(Xc)).all()


@pytest.mark.parametrize("scale", [1e-300, 1e-160, 1e160, 1e300])
def test_the_preprocessing_gives_the_same_features_at_any_magnitude(scale):
    data = np.vstack([X, Y_SHIFTED])
    data[3, 1] = np.nan
    np.testing.assert_allclose(TabularPreprocessor().fit_transform(data * scale),
                               TabularPreprocessor().fit_transform(data), rtol=1e-9, atol=1e-12)


def test_the_autopilot_scores_tiny_features_as_it_scores_them_unscaled():
    rng = np.random.default_rng(1)
    Xs, Xt = rng.normal(size=(150, 3)), rng.normal(size=(60, 3)) + 0.5
    ys, yt = (Xs[:, 0] > 0).astype(int), (Xt[:, 0] > 0.5).astype(int)
    runs = []
    for scale in (1.0, 1e-300):
        X_all, y_all = stack_domains(Xs * scale, ys, Xt * scale, yt)
        result = Autopilot(strategies=["pooled", "coral"], n_splits=3, n_repeats=1, n_jobs=1,
                           shift_permutations=20, random_state=0).run(X_all, y_all)
        runs.append(result.leaderboard.set_index("strategy")["balanced_accuracy_mean"])
    np.testing.assert_allclose(runs[1].sort_index(), runs[0].sort_index(), atol=1e-9)
    assert runs[1].max() > 0.8            # not chance


def _direct_methods():
    from transferkit.feature_based import CORAL, JDA, TCA, SubspaceAlignment
    from transferkit.instance_based import (KLIEP, KMM, ULSIF, DiscriminativeWeights,
                                            NearestNeighbourWeights, RuLSIF)

    return {"kmm": lambda: KMM(random_state=0), "kliep": lambda: KLIEP(random_state=0),
            "ulsif": lambda: ULSIF(random_state=0), "rulsif": lambda: RuLSIF(random_state=0),
            "nn_weights": lambda: NearestNeighbourWeights(random_state=0),
            "discriminative": lambda: DiscriminativeWeights(random_state=0),
            "coral": CORAL, "subspace_alignment": lambda: SubspaceAlignment(n_components=2),
            "tca": lambda: TCA(n_components=2, random_state=0),
            "jda": lambda: JDA(n_components=2, n_iter=2, random_state=0)}


def _tagged(scale):
    rng = np.random.default_rng(0)
    Xs, Xt = rng.normal(size=(80, 3)), rng.normal(size=(60, 3)) + 0.5
    yt = np.full(60, None, dtype=object)
    yt[:20] = (Xt[:20, 0] > 0.5).astype(int)
    return stack_domains(Xs * scale, (Xs[:, 0] > 0).astype(int), Xt * scale, yt)


def _output(model, X, y):
    fitted = model.fit(X, y)
    return fitted.weights_ if hasattr(fitted, "weights_") else fitted.transform(X)


@pytest.mark.parametrize("scale", [1e-300, 1e-100, 1e100, 1e300])
@pytest.mark.parametrize("name", sorted(_direct_methods()))
def test_weighters_and_adapters_refuse_features_at_unsafe_magnitudes(name, scale):
    X, y = _tagged(scale)
    with pytest.raises(TransferKitInputError, match="standardise them"):
        _direct_methods()[name]().fit(X, y)


@pytest.mark.parametrize("scale", [1e-60, 1e60])
@pytest.mark.parametrize("name", sorted(_direct_methods()))
def test_weighters_and_adapters_work_at_safe_magnitudes(name, scale):
    X, y = _tagged(scale)
    assert np.isfinite(_output(_direct_methods()[name](), X, y)).all()
