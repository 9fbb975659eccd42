"""Your own model as a backbone: a ``torch.nn.Module``, any callable, or a Keras 3 model.

The extractor calls ``prepare(items)`` and then ``features(batch)``:

* ``prepare``: your ``preprocess(items) -> batch`` when given (items are the
  decoded inputs: RGB ``uint8`` (H, W, 3) arrays for ``modality="image"``,
  ``str`` for ``"text"``, array rows for ``"array"``); without one, the
  items must already be numeric arrays of one shape, and they are stacked
  into a float32 tensor of shape (B, ...).
* ``features``: ``module(batch)``; a tuple/list output uses its first element,
  a dict output needs ``output_key``; outputs with more than two dimensions
  are flattened to (B, D).

**Fingerprint** (part of the feature-cache key): for a module, its class and
a checksum of its ``state_dict``; for a callable (model or preprocessing),
its qualified name and a hash of its byte code, constants, defaults and
closure values (numbers, strings, arrays, tensors and modules by value;
other objects by identity, which only costs cache hits).  Globals and
object attributes are not seen: pass ``fingerprint="..."`` (any string that
changes when the output changes) when that matters, or do not use the
cache.

Keras 3 models (optional extra ``keras``; ``pip install keras``) run
through :class:`KerasBackbone`.  With ``KERAS_BACKEND=torch`` Keras runs on
PyTorch and needs no TensorFlow.  Keras is imported only when a Keras
backbone is built; the weights checksum uses ``model.get_weights()``.

Example
-------
>>> import torch
>>> from transferkit.backbones.custom import TorchBackbone
>>> bb = TorchBackbone(torch.nn.Linear(4, 2), modality="array")
>>> bb.features(bb.prepare([[0.0, 1.0, 2.0, 3.0]])).shape
torch.Size([1, 2])
"""

from __future__ import annotations

import hashlib
import marshal

import numpy as np

from transferkit.backbones.base import Backbone
from transferkit.validation import TransferKitInputError

__all__ = ["TorchBackbone", "CallableBackbone", "KerasBackbone", "callable_fingerprint",
           "is_keras_model"]

_MODALITIES = ("image", "text", "array")


