"""Image folders laid out as one sub-folder per class.

::

    root/
        cat/  a.jpg  b.png  ...
        dog/  c.jpg  sub/d.jpeg  ...

:func:`load_image_folder` lists the images without decoding them (unless
``verify=True``) and returns their paths, integer labels and the class
names.  Rules:

* class names are the sub-folder names, sorted; label ``i`` is
  ``class_names[i]``; files are listed recursively inside each class folder,
  in sorted order;
* entries whose name starts with ``.`` (``.DS_Store``, ``.ipynb_checkpoints``)
  are ignored silently;
* files whose extension is not an image extension (:data:`IMAGE_EXTENSIONS`,
  case-insensitive), and files lying directly in ``root``, are *skipped and
  recorded* in :attr:`ImageFolder.skipped` with the reason
  (``on_error="skip"``, the default) or raise
  :class:`~transferkit.validation.TransferKitInputError` (``on_error="raise"``);
* ``verify=True`` also opens every image header with Pillow and handles
  zero-byte or undecodable files the same way (otherwise those are reported
  when the images are read, see :mod:`transferkit.backbones.images`);
* errors: the folder does not exist, is empty, has no class sub-folders, or a
  class sub-folder holds no image.

Example
-------
>>> from transferkit.datasets.image_folder import load_image_folder
>>> folder = load_image_folder("photos/")  # doctest: +SKIP
>>> folder.class_names, len(folder.paths)  # doctest: +SKIP
(['cat', 'dog'], 120)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferkit.backbones.images import IMAGE_EXTENSIONS
from transferkit.validation import TransferKitInputError

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "load_image_folder"]


@dataclass
class ImageFolder:
    """Listing of an image folder.

    Attributes
    ----------
    paths : list of pathlib.Path
    labels : ndarray of int64
    class_names : list of str
    skipped : list of (pathlib.Path, str)
        Files left out, with the reason.
    """

    paths: list
    labels: np.ndarray
    class_names: list
    skipped: list = field(default_factory=list)


def _verify_image(path: Path) -> str | None:
    """None if Pillow can identify and verify the file, else the reason."""
    from PIL import Image

    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:  # UnidentifiedImageError, OSError, SyntaxError ...
        return f"not a readable image ({type(exc).__name__}: {exc})"
    return None


def load_image_folder(path, on_error: str = "skip", verify: bool = False,
                      extensions=IMAGE_EXTENSIONS) -> ImageFolder:
    """List an image folder with one sub-folder per class (see module docstring).

    Parameters
    ----------
    path : str or os.PathLike
    on_error : {"skip", "raise"}
        What to do with non-image files (and, with ``verify=True``,
        unreadable images): record them in ``skipped`` or raise.
    verify : bool, default=False
        Open each image header with Pillow while listing.
    extensions : set of str
        Accepted file extensions (lower case, with the dot).
    """
    if on_error not in ("skip", "raise"):
        raise TransferKitInputError(f"on_error must be 'skip' or 'raise'; got {on_error!r}.")
    root = Path(path).expanduser()
    if not root.exists():
        raise TransferKitInputError(f"Image folder {str(root)!r} does not exist.")
    if not root.is_dir():
        raise TransferKitInputError(
            f"{str(root)!r} is a file; expected a folder with one sub-folder per class."
        )
    extensions = {e.lower() for e in extensions}
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    if not entries:
        raise TransferKitInputError(
            f"Image folder {str(root)!r} is empty; expected one sub-folder per class."
        )
    class_dirs = [p for p in entries if p.is_dir()]
    if not class_dirs:
        raise TransferKitInputError(
            f"Image folder {str(root)!r} has no class sub-folders (found {len(entries)} "
            "file(s)); put the images of each class in their own sub-folder, e.g. "
            "root/cat/*.jpg, root/dog/*.jpg."
        )
    skipped = []

    def _skip(file: Path, reason: str):
        if on_error == "raise":
            raise TransferKitInputError(
                f"{str(file)!r}: {reason}. Remove it, or pass on_error='skip' to leave it out."
            )
        skipped.append((file, reason))

    for p in entries:
        if not p.is_dir():
            _skip(p, "file outside the class sub-folders")

    paths, labels, empty = [], [], []
    class_names = [d.name for d in class_dirs]
    for label, class_dir in enumerate(class_dirs):
        count = 0
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                file = Path(dirpath) / name
                if file.suffix.lower() not in extensions:
                    _skip(file, f"not an image file (extension {file.suffix or 'none'!r})")
                    continue
                if verify:
                    reason = _verify_image(file)
                    if reason is not None:
                        _skip(file, reason)
                        continue
                paths.append(file)
                labels.append(label)
                count += 1
        if count == 0:
            empty.append(class_dir.name)
    if empty:
        raise TransferKitInputError(
            f"Class folder(s) {empty} in {str(root)!r} hold no image files "
            f"(accepted extensions: {sorted(extensions)}); add images or remove the folders."
        )
    return ImageFolder(paths, np.asarray(labels, dtype=np.int64), class_names, skipped)
