"""On-disk feature cache keyed by content.

Layout (``directory`` is the ``cache_dir`` given to the extractor)::

    <directory>/<setting key>/setting.json        # the fingerprint, for humans
    <directory>/<setting key>/shard-<uuid>.npz    # one shard per transform call

* The **setting key** is a BLAKE2b hash of the canonical JSON of everything
  that changes the features: the backbone fingerprint (name, weights
  checksum, preprocessing, layer, pooling, ...) and the numeric precision.
  Changing any of them gives a new folder, so stale features can never be
  returned.
* The **item key** is a 128-bit BLAKE2b hash of one item's content: for an
  image the decoded RGB pixels (with shape and dtype), for a text its UTF-8
  bytes, for an array its bytes, shape and dtype.  File names, paths and
  dates play no part: the same picture under two names is computed once.
* Each shard is one ``.npz`` holding ``keys`` (``uint8``, one 16-byte row
  per item; not numpy's ``S16``, which drops trailing zero bytes), ``features``
  (float32, one row per key) and ``checksum`` (BLAKE2b of the feature and
  key bytes).  A shard is written to a temporary file in the same folder
  and moved into place with ``os.replace``, so readers see either the
  whole shard or none of it, and concurrent writers never clash (each
  writes its own uuid-named shard).
* A shard that cannot be read, or whose checksum does not match, is
  **corrupt**: it is deleted (best effort) and its items are recomputed.

Deleting the folder (or any shard) is always safe.  The default directory,
when the extractor is given ``cache_dir=True``, is
``$TRANSFERKIT_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/transferkit/features``,
else ``~/.cache/transferkit/features``.

Example
-------
>>> import tempfile, numpy as np
>>> from transferkit.backbones.cache import FeatureCache, item_key
>>> cache = FeatureCache(tempfile.mkdtemp(), {"backbone": "demo"})
>>> keys = [item_key("a"), item_key("b")]
>>> cache.put(keys, np.eye(2, dtype=np.float32))
>>> found = cache.get(keys)
>>> sorted(found) == sorted(keys)
True
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["FeatureCache", "item_key", "setting_key", "default_cache_dir", "array_checksum"]

_KEY_BYTES = 16


def default_cache_dir() -> Path:
    """The documented default cache folder (see module docstring)."""
    env = os.environ.get("TRANSFERKIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "transferkit" / "features"


def item_key(item) -> bytes:
    """128-bit content hash of one item (str, bytes or numpy array)."""
    h = hashlib.blake2b(digest_size=_KEY_BYTES)
    if isinstance(item, str):
        h.update(b"s")
        h.update(item.encode("utf-8", errors="surrogatepass"))
    elif isinstance(item, (bytes, bytearray, memoryview)):
        h.update(b"b")
        h.update(item)
    else:
        arr = np.asarray(item)
        if arr.dtype == object:
            raise TypeError(f"Cannot hash an object array for the cache (item {type(item)}).")
        h.update(b"a" + str(arr.dtype.str).encode() + repr(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).data)
    return h.digest()


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def setting_key(setting: dict) -> str:
    """Hex BLAKE2b of the canonical JSON of ``setting``."""
    return hashlib.blake2b(_canonical(setting).encode(), digest_size=16).hexdigest()


def array_checksum(*arrays: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype.str).encode() + repr(a.shape).encode())
        h.update(a.data)
    return h.hexdigest()


class FeatureCache:
    """Per-item feature cache in one folder per setting (see module docstring).

    Parameters
    ----------
    directory : path
        Root cache folder (created on first write).
    setting : dict
        JSON-serialisable description of everything that changes the output.
    """

    def __init__(self, directory, setting: dict):
        self.root = Path(directory).expanduser()
        self.setting = setting
        self.key = setting_key(setting)
        self.folder = self.root / self.key
        # shard name -> list of keys (bytes); rebuilt incrementally from the folder listing
        self._index: dict[str, list] = {}
        self.n_corrupt = 0

    # -- reading -------------------------------------------------------------
    def _shards(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.folder)
                          if n.startswith("shard-") and n.endswith(".npz"))
        except FileNotFoundError:
            return []

    def _drop(self, name: str) -> None:
        self.n_corrupt += 1
        self._index.pop(name, None)
        try:
            os.remove(self.folder / name)
        except OSError:
            pass

    def _refresh(self) -> None:
        names = self._shards()
        for gone in set(self._index) - set(names):
            del self._index[gone]
        for name in names:
            if name in self._index:
                continue
            try:
                with np.load(self.folder / name, allow_pickle=False) as data:
                    keys = data["keys"]
                if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != _KEY_BYTES:
                    raise ValueError("bad keys")
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
                self._drop(name)
                continue
            self._index[name] = _key_list(keys)

    def get(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        """Features for the ``keys`` found (verified against the checksum)."""
        if not keys:
            return {}
        self._refresh()
        wanted = set(keys)
        found: dict[bytes, np.ndarray] = {}
        for name, shard_keys in list(self._index.items()):
            rows = [i for i, k in enumerate(shard_keys) if k in wanted and k not in found]
            if not rows:
                continue
            try:
                with np.load(self.folder / name, allow_pickle=False) as data:
                    feats = data["features"]
                    karr = data["keys"]
                    checksum = str(data["checksum"])
                ok = (feats.dtype == np.float32 and feats.ndim == 2
                      and feats.shape[0] == len(shard_keys) == karr.shape[0]
                      and array_checksum(karr, feats) == checksum
                      and _key_list(karr) == shard_keys)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
                ok = False
            if not ok:
                self._drop(name)
                continue
            for i in rows:
                found[shard_keys[i]] = feats[i]
            if len(found) == len(wanted):
                break
        return found

    # -- writing -------------------------------------------------------------
    def put(self, keys: list[bytes], features: np.ndarray) -> None:
        """Store one shard (atomically); no-op for zero rows."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        if len(keys) == 0:
            return
        if features.ndim != 2 or features.shape[0] != len(keys):
            raise ValueError("features must have one row per key")
        self.folder.mkdir(parents=True, exist_ok=True)
        info = self.folder / "setting.json"
        if not info.exists():
            _atomic_write(info, lambda f: f.write(_canonical(self.setting).encode()))
        if any(len(k) != _KEY_BYTES for k in keys):
            raise ValueError(f"keys must be {_KEY_BYTES} bytes (use item_key)")
        karr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), _KEY_BYTES)
        checksum = np.asarray(array_checksum(karr, features))
        name = f"shard-{uuid.uuid4().hex}.npz"
        _atomic_write(self.folder / name,
                      lambda f: np.savez(f, keys=karr, features=features, checksum=checksum))
        self._index[name] = list(keys)


def _key_list(karr: np.ndarray) -> list:
    return [row.tobytes() for row in karr]


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
