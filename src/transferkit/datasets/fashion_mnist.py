"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) read from the Debian package files.

70,000 grey 28 x 28 images of clothing in 10 classes (60,000 train, 10,000
test), as installed by the Debian/Ubuntu package ``dataset-fashion-mnist``
(``apt-get install dataset-fashion-mnist``) under
``/usr/share/datasets/fashion-mnist/``.  Nothing is downloaded or cached.

The IDX format (big-endian): a 4-byte magic number ``0x00000803`` (unsigned
bytes, 3 dimensions) for images or ``0x00000801`` (1 dimension) for labels,
then one 4-byte size per dimension, then the raw ``uint8`` data.  The reader
checks the magic numbers, the sizes against the file length, and that image
and label counts agree.

Example
-------
>>> from transferkit.datasets.fashion_mnist import load_fashion_mnist
>>> data = load_fashion_mnist("test")  # doctest: +SKIP
>>> data.images.shape, data.labels.shape  # doctest: +SKIP
((10000, 28, 28), (10000,))
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferkit.validation import TransferKitInputError

__all__ = ["FASHION_MNIST_CLASSES", "FashionMNIST", "load_fashion_mnist", "read_idx"]

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_INSTALL = ("install the Debian package 'dataset-fashion-mnist' "
            "(sudo apt-get update && sudo apt-get install dataset-fashion-mnist), or pass "
            "root= a folder holding the four idx .gz files")


@dataclass(frozen=True)
class FashionMNIST:
    """One split: ``images`` (N, 28, 28) uint8, ``labels`` (N,) int64, ``class_names``."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple


def read_idx(path, expected_ndim: int) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes with ``expected_ndim`` dimensions."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise TransferKitInputError(
            f"Cannot read Fashion-MNIST file {str(path)!r} ({exc}); reinstall it: {_INSTALL}."
        ) from None
    if len(raw) < 4:
        raise TransferKitInputError(f"{str(path)!r} is too short to be an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or ndim != expected_ndim:
        raise TransferKitInputError(
            f"{str(path)!r} has magic number 0x{raw[:4].hex()}, expected "
            f"0x000008{expected_ndim:02x} (unsigned-byte IDX with {expected_ndim} dimension(s))."
        )
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != int(np.prod(shape)):
        raise TransferKitInputError(
            f"{str(path)!r} is truncated or padded: header says shape {shape} "
            f"({int(np.prod(shape))} bytes) but {len(raw) - header} data bytes follow."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def load_fashion_mnist(split: str = "train", root=DEFAULT_ROOT) -> FashionMNIST:
    """Load the ``"train"`` (60,000) or ``"test"`` (10,000) split.

    Returns
    -------
    FashionMNIST
        ``images`` uint8 (N, 28, 28), ``labels`` int64 in 0..9, ``class_names``.
    """
    if split not in _FILES:
        raise TransferKitInputError(f"split must be 'train' or 'test'; got {split!r}.")
    root = Path(root)
    image_file, label_file = (root / name for name in _FILES[split])
    missing = [str(p) for p in (image_file, label_file) if not p.is_file()]
    if missing:
        raise TransferKitInputError(
            f"Fashion-MNIST files not found: {missing}. To fix: {_INSTALL}."
        )
    images = read_idx(image_file, 3)
    labels = read_idx(label_file, 1).astype(np.int64)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise TransferKitInputError(
            f"Fashion-MNIST {split}: {images.shape[0]} images of shape {images.shape[1:]} but "
            f"{labels.shape[0]} labels; the files are inconsistent, reinstall them."
        )
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise TransferKitInputError(f"Fashion-MNIST {split}: labels outside 0..9.")
    return FashionMNIST(images, labels, FASHION_MNIST_CLASSES)
