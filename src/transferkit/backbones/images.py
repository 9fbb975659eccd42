"""Image inputs: decoding to RGB ``uint8`` arrays, and backbone preprocessing.

Reading (:func:`to_rgb_array`, :func:`read_images`)
---------------------------------------------------
Every accepted input becomes a C-contiguous ``uint8`` array of shape
(H, W, 3):

* **file paths** (``str`` / ``os.PathLike``): decoded with Pillow; the EXIF
  orientation tag is applied; for animated files the first frame is used.
  Missing, zero-byte, corrupt, truncated or non-image files raise
  :class:`~transferkit.validation.TransferKitInputError` naming the file
  (Pillow's global ``LOAD_TRUNCATED_IMAGES`` is left alone), unless
  ``on_error="skip"`` in :func:`read_images`, which drops the file and records
  it in :attr:`ReadResult.skipped`.
* **PIL images**: palette (``P``) images are expanded through their palette
  (with their transparency, if any); 16-bit grey (``I;16*``, and 32-bit
  ``I`` holding 16-bit data) is scaled by 255/65535; grey, CMYK, YCbCr and
  1-bit images are converted to RGB.
* **numpy arrays**, channels last: (H, W) or (H, W, 1) grey (replicated to
  three channels), (H, W, 3) RGB, (H, W, 4) RGBA.  ``uint8`` is taken as is;
  ``bool`` maps to {0, 255}; ``uint16`` is scaled by 255/65535; other integer
  types must lie in [0, 255]; floats must be finite and lie in [0, 1] and are
  scaled by 255 and rounded (a float outside [0, 1] is an error: divide by
  255 first if it holds 0..255 values).
* **Alpha**: RGBA/LA/PA inputs are composited on a white background,
  ``rgb * a + 255 * (1 - a)`` with ``a = alpha / 255`` (fully transparent
  pixels become white, as when the image is shown on a white page).

Preprocessing (:func:`preprocess`)
----------------------------------
The usual ImageNet evaluation transform, written out:

1. resize so that the shorter side equals ``resize`` (the longer side is
   scaled by the same factor and rounded), with Pillow's ``BILINEAR`` filter,
   which is antialiased when shrinking (its support widens with the scale
   factor); images smaller than the crop are *upscaled* by this step, since
   ``resize >= input_size``;
2. centre crop ``input_size`` x ``input_size`` (offsets rounded);
3. scale to [0, 1] (divide by 255) and normalise each channel,
   ``(x - mean_c) / std_c``;
4. stack to a float32 tensor of shape (N, 3, input_size, input_size).

:class:`ImageBackbone` implements the :class:`~transferkit.backbones.base.Backbone`
interface for convolutional networks with this preprocessing; it is shared by
MobileNetV2 and EfficientNet-Lite0.  This module imports torch only inside the
functions that need it.

Example
-------
>>> import numpy as np
>>> from transferkit.backbones.images import to_rgb_array
>>> to_rgb_array(np.zeros((4, 5), dtype=np.float32)).shape
(4, 5, 3)
>>> to_rgb_array(np.full((1, 1, 4), [0, 0, 0, 0], dtype=np.uint8))[0, 0].tolist()
[255, 255, 255]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferkit.backbones.base import Backbone
from transferkit.backbones.device import autocast_dtype, select_device
from transferkit.validation import TransferKitInputError

__all__ = [
    "IMAGE_EXTENSIONS",
    "to_rgb_array",
    "read_image",
    "read_images",
    "ReadResult",
    "resize_and_crop",
    "preprocess",
    "select_device",
    "ImageBackbone",
    "load_weights",
]

#: File extensions (lower case) read as images: by the feature extractor when
#: it is given a folder, and by :func:`transferkit.datasets.load_image_folder`.
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
    ".pbm", ".pnm",
})


def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        raise TransferKitInputError("Reading images needs Pillow: pip install pillow") from None
    return Image


# -- decoding -------------------------------------------------------------------------------


def _scale_to_uint8(values: np.ndarray, maximum: float) -> np.ndarray:
    return np.clip(np.rint(values.astype(np.float64) * (255.0 / maximum)), 0, 255).astype(np.uint8)


def _pil_to_rgb(image, what: str) -> np.ndarray:
    mode = image.mode
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode.startswith("I;16") or mode == "I":
        data = np.asarray(image)
        if mode == "I" and data.size and (data.min() < 0 or data.max() > 65535):
            raise TransferKitInputError(
                f"{what}: 32-bit integer image with values outside 0..65535; convert it "
                "to 8 or 16 bits first."
            )
        return _array_to_rgb(_scale_to_uint8(data, 65535.0), what)
    if mode == "F":
        return _array_to_rgb(np.asarray(image, dtype=np.float32), what)
    if mode in ("RGBA", "LA", "RGBa", "La"):
        image = image.convert("RGBA")
        return _array_to_rgb(np.asarray(image), what)
    if mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _array_to_rgb(array: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4) and arr.shape[0] in (1, 3, 4):
        raise TransferKitInputError(
            f"{what}: array of shape {arr.shape} looks channels-first; images must be "
            "channels-last (H, W[, C]): use arr.transpose(1, 2, 0)."
        )
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)):
        raise TransferKitInputError(
            f"{what}: expected an image array of shape (H, W), (H, W, 1), (H, W, 3) or "
            f"(H, W, 4); got shape {arr.shape}."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise TransferKitInputError(f"{what}: empty image of shape {arr.shape}.")
    if arr.dtype == np.uint8:
        pass
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        arr = _scale_to_uint8(arr, 65535.0)
    elif np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 255:
            raise TransferKitInputError(
                f"{what}: integer image ({arr.dtype}) with values in [{arr.min()}, {arr.max()}]; "
                "expected 0..255 (use uint16 for 16-bit data)."
            )
        arr = arr.astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise TransferKitInputError(f"{what}: float image contains NaN or infinity.")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise TransferKitInputError(
                f"{what}: float image with values in [{lo:g}, {hi:g}]; float images must lie "
                "in [0, 1] (divide 0..255 data by 255, or pass uint8)."
            )
        arr = np.clip(np.rint(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    else:
        raise TransferKitInputError(f"{what}: unsupported image dtype {arr.dtype}.")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    channels = arr.shape[-1]
    if channels == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif channels == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        rgb = arr[:, :, :3].astype(np.float32)
        arr = np.clip(np.rint(rgb * alpha + 255.0 * (1.0 - alpha)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _read_file(path: Path) -> np.ndarray:
    Image = _pil()
    from PIL import ImageOps, UnidentifiedImageError

    what = f"Image file {str(path)!r}"
    if not path.exists():
        raise TransferKitInputError(f"{what} does not exist.")
    if path.is_dir():
        raise TransferKitInputError(f"{what} is a directory, not an image file.")
    if path.stat().st_size == 0:
        raise TransferKitInputError(f"{what} is empty (0 bytes); re-copy or remove it.")
    try:
        with Image.open(path) as image:
            image.seek(0)
            image.load()
            try:
                image = ImageOps.exif_transpose(image)
            except Exception:  # malformed EXIF must not make a readable image fail
                pass
            return _pil_to_rgb(image, what)
    except UnidentifiedImageError:
        raise TransferKitInputError(
            f"{what} is not a readable image (unknown format or corrupt header)."
        ) from None
    except TransferKitInputError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise TransferKitInputError(
            f"{what} is corrupt or truncated ({type(exc).__name__}: {exc}); re-copy or remove it."
        ) from None


def to_rgb_array(item, what: str | None = None) -> np.ndarray:
    """Decode one image input (path, PIL image or array) to an (H, W, 3) ``uint8`` array."""
    if isinstance(item, (str, os.PathLike)):
        return _read_file(Path(item))
    if isinstance(item, np.ndarray):
        if (item.dtype == np.uint8 and item.ndim == 3 and item.shape[-1] == 3
                and min(item.shape[:2])):
            return np.ascontiguousarray(item)
        return _array_to_rgb(item, what or "Image array")
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    if Image is not None and isinstance(item, Image.Image):
        return _pil_to_rgb(item, what or "PIL image")
    if hasattr(item, "__array__"):
        return _array_to_rgb(np.asarray(item), what or "Image array")
    raise TransferKitInputError(
        f"Unsupported image input of type {type(item).__name__}: pass a file path, a PIL "
        "image or a numpy array (H, W[, C])."
    )


read_image = to_rgb_array


@dataclass
class ReadResult:
    """Images decoded by :func:`read_images`.

    Attributes
    ----------
    images : list of ndarray
        (H, W, 3) ``uint8`` arrays, for the inputs that could be read.
    indices : ndarray of int
        Position in the input of each entry of ``images``.
    skipped : list of (int, str, str)
        ``(position, input description, reason)`` for each input dropped with
        ``on_error="skip"``.
    """

    images: list
    indices: np.ndarray
    skipped: list = field(default_factory=list)


def _as_item_list(items) -> list:
    """A list of single-image inputs.

    One path or PIL image becomes a one-item list.  A numpy array is a stack
    of images along axis 0 when it is 4-D (N, H, W, C) or 3-D (N, H, W) with
    a last axis not of size 3 or 4; a 2-D array, or a 3-D array whose last
    axis has size 3 or 4, is *one* image.
    """
    if isinstance(items, (str, os.PathLike)) or hasattr(items, "getbands"):
        return [items]
    if isinstance(items, np.ndarray):
        if items.ndim == 4 or (items.ndim == 3 and items.shape[-1] not in (3, 4)):
            return list(items)
        if items.ndim in (2, 3):
            return [items]
        raise TransferKitInputError(
            f"Cannot read images from an array of shape {items.shape}; pass (N, H, W[, C]) "
            "or a list of images."
        )
    try:
        return list(items)
    except TypeError:
        raise TransferKitInputError(
            f"Expected a list of images, got {type(items).__name__}."
        ) from None


def read_images(items, on_error: str = "raise") -> ReadResult:
    """Decode many inputs; ``on_error="skip"`` drops unreadable ones and records why.

    Parameters
    ----------
    items : sequence of path, PIL image or array; or one (N, H, W[, C]) array
        (a 3-D array whose last axis has size 3 or 4 is one image; see
        :func:`_as_item_list`)
    on_error : {"raise", "skip"}
    """
    if on_error not in ("raise", "skip"):
        raise TransferKitInputError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")
    items = _as_item_list(items)
    images, indices, skipped = [], [], []
    for i, item in enumerate(items):
        desc = str(item) if isinstance(item, (str, os.PathLike)) else f"input #{i}"
        try:
            images.append(to_rgb_array(item, what=f"Image #{i}"))
            indices.append(i)
        except TransferKitInputError as exc:
            if on_error == "raise":
                raise
            skipped.append((i, desc, str(exc)))
    return ReadResult(images, np.asarray(indices, dtype=np.int64), skipped)


# -- preprocessing --------------------------------------------------------------------------


def resize_and_crop(image: np.ndarray, resize: int, input_size: int) -> np.ndarray:
    """Resize the shorter side to ``resize`` (PIL bilinear, antialiased), centre-crop.

    Returns an (input_size, input_size, 3) ``uint8`` array.
    """
    Image = _pil()
    if resize < input_size:
        raise TransferKitInputError(
            f"resize ({resize}) must be >= input_size ({input_size}) so the centre crop fits."
        )
    h, w = image.shape[:2]
    if h <= w:
        new_h, new_w = resize, max(resize, int(round(w * resize / h)))
    else:
        new_h, new_w = max(resize, int(round(h * resize / w))), resize
    if (new_h, new_w) != (h, w):
        pil = Image.fromarray(image).resize((new_w, new_h), resample=Image.BILINEAR)
        image = np.asarray(pil)
    top = int(round((new_h - input_size) / 2.0))
    left = int(round((new_w - input_size) / 2.0))
    return image[top:top + input_size, left:left + input_size]


def preprocess(items, input_size: int, resize: int, mean, std, channels_last: bool = False):
    """Inputs -> float32 tensor (N, 3, input_size, input_size), normalised.

    See the module docstring for the exact steps.  The tensor is contiguous,
    or in channels-last memory layout with ``channels_last=True`` (same
    values; faster convolutions).
    """
    import torch

    arrays = [to_rgb_array(item, what=f"Image #{i}")
              for i, item in enumerate(_as_item_list(items))]
    if not arrays:
        raise TransferKitInputError("No images to preprocess (empty input).")
    crops = np.stack([resize_and_crop(a, resize, input_size) for a in arrays])
    batch = torch.from_numpy(crops).permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    batch = (batch - mean_t) / std_t  # channels-last strides, from the (N, H, W, 3) crops
    if channels_last:
        return batch.contiguous(memory_format=torch.channels_last)
    return batch.contiguous()


# -- backbone -------------------------------------------------------------------------------


def load_weights(model, resolved, what: str) -> None:
    """Load the checkpoint ``resolved`` (ResolvedWeights or None) into ``model``, strictly."""
    if resolved is None:
        return
    from transferkit.backbones.weights import load_state_dict

    state = load_state_dict(resolved.path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise TransferKitInputError(
            f"Weights {str(resolved.path)!r} do not fit {what}: {str(exc).splitlines()[0]}"
        ) from None


class ImageBackbone(Backbone):
    """A frozen convolutional network plus its preprocessing (Backbone interface).

    Parameters
    ----------
    config : PretrainedConfig
    module : torch.nn.Module
        Must provide ``forward_features(x, layer) -> (B, C, H, W)`` feature map.
    layer : object
        Passed to ``forward_features``; ``None`` for the last block.
    feature_dim : int
    weights : ResolvedWeights or None
        ``None`` for random initialisation.
    device : str, optional
        ``None``/``"auto"`` selects CUDA, MPS or CPU.  The module is moved
        there on first use (so a
        :class:`~transferkit.backbones.extractor.FeatureExtractor` that sets
        its own ``device`` moves it only once).
    amp : bool, optional
        Mixed precision (autocast) on CUDA; default on for CUDA, off elsewhere.
        Features are returned as float32 either way.
    input_size, resize : int, optional
        Override the config's preprocessing sizes (e.g. smaller inputs for
        small images).
    """

    modality = "image"
    #: ``prepare`` gives channels-last (NHWC) batches: same values, faster convolutions
    #: (oneDNN on CPU, cuDNN with mixed precision; MobileNetV2 on 2 CPU cores: ~1.5x).
    channels_last = True

    def __init__(self, config, module, layer, feature_dim, weights=None, device=None,
                 amp=None, input_size=None, resize=None):
        self.config = config
        self.name = config.name
        self.layer = layer
        self.feature_dim = int(feature_dim)
        self.weights = weights
        self.input_size = int(input_size or config.input_size)
        self.resize = int(resize or (config.resize if input_size is None else input_size))
        if self.resize < self.input_size:
            raise TransferKitInputError(
                f"resize ({self.resize}) must be >= input_size ({self.input_size})."
            )
        self.mean = tuple(float(m) for m in config.mean)
        self.std = tuple(float(s) for s in config.std)
        self.device = select_device(device)
        self.amp = (self.device.startswith("cuda")) if amp is None else bool(amp)
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self.module = module
        self._placed_on = None  # device the module was last moved to by ``features``

    def prepare(self, items):
        """Raw images (arrays, paths or PIL images) -> normalised float32 NCHW tensor (CPU).

        Channels-last memory layout when ``self.channels_last``.
        """
        return preprocess(items, self.input_size, self.resize, self.mean, self.std,
                          channels_last=self.channels_last)

    def features(self, batch):
        """(B, 3, S, S) tensor -> (B, feature_dim) float32 globally average-pooled features."""
        import torch

        if self._placed_on != self.device:
            self.module.to(self.device)
            self._placed_on = self.device
        batch = batch.to(self.device)
        dtype = autocast_dtype(self.device) if self.amp else None
        if dtype is not None:
            with torch.autocast("cuda", dtype=getattr(torch, dtype)):
                fmap = self.module.forward_features(batch, self.layer)
        else:
            fmap = self.module.forward_features(batch, self.layer)
        return fmap.float().mean(dim=(2, 3))

    def __call__(self, items):
        """Convenience: prepare + features under inference mode, as a numpy array."""
        import torch

        with torch.inference_mode():
            return self.features(self.prepare(items)).cpu().numpy()

    def fingerprint(self) -> dict:
        return {
            "name": self.name,
            "weights_sha256": self.weights.sha256 if self.weights is not None else "random-init",
            "layer": "last" if self.layer is None else str(self.layer),
            "pooling": "global-average",
            "input_size": self.input_size,
            "resize": self.resize,
            "interpolation": "PIL bilinear (antialiased)",
            "mean": list(self.mean),
            "std": list(self.std),
            "amp": self.amp,
        }

    def __repr__(self):
        return (f"{type(self).__name__}(name={self.name!r}, feature_dim={self.feature_dim}, "
                f"layer={self.layer!r}, device={self.device!r})")

