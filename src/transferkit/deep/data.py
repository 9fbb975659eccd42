"""Training data for the engine: arrays or a torch ``Dataset``, batched in a seeded order.

The order of epoch :math:`e` is ``torch.randperm(n)`` drawn from a generator
seeded with ``seed * 1_000_003 + e``: a pure function of (seed, epoch), so a
resumed run re-creates the epoch's order and skips the batches it already
took (its *position*) without storing any sampler state.  A last batch of a
single row is dropped (BatchNorm cannot train on one row); every other row is
used once per epoch.

Example
-------
>>> import numpy as np
>>> data = as_dataset((np.zeros((5, 2), dtype="float32"), np.arange(5)))
>>> [len(b) for b in epoch_batches(len(data), batch_size=2, seed=0, epoch=0)]
[2, 2]
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from transferkit.validation import TransferKitInputError

__all__ = ["as_dataset", "epoch_batches", "collate"]


def _tensor(values, what: str) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        tensor = values
    else:
        array = np.asarray(values)
        if array.dtype == object or array.dtype.kind in "USM":
            raise TransferKitInputError(
                f"{what} must be numbers, got values of type {array.dtype}; encode labels "
                f"as integers (classes) or floats (regression) first.")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_floating_point():
        if not torch.isfinite(tensor).all():
            raise TransferKitInputError(
                f"{what} holds NaN or infinite values; remove or impute them before training.")
        tensor = tensor.float()
    return tensor


def as_dataset(data) -> Dataset:
    """A torch ``Dataset`` as is, or a tuple of equally long arrays/tensors as a
    ``TensorDataset`` (floats as float32, checked for NaN/inf)."""
    if isinstance(data, Dataset):
        return data
    if not isinstance(data, (tuple, list)) or not data:
        raise TransferKitInputError(
            f"Training data must be a torch Dataset or a tuple of arrays (inputs, targets), "
            f"got {type(data).__name__}.")
    tensors = [_tensor(part, f"Part {i} of the training data") for i, part in enumerate(data)]
    lengths = {len(t) for t in tensors}
    if len(lengths) != 1:
        raise TransferKitInputError(
            f"The parts of the training data have different numbers of rows: "
            f"{[len(t) for t in tensors]}; give one row per example in each.")
    if not lengths.pop():
        raise TransferKitInputError("The training data has no rows: nothing to train on.")
    return TensorDataset(*tensors)


def epoch_batches(n_rows: int, batch_size: int, seed: int, epoch: int) -> list:
    """Index batches (LongTensors) of one epoch, in that epoch's seeded order."""
    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    order = torch.randperm(n_rows, generator=generator)
    batches = list(torch.split(order, batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    return batches


def collate(dataset: Dataset, indices) -> tuple:
    """The rows ``indices`` of ``dataset`` stacked into one tuple of tensors."""
    if isinstance(dataset, TensorDataset):
        return tuple(t[indices] for t in dataset.tensors)
    rows = [dataset[int(i)] for i in indices]
    if not isinstance(rows[0], (tuple, list)):
        rows = [(row,) for row in rows]
    return tuple(torch.stack([torch.as_tensor(r[k]) for r in rows]) for k in range(len(rows[0])))
