"""Checkpoints of the training engine: safetensors and JSON, no pickle, written atomically.

A checkpoint is a folder written through the project's one output writer
(:class:`~transferkit.output.OutputFolder`: staged beside the destination,
``manifest.json`` with every file's SHA-256, swapped in atomically, so a run
killed at any instant leaves the previous complete checkpoint or the new
one):

* ``model.safetensors``: the model's ``state_dict`` (parameters and buffers);
* ``best.safetensors``: the weights of the best validation epoch, if any;
* ``optimizer.safetensors``: the optimizer's per-parameter state tensors
  (``state.<index>.<name>``);
* ``rng.safetensors``: the torch random states (CPU, and each CUDA device);
* ``state.json``: format, fingerprint, step, epoch, position in the epoch,
  the optimizer's parameter-group settings, the gradient scaler, the
  early-stopping state and the history.

:func:`load_checkpoint` verifies the manifest (a truncated or edited file is a
clear error, never a silent restart) and the fingerprint (names, shapes and
dtypes of the model's tensors and the settings that fix the training
trajectory): a checkpoint of another model or other settings is refused with
the first difference named.

Example
-------
>>> import tempfile, pathlib, torch
>>> model = torch.nn.Linear(2, 1)
>>> folder = pathlib.Path(tempfile.mkdtemp()) / "ckpt"
>>> save_checkpoint(folder, {"model": model.state_dict(), "optimizer": {}, "rng": {}},
...                 {"step": 3, "fingerprint": {"a": 1}})
>>> load_checkpoint(folder, {"a": 1})["state"]["step"]
3
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from transferkit.output import MANIFEST, OutputFolder, verify
from transferkit.validation import TransferKitInputError

__all__ = ["save_checkpoint", "load_checkpoint", "has_checkpoint", "model_fingerprint",
           "optimizer_tensors", "optimizer_state", "FORMAT"]

FORMAT = "transferkit-checkpoint/1"
_TENSOR_FILES = ("model", "best", "optimizer", "rng")


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the names, shapes and dtypes of ``model``'s state tensors."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
    return digest.hexdigest()


def _plain(tensors: dict) -> dict:
    """Detached, contiguous CPU copies (safetensors refuses shared storage)."""
    return {k: v.detach().to("cpu").clone().contiguous() for k, v in tensors.items()}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, list]:
    """(tensors, groups): the per-parameter state as named tensors and the
    parameter-group settings (JSON-serialisable, parameter indices included)."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if not isinstance(value, torch.Tensor):
                value = torch.tensor(value)
            tensors[f"state.{index}.{key}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()}
              for group in state["param_groups"]]
    return _plain(tensors), groups


def optimizer_state(tensors: dict, groups: list) -> dict:
    """The inverse of :func:`optimizer_tensors`: a ``state_dict`` for ``load_state_dict``."""
    state: dict = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in group.items()}
              for group in groups]
    return {"state": state, "param_groups": groups}


def has_checkpoint(folder) -> bool:
    """Whether ``folder`` holds a checkpoint (complete or not)."""
    folder = Path(folder)
    return (folder / "state.json").exists() or (folder / MANIFEST).exists()


def save_checkpoint(folder, tensors: dict, state: dict) -> None:
    """Write one checkpoint: ``tensors`` maps file stems of :data:`_TENSOR_FILES`
    to dicts of tensors (an empty or missing one is not written), ``state`` is
    the JSON part.  Replaces the previous checkpoint in ``folder`` atomically."""
    folder = Path(folder)
    with OutputFolder(folder, overwrite=True, settings={"format": FORMAT}) as stage:
        for stem in _TENSOR_FILES:
            if tensors.get(stem):
                save_file(_plain(tensors[stem]), str(stage / f"{stem}.safetensors"))
        (stage / "state.json").write_text(json.dumps({**state, "format": FORMAT}, indent=1))


def _difference(saved: dict, expected: dict) -> str:
    for key in sorted(set(saved) | set(expected)):
        if saved.get(key) != expected.get(key):
            return f"{key}: checkpoint {saved.get(key)!r}, this run {expected.get(key)!r}"
    return ""


def load_checkpoint(folder, fingerprint: dict) -> dict:
    """``{"state": dict, <stem>: tensors, ...}`` of the checkpoint in ``folder``,
    verified against its manifest and against ``fingerprint``."""
    folder = Path(folder)
    try:
        verify(folder)
    except TransferKitInputError as exc:
        raise TransferKitInputError(
            f"The checkpoint in {folder} is damaged ({exc}). Delete the folder to start "
            f"again, or point checkpoint_dir elsewhere; it will not be resumed from.") from None
    try:
        state = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError) as exc:
        raise TransferKitInputError(
            f"The checkpoint in {folder} has no readable state.json ({exc}).") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TransferKitInputError(
            f"{folder} is not a transferkit training checkpoint (format "
            f"{state.get('format') if isinstance(state, dict) else None!r}, expected {FORMAT!r}).")
    difference = _difference(state.get("fingerprint") or {}, fingerprint)
    if difference:
        raise TransferKitInputError(
            f"The checkpoint in {folder} was written for another model or other training "
            f"settings ({difference}). Resume with the same model and settings, or use "
            f"another checkpoint_dir.")
    loaded = {"state": state}
    for stem in _TENSOR_FILES:
        path = folder / f"{stem}.safetensors"
        if path.exists():
            try:
                loaded[stem] = load_file(str(path))
            except Exception as exc:  # safetensors raises its own error types
                raise TransferKitInputError(
                    f"The checkpoint file {path} cannot be read ({exc}).") from None
    return loaded
