"""Data-parallel training for the engine over several processes, through Hugging Face Accelerate.

``Trainer(distributed=True)`` trains one model copy per process, each on its
own shard of every batch, with gradients averaged by PyTorch's
``DistributedDataParallel`` (DDP; Li et al. 2020, "PyTorch Distributed:
Experiences on Accelerating Data Parallel Training", VLDB 13(12)).  The
processes come from the launcher's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): ``torchrun
--nproc_per_node W script.py`` or ``accelerate launch --num_processes W
script.py``; gloo on the CPU, NCCL on GPUs (one per process).  Started
without a launcher it is a world of one process.

**The same steps as one process.**  Every process builds the same global
batches (:func:`~transferkit.deep.data.epoch_batches`, seeded) and process
:math:`r` of :math:`W` takes part :math:`r` of each (:func:`shard`, the split
of ``numpy.array_split``): :math:`n_r` of the :math:`G` rows, unequal when
:math:`W` does not divide :math:`G`.  With :math:`\\bar\\ell_r` the mean loss
of the shard, one process's gradient of the global-batch mean is

.. math::
    \\nabla \\frac{1}{G}\\sum_{i=1}^{G} \\ell_i
    = \\sum_r \\frac{n_r}{G} \\nabla \\bar\\ell_r
    = \\frac{1}{W}\\sum_r \\nabla\\Big(\\frac{n_r W}{G}\\,\\bar\\ell_r\\Big),

and DDP's all-reduce computes the mean over processes on the right, so each
process back-propagates its shard's mean loss times the weight
:math:`w_r = n_r W / G`.  A process with an empty shard (:math:`G < W`)
runs the batch's first row with weight 0: it adds a zero gradient but still
joins every all-reduce.  After ``backward`` each process holds the averaged
gradient, so clipping it (``clip_grad_norm_`` on the parameters) clips the
global norm, and every process takes the same AdamW step (same schedule and
parameter groups as one process).

**One decision for all.**  The reported training loss is the all-reduced
:math:`\\sum_r (n_r/G)\\,\\bar\\ell_r` (the global-batch mean; a non-finite
one stops every process with the same error); validation runs on the main
process and its value is broadcast, so early stopping and the best epoch are
the same everywhere; a time budget stops all processes at the step where any
one passes it; checkpoints hold every process's random state and are
written by the main process only, followed by a barrier.  Resume needs the
same number of processes and a folder every process can read; with two
processes it is bit-identical (a sum of two gradients has one order), with
more the restarted DDP may sum in another order (its gradient buckets are
laid out afresh), so the weights agree to float rounding only.  Process
:math:`r` seeds torch with ``random_state + r`` (as Accelerate's
``set_seed(device_specific=True)``): dropout masks differ between shards, so
with dropout the run is not the one-process run.

**BatchNorm is not synchronised.**  Each process normalises with its own
shard's statistics and DDP broadcasts the main process's running averages at
every forward; torch's ``SyncBatchNorm`` runs on GPUs only.  With BatchNorm,
results therefore differ from one process, and shards of one row fail.

The ``loss`` function receives the DDP-wrapped model (its forward is what
synchronises); reach the module's own attributes with
``getattr(model, "module", model)``.  Validation and ``metric`` get the
plain module.

Example
-------
In a script ``train.py`` run as ``torchrun --nproc_per_node 2 train.py``:

>>> from transferkit.deep import Trainer, classification_loss
>>> result = Trainer(epochs=5, distributed=True).fit(  # doctest: +SKIP
...     model, classification_loss, (X, y))
>>> result.processes  # doctest: +SKIP
2
"""

from __future__ import annotations

import torch

from transferkit.validation import TransferKitInputError

__all__ = ["start", "shard", "OneProcess", "Processes"]