def _value_digest(value, depth: int) -> str:
    """Stable digest of a captured value; unknown objects give a per-process id (a safe miss)."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return repr(value)
    if isinstance(value, (tuple, list)) and len(value) < 64:
        return "[" + ",".join(_value_digest(v, depth) for v in value) + "]"
    if isinstance(value, np.ndarray) and value.dtype != object:
        from transferkit.backbones.cache import array_checksum

        return "nd:" + array_checksum(value)
    mod = type(value).__module__.split(".")[0]
    if mod == "torch":
        import torch

        from transferkit.backbones.hf import module_checksum, tensor_bytes

        if isinstance(value, torch.nn.Module):
            return f"module:{type(value).__qualname__}:{module_checksum(value)}"
        if isinstance(value, torch.Tensor):
            h = hashlib.blake2b(f"{value.dtype}{tuple(value.shape)}".encode(), digest_size=8)
            h.update(tensor_bytes(value))
            return "tensor:" + h.hexdigest()
    if callable(value) and depth < 3:
        return str(callable_fingerprint(value, depth + 1))
    return f"{type(value).__qualname__}@{id(value)}"


def callable_fingerprint(fn, _depth: int = 0) -> str | None:
    """Qualified name + hash of a callable's code, constants, defaults and closure values.

    Captured numbers, strings, arrays, tensors and modules are hashed by
    value; other captured objects by identity (so the cache is not reused
    across processes for them, and never wrongly).  Globals are not seen.
    """
    if fn is None:
        return None
    target = fn
    if not hasattr(target, "__code__") and hasattr(target, "__call__"):
        target = getattr(type(fn), "__call__", fn)
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    code = getattr(target, "__code__", None)
    if code is None:
        return name
    try:
        blob = marshal.dumps(code)
    except ValueError:
        blob = code.co_code
    h = hashlib.blake2b(blob, digest_size=8)
    captured = [c.cell_contents for c in (getattr(target, "__closure__", None) or ())
                if _cell_filled(c)]
    captured += list(getattr(target, "__defaults__", None) or ())
    for value in captured:
        h.update(_value_digest(value, _depth).encode())
    return f"{name}:{h.hexdigest()}"


def _cell_filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _default_prepare(items):
    import torch

    try:
        arr = np.stack([np.asarray(x) for x in items])
    except ValueError as exc:
        raise TransferKitInputError(
            f"Without a preprocess= function the inputs must be numeric arrays of one shape "
            f"({exc}). Pass preprocess=... to resize/convert them."
        ) from None
    if arr.dtype.kind not in "biuf":
        raise TransferKitInputError(
            f"Without a preprocess= function the inputs must be numeric, got dtype {arr.dtype}.")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _to_features(out, output_key):
    import torch

    if isinstance(out, dict) or hasattr(out, "keys"):
        if output_key is None:
            raise TransferKitInputError(
                f"The model returned a mapping with keys {list(out.keys())}; pass "
                "output_key= to say which one holds the features.")
        out = out[output_key]
    elif isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        out = torch.as_tensor(np.asarray(out))
    if out.dim() == 1:
        out = out[:, None]
    elif out.dim() > 2:
        out = out.reshape(out.shape[0], -1)
    return out


class _Custom(Backbone):
    def __init__(self, preprocess, modality, feature_dim, name, fingerprint, output_key):
        if modality not in _MODALITIES:
            raise TransferKitInputError(f"modality must be one of {_MODALITIES}, got {modality!r}.")
        if modality != "array" and preprocess is None:
            raise TransferKitInputError(
                f"A custom {modality} backbone needs preprocess=... (a function from a list of "
                f"{'RGB uint8 arrays' if modality == 'image' else 'strings'} to the model's "
                "input batch).")
        if preprocess is not None and not callable(preprocess):
            raise TransferKitInputError("preprocess must be callable.")
        self.preprocess = preprocess
        self.modality = modality
        self.feature_dim = feature_dim
        self.name = name
        self.output_key = output_key
        self._user_fingerprint = fingerprint

    def prepare(self, items):
        if self.preprocess is None:
            return _default_prepare(items)
        return self.preprocess(list(items))

    def _base_fingerprint(self) -> dict:
        return {"name": self.name, "modality": self.modality,
                "preprocess": callable_fingerprint(self.preprocess),
                "output_key": self.output_key, "user": self._user_fingerprint}


class TorchBackbone(_Custom):
    """Wrap a ``torch.nn.Module``: ``features = module(prepare(items))``.

    Parameters
    ----------
    module : torch.nn.Module
        Put in ``eval()`` mode; its parameters stop requiring gradients.
    preprocess : callable, optional
        ``preprocess(list_of_items) -> tensor | ndarray | dict of tensors``.
    modality : {"array", "image", "text"}
    feature_dim : int, optional
    name : str, optional
    fingerprint : str, optional
        Extra cache-key component (see module docstring).
    output_key : str, optional
        Key of the features when the module returns a dict.
    """

    def __init__(self, module, preprocess=None, modality="array", feature_dim=None, name=None,
                 fingerprint=None, output_key=None):
        import torch

        if not isinstance(module, torch.nn.Module):
            raise TransferKitInputError(f"Expected a torch.nn.Module, got {type(module).__name__}.")
        super().__init__(preprocess, modality, feature_dim, name or type(module).__name__,
                         fingerprint, output_key)
        self.module = module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._weights = None

    def features(self, batch):
        import torch

        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        out = self.module(**batch) if isinstance(batch, dict) else self.module(batch)
        return _to_features(out, self.output_key)

    def fingerprint(self) -> dict:
        from transferkit.backbones.hf import module_checksum

        if self._weights is None:
            self._weights = module_checksum(self.module)
        return {"kind": "torch", "class": type(self.module).__qualname__,
                "weights": self._weights, **self._base_fingerprint()}


class CallableBackbone(_Custom):
    """Wrap any Python callable ``fn(batch) -> array-like (B, D)``.

    It runs where the callable runs (the extractor does not move it to a
    device); numpy or tensor outputs are both accepted.
    """

    def __init__(self, fn, preprocess=None, modality="array", feature_dim=None, name=None,
                 fingerprint=None, output_key=None):
        if not callable(fn):
            raise TransferKitInputError(f"Expected a callable, got {type(fn).__name__}.")
        super().__init__(preprocess, modality, feature_dim,
                         name or getattr(fn, "__qualname__", type(fn).__name__), fingerprint,
                         output_key)
        self.fn = fn
        self.module = None

    def features(self, batch):
        return _to_features(self.fn(batch), self.output_key)

    def fingerprint(self) -> dict:
        return {"kind": "callable", "fn": callable_fingerprint(self.fn),
                **self._base_fingerprint()}


def is_keras_model(obj) -> bool:
    """True for a Keras model, without importing Keras."""
    return any(c.__module__.split(".")[0] in ("keras", "tf_keras") and c.__name__ in
               ("Model", "Functional", "Sequential", "Layer") for c in type(obj).__mro__)


class KerasBackbone(_Custom):
    """Wrap a Keras 3 model: ``features = model(prepare(items), training=False)``.

    ``preprocess`` should return a numpy array (or what the model accepts);
    without one, the items are stacked into a float32 array.  The model runs
    on Keras' own device placement.
    """

    def __init__(self, model, preprocess=None, modality="array", feature_dim=None, name=None,
                 fingerprint=None, output_key=None):
        try:
            import keras  # noqa: F401
        except ImportError:
            raise TransferKitInputError(
                "Keras backbones need Keras 3: pip install keras (with KERAS_BACKEND=torch no "
                "TensorFlow is needed).") from None
        super().__init__(preprocess, modality, feature_dim, name or getattr(model, "name", None)
                         or type(model).__name__, fingerprint, output_key)
        self.model = model
        self.module = None
        self._weights = None

    def prepare(self, items):
        if self.preprocess is None:
            try:
                arr = np.stack([np.asarray(x) for x in items])
            except ValueError as exc:
                raise TransferKitInputError(
                    f"Without preprocess= the inputs must be arrays of one shape ({exc}).") from None
            return np.ascontiguousarray(arr, dtype=np.float32)
        return self.preprocess(list(items))

    def features(self, batch):
        import keras

        out = self.model(batch, training=False)
        if isinstance(out, dict):
            if self.output_key is None:
                raise TransferKitInputError(
                    f"The model returned keys {list(out)}; pass output_key=.")
            out = out[self.output_key]
        elif isinstance(out, (tuple, list)):
            out = out[0]
        return _to_features(np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32), None)

    def fingerprint(self) -> dict:
        if self._weights is None:
            h = hashlib.blake2b(digest_size=16)
            for w in self.model.get_weights():
                w = np.ascontiguousarray(w)
                h.update(f"{w.dtype}|{w.shape}".encode())
                h.update(w.data)
            self._weights = h.hexdigest()
        try:
            config = repr(self.model.get_config())
        except Exception:  # noqa: BLE001 - subclassed models may not serialise
            config = type(self.model).__qualname__
        return {"kind": "keras", "class": type(self.model).__qualname__, "weights": self._weights,
                "config": hashlib.blake2b(config.encode(), digest_size=8).hexdigest(),
                **self._base_fingerprint()}
