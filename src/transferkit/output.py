"""The one way transferkit writes an output folder: staged, manifested, swapped in atomically.

A run never writes into its destination.  :class:`OutputFolder` stages every
file in a hidden sibling folder ``.<name>.tk-staging-<id>``, writes a
``manifest.json`` (transferkit version, settings, every input file with its
SHA-256, every output file with its SHA-256) and only then puts the staged
folder in place:

* destination absent: one ``rename`` (atomic);
* destination a previous transferkit run (``overwrite=True`` only): the two
  folders are exchanged in one ``renameat2(RENAME_EXCHANGE)`` call (Linux),
  so at every instant the destination holds either the complete previous run
  or the complete new one; the previous run, now in the staging name, is
  deleted after.  Where the kernel lacks that call the swap is two renames,
  and a reader that finds the destination missing restores the previous run
  from its ``.<name>.tk-previous-<id>`` folder (:func:`recover`).

The destination must be absent, an empty folder, or a folder whose every file
is listed in its own transferkit manifest (a previous run); any other file in
it is the user's, so the run is refused before any work and nothing is
deleted.  Hidden staging and previous-run folders left by a killed run are
ignored by readers and removed by the next run on that destination.
:func:`verify` checks a folder against its manifest.

Example
-------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with OutputFolder(root / "out", settings={"seed": 0}) as stage:
...     _ = (stage / "results.json").write_text("{}")
>>> sorted(p.name for p in (root / "out").iterdir())
['manifest.json', 'results.json']
>>> verify(root / "out")["files"][0]["path"]
'results.json'
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

from transferkit.validation import TransferKitInputError

__all__ = ["OutputFolder", "MANIFEST", "check_destination", "verify", "recover",
           "sha256_of"]

MANIFEST = "manifest.json"
FORMAT = "transferkit-output/1"
_STAGING, _PREVIOUS = ".tk-staging-", ".tk-previous-"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _leftovers(dest: Path) -> list[Path]:
    prefix = f".{dest.name}"
    if not dest.parent.is_dir():
        return []
    return [p for p in dest.parent.iterdir()
            if p.name.startswith(prefix + _STAGING) or p.name.startswith(prefix + _PREVIOUS)]


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest, or None when it has none that transferkit wrote."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not isinstance(manifest.get("files"), list):
        return None
    return manifest


def recover(dest) -> None:
    """Put a previous run back where a killed two-rename swap left the destination
    missing (only without ``RENAME_EXCHANGE``); a no-op otherwise."""
    dest = Path(dest)
    if dest.exists():
        return
    previous = [p for p in _leftovers(dest) if _PREVIOUS in p.name]
    if previous:
        os.rename(max(previous, key=lambda p: p.stat().st_mtime), dest)


def check_destination(dest, overwrite: bool = False) -> str:
    """Whether ``dest`` can take a new run: "absent", "empty" or "previous";
    otherwise a clear error (call it before any work)."""
    dest = Path(dest)
    recover(dest)
    if not dest.exists():
        return "absent"
    if not dest.is_dir():
        raise TransferKitInputError(
            f"The output folder {dest} is an existing file; name a folder (absent, empty, or "
            f"the output of a previous transferkit run).")
    present = _files(dest)
    if not present and not any(dest.iterdir()):
        return "empty"
    manifest = read_manifest(dest)
    if manifest is None:
        entries = sorted(p.name for p in dest.iterdir())
        raise TransferKitInputError(
            f"The output folder {dest} holds files that transferkit did not write (e.g. "
            f"{entries[:3]}); it is left alone. Choose an absent or empty folder.")
    listed = {f.get("path") for f in manifest["files"] if isinstance(f, dict)} | {MANIFEST}
    foreign = [p for p in present if p not in listed]
    if foreign:
        raise TransferKitInputError(
            f"The output folder {dest} is a previous transferkit run, but it also holds "
            f"files that run did not write ({foreign[:5]}); they are left alone. Move them "
            f"away or choose another folder.")
    if not overwrite:
        raise TransferKitInputError(
            f"The output folder {dest} holds a previous transferkit run; pass --overwrite "
            f"(overwrite=True) to replace it, or choose another folder.")
    return "previous"


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)),
                       rename_exchange)
    return result == 0


class OutputFolder:
    """Context manager: a staging folder to write into, moved into place at the end.

    Parameters
    ----------
    dest : path
        The destination folder (see the module docstring for what it may be).
    overwrite : bool
        Replace a previous transferkit run there.
    inputs : iterable of paths
        Input files, listed in the manifest with their checksums (and never
        written over: a staged file that is one of them is refused).
    settings : dict
        The run's settings, copied into the manifest (JSON-serialisable).

    On an exception inside the ``with`` block (Ctrl-C included) the staging
    folder is removed and the destination is untouched.
    """

    def __init__(self, dest, overwrite: bool = False, inputs=(), settings=None):
        self.dest = Path(dest)
        self.overwrite = overwrite
        self.inputs = [Path(p) for p in inputs]
        self.settings = settings or {}
        self.state = check_destination(self.dest, overwrite)
        self.stage: Path | None = None

    def __enter__(self) -> Path:
        for leftover in _leftovers(self.dest):      # a killed run's staging or previous
            shutil.rmtree(leftover, ignore_errors=True)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.stage = self.dest.parent / f".{self.dest.name}{_STAGING}{uuid.uuid4().hex[:12]}"
        self.stage.mkdir()
        return self.stage

    def __exit__(self, kind, value, traceback) -> bool:
        if kind is not None:
            shutil.rmtree(self.stage, ignore_errors=True)
            return False
        try:
            self._write_manifest()
            self._swap_in()
        except BaseException:
            shutil.rmtree(self.stage, ignore_errors=True)
            raise
        return False

    def _write_manifest(self) -> None:
        from transferkit import __version__
        from transferkit.io import write_json

        files = [{"path": rel, "sha256": sha256_of(self.stage / rel),
                  "bytes": (self.stage / rel).stat().st_size} for rel in _files(self.stage)]
        inputs = [{"path": str(p.resolve()), "sha256": sha256_of(p)}
                  for p in self.inputs if p.is_file()]
        write_json(self.stage / MANIFEST, {
            "format": FORMAT, "transferkit_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "settings": self.settings, "inputs": inputs, "files": files})
        _fsync_tree(self.stage)

    def _swap_in(self) -> None:
        state = check_destination(self.dest, self.overwrite)   # again: it may have changed
        if state == "empty":
            self.dest.rmdir()
        if state in ("absent", "empty"):
            os.rename(self.stage, self.dest)
        elif _exchange(self.stage, self.dest):
            shutil.rmtree(self.stage, ignore_errors=True)      # now the previous run
        else:
            previous = self.dest.parent / f".{self.dest.name}{_PREVIOUS}{uuid.uuid4().hex[:12]}"
            os.rename(self.dest, previous)
            os.rename(self.stage, self.dest)
            shutil.rmtree(previous, ignore_errors=True)
        _fsync_dir(self.dest.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for path in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        _fsync_dir(path)


def verify(folder) -> dict:
    """The manifest of a transferkit output folder whose files all match it, or a
    clear error naming the first file that is missing, changed or unlisted."""
    folder = Path(folder)
    recover(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise TransferKitInputError(
            f"{folder} has no valid transferkit {MANIFEST}; it is not a complete "
            f"transferkit output folder.")
    for entry in manifest["files"]:
        path = folder / str(entry.get("path", ""))
        if not path.is_file():
            raise TransferKitInputError(
                f"{path} is listed in {folder / MANIFEST} but missing: the folder is "
                f"incomplete. Re-run to write it again.")
        if sha256_of(path) != entry.get("sha256"):
            raise TransferKitInputError(
                f"{path} does not match its checksum in {folder / MANIFEST}: it was changed "
                f"or is corrupt. Re-run to write it again.")
    return manifest