def start(distributed: bool, device: str):
    """The processes a :class:`~transferkit.deep.Trainer` run trains in: a
    :class:`Processes` world through Accelerate, or :class:`OneProcess`."""
    return Processes(device) if distributed else OneProcess(device)


def shard(rows: torch.Tensor, rank: int, processes: int) -> tuple[torch.Tensor, float]:
    """(rows of process ``rank``, its loss weight :math:`n_r W / G`).

    >>> [(r.tolist(), w) for r, w in (shard(torch.arange(5), k, 2) for k in (0, 1))]
    [([0, 1, 2], 1.2), ([3, 4], 0.8)]
    >>> shard(torch.arange(2), 2, 3)[0].tolist(), shard(torch.arange(2), 2, 3)[1]
    ([0], 0.0)
    """
    part = torch.tensor_split(rows, processes)[rank]
    if len(part) == 0:
        return rows[:1], 0.0
    return part, len(part) * processes / len(rows)


class OneProcess:
    """Training in this process alone: every hook of :class:`Processes` is the identity."""

    processes, rank, main = 1, 0, True

    def __init__(self, device: str):
        self.device = device

    def wrap(self, model):
        return model

    def shard(self, rows):
        return rows, None

    def mean_loss(self, value, weight):
        return value

    def anyone(self, flag: bool) -> bool:
        return flag

    def from_main(self, compute):
        return compute()

    def gather_rng(self, states: dict) -> dict:
        return states

    def own_rng(self, states: dict) -> dict:
        return states

    def barrier(self) -> None:
        pass


class Processes:
    """This process's part in a data-parallel run (see the module docstring).

    ``device`` "cpu" starts Accelerate with ``cpu=True`` (gloo); any other
    device lets it choose this process's accelerator.  Accelerate's own mixed
    precision stays off: the engine's ``mixed_precision`` setting governs.
    """

    def __init__(self, device: str):
        try:
            from accelerate import Accelerator
        except ImportError:
            raise TransferKitInputError(
                'distributed=True needs Hugging Face Accelerate; install it with '
                'pip install "transferkit[distributed]".') from None
        try:
            self.accelerator = Accelerator(cpu=device == "cpu", mixed_precision="no")
        except ValueError as exc:       # Accelerate's state was set up for another device
            raise TransferKitInputError(
                f"distributed=True cannot start Accelerate on device={device!r} in this "
                f"process ({exc}).") from None
        self.processes = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        self.main = self.accelerator.is_main_process
        self.device = str(self.accelerator.device)

    def wrap(self, model):
        """``model`` in DDP (as is in a world of one process)."""
        return self.accelerator.prepare_model(model)

    def shard(self, rows):
        return shard(rows, self.rank, self.processes)

    def mean_loss(self, value, weight):
        """The global-batch mean loss from this shard's mean ``value`` (all-reduced)."""
        share = value.float().reshape(1) * (weight / self.processes)
        return self.accelerator.reduce(share, reduction="sum")

    def anyone(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any process."""
        value = torch.tensor([float(flag)], device=self.device)
        return bool(self.accelerator.reduce(value, reduction="max").item() > 0)

    def from_main(self, compute):
        """``compute()`` run on the main process, its float sent to every process."""
        from accelerate.utils import broadcast

        value = torch.tensor([compute() if self.main else 0.0], dtype=torch.float64,
                             device=self.device)
        return float(broadcast(value, from_process=0).item())

    def gather_rng(self, states: dict) -> dict:
        """Every process's random ``states``, named ``<name>.rank<r>``."""
        from accelerate.utils import gather_object

        every = gather_object([states])
        return {f"{name}.rank{r}": tensor for r, own in enumerate(every)
                for name, tensor in own.items()}

    def own_rng(self, states: dict) -> dict:
        """This process's part of :meth:`gather_rng`'s ``states``."""
        tail = f".rank{self.rank}"
        return {name[:-len(tail)]: tensor for name, tensor in states.items()
                if name.endswith(tail)}

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()
