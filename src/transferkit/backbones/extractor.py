"""FeatureExtractor: raw images or texts -> float32 feature matrix (scikit-learn transformer).

``FeatureExtractor(backbone).fit_transform(inputs)`` returns an (n, D)
float32 array that every other part of transferkit (shift measures,
adapters, estimators) can use.  The pipeline per call:

1. **read** the inputs according to the backbone's modality: images through
   :func:`transferkit.backbones.images.read_images` (a folder, file paths,
   PIL images, arrays; a folder means its image files in sorted name order,
   not recursive), texts through :func:`transferkit.backbones.text.as_texts`
   (a list, a Series, or a DataFrame with ``text_column=``), arrays row by
   row;
2. **cache lookup** (only with ``cache_dir``): each item's content hash
   (decoded pixels / UTF-8 text / array bytes) within the folder of the
   setting (backbone fingerprint: weights, preprocessing, layer, pooling;
   plus the numeric precision); see :mod:`transferkit.backbones.cache`;
3. **compute** the missing items in batches of ``batch_size``:
   ``backbone.prepare`` on CPU, a move to the device, ``backbone.features``
   under ``torch.inference_mode`` (and ``torch.autocast`` in bf16, or fp16
   where bf16 is unsupported, when mixed precision is on, CUDA only), then a
   float32 copy into the output (a backbone picks its batches' memory layout
   in ``prepare``: the built-in image backbones give channels-last batches,
   same values, faster convolutions).  Texts are processed in order of length
   (longest first) so each batch pads little; results go back to input
   order.  Duplicates are computed once when the cache is on;
4. **store** the new rows as one cache shard.

Device ``"auto"`` picks CUDA, then Apple MPS, then the CPU.
``num_threads`` sets torch's intra-op threads for the duration of each call
only.  ``fit`` ignores its data: it builds/loads the backbone (so
``transform`` may be called without ``fit``, which then fits lazily).

Example
-------
>>> import numpy as np, torch
>>> from transferkit.backbones.extractor import FeatureExtractor
>>> fx = FeatureExtractor(torch.nn.Linear(3, 2), batch_size=2)
>>> fx.fit_transform(np.ones((5, 3), dtype=np.float32)).shape
(5, 2)
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from transferkit.backbones.device import autocast_dtype, select_device
from transferkit.backbones.images import IMAGE_EXTENSIONS
from transferkit.validation import TransferKitInputError

__all__ = ["FeatureExtractor", "select_device", "IMAGE_EXTENSIONS"]

_PRECISIONS = ("auto", "bf16", "fp16", "no")


def _autocast_dtype(mixed_precision, device: str):
    """Name of the autocast dtype ("bfloat16"/"float16") or None (float32)."""
    mp = "no" if mixed_precision in (None, False) else mixed_precision
    mp = "auto" if mp is True else mp
    if mp not in _PRECISIONS:
        raise TransferKitInputError(
            f"mixed_precision must be one of {_PRECISIONS} (or True/False/None), got "
            f"{mixed_precision!r}.")
    if mp == "no" or not device.startswith("cuda"):
        return None  # CPU/MPS always run in float32
    if mp == "auto":
        return autocast_dtype(device)
    return "bfloat16" if mp == "bf16" else "float16"


def _to_device(batch, device):
    import torch

    if device == "cpu":
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


@contextlib.contextmanager
def _threads(n):
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _expand_folder(path: Path) -> list[Path]:
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise TransferKitInputError(
            f"Folder {str(path)!r} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    return files


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """Turn images or texts into float32 features with a pretrained backbone.

    Parameters
    ----------
    backbone : str, Backbone, torch.nn.Module, Keras model or callable
        A registered name (``"mobilenet_v2"``, ``"efficientnet_lite0"``,
        ``"all-MiniLM-L6-v2"``; see
        :func:`transferkit.backbones.list_backbones`), ``"hf:<path-or-id>"``
        for any Hugging Face model, a ready
        :class:`~transferkit.backbones.base.Backbone`, or your own module /
        Keras model / callable (wrapped by :mod:`transferkit.backbones.custom`;
        give ``backbone_kwargs={"preprocess": ..., "modality": ...}``).
    batch_size : int, default=32
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}, default="auto"
    mixed_precision : {"auto", "bf16", "fp16", "no"}, default="auto"
        Autocast on CUDA only ("auto": bf16 where supported, else fp16);
        CPU and MPS always compute in float32.  Outputs are float32 always.
    layer : int or str, optional
        Intermediate layer (passed to the backbone builder; registered and
        ``hf:`` backbones only).
    cache_dir : str, path or True, optional
        Feature cache folder; ``None`` (default) turns the cache off,
        ``True`` uses ``$TRANSFERKIT_CACHE_DIR`` or
        ``~/.cache/transferkit/features``.
    progress : bool, default=False
        tqdm progress bar over the computed items.
    num_threads : int, optional
        torch intra-op threads during each call (restored afterwards).
    backbone_kwargs : dict, optional
        Extra arguments for the backbone builder or wrapper, e.g.
        ``{"pooling": "cls", "max_length": 128}`` for text models.
    text_column : str, optional
        Column holding the texts when ``transform`` gets a DataFrame.
    text_errors : {"strict", "replace", ...}, default="strict"
        Handling of bytes that are not valid UTF-8 (see
        :mod:`transferkit.backbones.text`).

    Attributes
    ----------
    backbone_ : Backbone
    device_ : str
    autocast_dtype_ : str or None
    cache_ : FeatureCache or None
    n_features_out_ : int or None
        Known after the first ``transform`` when the backbone does not say.
    last_stats_ : dict
        ``n``, ``n_cached``, ``n_computed``, ``seconds`` of the last call.
    """

    def __init__(self, backbone="mobilenet_v2", batch_size=32, device="auto",
                 mixed_precision="auto", layer=None, cache_dir=None, progress=False,
                 num_threads=None, backbone_kwargs=None, text_column=None, text_errors="strict"):
        self.backbone = backbone
        self.batch_size = batch_size
        self.device = device
        self.mixed_precision = mixed_precision
        self.layer = layer
        self.cache_dir = cache_dir
        self.progress = progress
        self.num_threads = num_threads
        self.backbone_kwargs = backbone_kwargs
        self.text_column = text_column
        self.text_errors = text_errors

    # -- scikit-learn plumbing -----------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "backbone_")

    def _build_backbone(self):
        import torch

        from transferkit.backbones.base import Backbone
        from transferkit.backbones.custom import (CallableBackbone, KerasBackbone, TorchBackbone,
                                                  is_keras_model)

        spec, kw = self.backbone, dict(self.backbone_kwargs or {})
        if isinstance(spec, (str, os.PathLike)):
            spec = str(spec)
            if self.layer is not None:
                kw["layer"] = self.layer
            if spec.startswith("hf:"):
                from transferkit.backbones.hf import build_hf

                return build_hf(spec, **kw)
            from transferkit.backbones.registry import build_backbone

            return build_backbone(spec, **kw)
        if self.layer is not None:
            raise TransferKitInputError(
                "layer= only applies to registered and 'hf:' backbones; for your own model, "
                "pick the layer inside it (or set it on the Backbone).")
        if isinstance(spec, Backbone):
            if kw:
                raise TransferKitInputError("backbone_kwargs cannot be applied to a ready Backbone.")
            return spec
        if is_keras_model(spec):  # before nn.Module: torch-backend Keras models are both
            return KerasBackbone(spec, **kw)
        if isinstance(spec, torch.nn.Module):
            return TorchBackbone(spec, **kw)
        if callable(spec):
            return CallableBackbone(spec, **kw)
        raise TransferKitInputError(
            f"backbone must be a registered name, 'hf:<path-or-id>', a Backbone, a torch.nn.Module, "
            f"a Keras model or a callable; got {type(spec).__name__}.")

    def fit(self, X=None, y=None):
        """Validate the settings and load the backbone; the data are not used."""
        if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise TransferKitInputError(f"batch_size must be a positive int, got {self.batch_size!r}.")
        if self.num_threads is not None and (
                not isinstance(self.num_threads, (int, np.integer)) or self.num_threads < 1):
            raise TransferKitInputError(f"num_threads must be a positive int, got {self.num_threads!r}.")
        device = select_device(self.device)
        amp = _autocast_dtype(self.mixed_precision, device)
        backbone = self._build_backbone()
        if backbone.module is not None:
            backbone.module.to(device)
            backbone.module.eval()
        backbone.device = device
        if hasattr(backbone, "amp"):  # image backbones autocast themselves: keep them in step
            backbone.amp = amp is not None
        self.backbone_ = backbone
        self.device_ = device
        self.autocast_dtype_ = amp
        self.n_features_out_ = backbone.feature_dim
        self.cache_ = None
        if self.cache_dir is not None and self.cache_dir is not False:
            from transferkit.backbones.cache import FeatureCache, default_cache_dir

            root = default_cache_dir() if self.cache_dir is True else Path(self.cache_dir)
            setting = {"format": 1, "backbone": backbone.fingerprint(),
                       "precision": amp or "float32", "modality": backbone.modality}
            self.cache_ = FeatureCache(root, setting)
        return self

    # -- inputs ---------------------------------------------------------------
    def _read(self, X) -> list:
        modality = self.backbone_.modality
        if modality == "text":
            from transferkit.backbones.text import as_texts

            return as_texts(X, column=self.text_column, errors=self.text_errors)
        if modality == "image":
            from transferkit.backbones.images import read_images

            if isinstance(X, (str, os.PathLike)) and Path(X).is_dir():
                X = _expand_folder(Path(X))
            return read_images(X).images
        if hasattr(X, "to_numpy"):  # DataFrame / Series
            X = X.to_numpy()
        if isinstance(X, np.ndarray):
            if X.ndim == 0:
                raise TransferKitInputError("Expected one input per row, got a scalar.")
            return list(X)
        return list(X)

    # -- main loop ------------------------------------------------------------
    def transform(self, X):
        """Features of ``X``: float32 array of shape (n_inputs, n_features)."""
        if not hasattr(self, "backbone_"):
            self.fit()
        t0 = time.perf_counter()
        items = self._read(X)
        n = len(items)
        if n == 0:
            raise TransferKitInputError("No inputs to extract features from (empty input).")
        cache = self.cache_
        out = None
        todo = list(range(n))  # positions to compute
        dup_of = None
        keys = None
        if cache is not None:
            from transferkit.backbones.cache import item_key

            try:
                keys = [item_key(it) for it in items]
            except TypeError as exc:
                raise TransferKitInputError(
                    f"The feature cache needs inputs it can hash (arrays, str, bytes): {exc} "
                    "Turn the cache off (cache_dir=None) for these inputs.") from None
            found = cache.get(keys)
            if found:
                dim = len(next(iter(found.values())))
                out = np.empty((n, dim), dtype=np.float32)
            first: dict[bytes, int] = {}
            todo, dup_of = [], []
            for i, k in enumerate(keys):
                if k in found:
                    out[i] = found[k]
                elif k in first:
                    dup_of.append((i, first[k]))
                else:
                    first[k] = i
                    todo.append(i)
        n_cached = n - len(todo) - (len(dup_of) if dup_of else 0)
        if todo:
            out = self._compute(items, todo, out, n)
            if dup_of:
                for i, j in dup_of:
                    out[i] = out[j]
            if cache is not None:
                cache.put([keys[i] for i in todo], out[todo])
        self.n_features_out_ = out.shape[1]
        self.last_stats_ = {"n": n, "n_cached": n_cached, "n_computed": len(todo),
                            "seconds": time.perf_counter() - t0}
        return out

    def _compute(self, items, todo, out, n):
        import torch
        from tqdm.auto import tqdm

        bb = self.backbone_
        # a module is moved to the device in fit; a plain callable or Keras model runs where
        # it runs, so its batches stay on the CPU
        device = self.device_ if bb.module is not None else "cpu"
        if bb.modality == "text":  # longest first: little padding per batch
            todo = sorted(todo, key=lambda i: -len(items[i]))
        amp = self.autocast_dtype_

        def autocast():
            return (torch.autocast("cuda", dtype=getattr(torch, amp)) if amp
                    else contextlib.nullcontext())

        bs = int(self.batch_size)
        with _threads(self.num_threads), torch.inference_mode(), \
                tqdm(total=len(todo), disable=not self.progress, unit="item",
                     desc=f"features ({getattr(bb, 'name', type(bb).__name__)})") as bar:
            for start in range(0, len(todo), bs):
                idx = todo[start:start + bs]
                batch = bb.prepare([items[i] for i in idx])
                batch = _to_device(batch, device)
                with autocast():
                    feats = bb.features(batch)
                if isinstance(feats, torch.Tensor):
                    feats = feats.detach().float().cpu().numpy()
                feats = np.asarray(feats, dtype=np.float32)
                if feats.ndim != 2 or feats.shape[0] != len(idx):
                    raise TransferKitInputError(
                        f"The backbone returned features of shape {feats.shape} for a batch of "
                        f"{len(idx)} items; expected ({len(idx)}, D).")
                if out is None:
                    out = np.empty((n, feats.shape[1]), dtype=np.float32)
                elif out.shape[1] != feats.shape[1]:
                    raise TransferKitInputError(
                        f"Feature width changed from {out.shape[1]} to {feats.shape[1]}; clear "
                        "the cache folder if the backbone changed without a new fingerprint.")
                out[idx] = feats
                bar.update(len(idx))
        return out

    def get_feature_names_out(self, input_features=None):
        """``<backbone name>_<i>`` for each output column."""
        if getattr(self, "n_features_out_", None) is None:
            raise TransferKitInputError("The feature width is known after the first transform.")
        name = str(getattr(self.backbone_, "name", "feature")).replace("/", "_")
        return np.asarray([f"{name}_{i}" for i in range(self.n_features_out_)], dtype=object)
