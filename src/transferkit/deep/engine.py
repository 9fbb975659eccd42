"""The one training engine of :mod:`transferkit.deep`: every deep method trains through it.

:class:`Trainer` minimises ``loss(model, batch)`` over the training rows with

* AdamW (Loshchilov & Hutter 2019, "Decoupled weight decay regularization"),
  decay on weight matrices and kernels only (not on biases or normalisation
  scales), one parameter group per entry of ``param_groups`` with its own
  learning rate (layer-wise rates for fine-tuning);
* linear warm-up then cosine decay of every group's rate
  (:func:`~transferkit.deep.schedule.warmup_cosine`);
* gradient clipping to a global L2 norm;
* early stopping on a validation metric (greater is better; default: minus
  the mean validation loss) with the best epoch's weights restored;
* a wall-clock budget: training stops cleanly before the step that would
  pass it (judged by the mean step time so far; at least one step runs),
  keeps the best weights and says so (``TrainResult.stopped``);
* mixed precision on CUDA (autocast in bfloat16 where the GPU has it, else
  float16 with a gradient scaler), float32 on CPU;
* checkpoints (:mod:`~transferkit.deep.checkpoint`) every
  ``checkpoint_every`` steps and at each epoch's end; ``resume=True``
  continues a killed run exactly where its last checkpoint stopped: weights,
  optimizer moments, step, epoch, position inside the epoch, random state,
  early-stopping state and history, so on CPU the resumed run ends with the
  same weights, bit for bit, as one that was never interrupted;
* data parallelism over several processes (``distributed=True``, through
  Hugging Face Accelerate; :mod:`~transferkit.deep.distributed`) with the
  same global batches, gradients and decisions as one process.

Random choices come from the seed alone: the epochs' row orders from their
own generators (:func:`~transferkit.deep.data.epoch_batches`), dropout and
other in-model randomness from the global torch generator seeded inside
``torch.random.fork_rng``, which restores the caller's random state when
training ends (no global seeding side effect).

Example
-------
>>> import torch
>>> from transferkit.deep import Trainer, classification_loss
>>> X = torch.randn(64, 3); y = (X[:, 0] > 0).long()
>>> model = torch.nn.Linear(3, 2)
>>> result = Trainer(epochs=5, batch_size=16, learning_rate=0.1).fit(
...     model, classification_loss, (X, y))
>>> result.steps, result.stopped
(20, None)
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from transferkit.backbones.device import autocast_dtype, select_device
from transferkit.deep.checkpoint import (
    has_checkpoint,
    load_checkpoint,
    model_fingerprint,
    optimizer_state,
    optimizer_tensors,
    save_checkpoint,
)
from transferkit.deep.data import as_dataset, collate, epoch_batches
from transferkit.deep.distributed import start
from transferkit.deep.schedule import warmup_cosine
from transferkit.settings import TrainSettings, validated
from transferkit.validation import TransferKitInputError

__all__ = ["Trainer", "TrainResult", "classification_loss", "regression_loss"]


def classification_loss(model, batch):
    """Cross-entropy of ``model(inputs)`` logits against integer class ``targets``."""
    inputs, targets = batch[0], batch[1]
    return F.cross_entropy(model(inputs), targets.long())


def regression_loss(model, batch):
    """Mean squared error of ``model(inputs)`` (flattened) against float ``targets``."""
    inputs, targets = batch[0], batch[1]
    return F.mse_loss(model(inputs).reshape(targets.shape).float(), targets.float())


@dataclass
class TrainResult:
    """What a :meth:`Trainer.fit` did.

    ``history`` holds one dict per finished epoch (``epoch``, ``train_loss``,
    ``metric`` when there is validation data, ``lr`` at its end, ``seconds``);
    ``stopped`` is ``None`` (all epochs ran), ``"early stopping"`` or
    ``"time budget"``; ``resumed_from_step`` the checkpoint's step or ``None``;
    ``processes`` the number of processes that trained together.
    """

    steps: int
    epochs: int
    best_metric: float | None
    best_epoch: int | None
    history: list = field(default_factory=list)
    stopped: str | None = None
    resumed_from_step: int | None = None
    seconds: float = 0.0
    device: str = "cpu"
    precision: str = "float32"
    processes: int = 1


def _param_groups(model, groups, learning_rate, weight_decay):
    """AdamW groups: each given group (or all trainable parameters) split into a
    decayed part (tensors of 2+ dimensions) and an undecayed one (biases, norms)."""
    if groups is None:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    out = []
    for group in groups:
        params = [p for p in group["params"] if p.requires_grad]
        lr = float(group.get("lr", learning_rate))
        decay = float(group.get("weight_decay", weight_decay))
        for part, wd in (([p for p in params if p.ndim >= 2], decay),
                         ([p for p in params if p.ndim < 2], 0.0)):
            if part:
                out.append({"params": part, "lr": lr, "weight_decay": wd})
    if not out:
        raise TransferKitInputError(
            "The model has no trainable parameters (all have requires_grad=False); "
            "unfreeze at least one layer.")
    return out


def _move(batch, device):
    return tuple(t.to(device, non_blocking=True) for t in batch)


class Trainer:
    """Train a ``torch.nn.Module`` (see the module docstring).

    Parameters
    ----------
    epochs : int, default=10
    batch_size : int, default=32
    learning_rate : float, default=1e-3
        Base rate of every parameter group that does not set its own ``lr``.
    weight_decay : float, default=0.01
        AdamW's decoupled decay on weight matrices and kernels.
    warmup : float, default=0.1
        Warm-up length: a share of all steps if below 1, else a number of steps.
    grad_clip : float or None, default=1.0
        Largest global L2 norm of the gradients (None: no clipping).
    patience : int or None, default=None
        Stop after this many epochs without a better validation metric (needs
        validation data; None: run every epoch, still restoring the best).
    time_budget : float or None, default=None
        Seconds of training in this call; None for no limit.
    random_state : int, default=0
    device : "auto", "cpu", "cuda", "cuda:N" or "mps", default="auto"
    mixed_precision : "auto", True or False, default="auto"
        Autocast on CUDA ("auto": on where the device is CUDA); never on CPU.
    checkpoint_dir : path or None, default=None
    checkpoint_every : int or None, default=None
        Also checkpoint every this many steps inside an epoch.
    resume : bool, default=False
        Continue from the checkpoint in ``checkpoint_dir`` when there is one.
    progress : bool, default=False
        A progress bar on stderr with the live loss and metric (main process only).
    distributed : bool, default=False
        Data-parallel training in the processes of a launcher (``torchrun
        --nproc_per_node W script.py`` or ``accelerate launch``) through
        Hugging Face Accelerate (``pip install "transferkit[distributed]"``):
        each process takes its shard of every global batch, with the loss
        weighted so that the averaged gradient is one process's, and all
        processes agree on validation, early stopping, the time budget and
        the final weights (:mod:`~transferkit.deep.distributed`; BatchNorm
        is not synchronised).  ``loss`` then receives the DDP-wrapped model.
        Without a launcher: one process, the same result as ``False``.
    """

    def __init__(self, epochs=10, batch_size=32, learning_rate=1e-3, weight_decay=0.01,
                 warmup=0.1, grad_clip=1.0, patience=None, time_budget=None, random_state=0,
                 device="auto", mixed_precision="auto", checkpoint_dir=None,
                 checkpoint_every=None, resume=False, progress=False, distributed=False):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.grad_clip = grad_clip
        self.patience = patience
        self.time_budget = time_budget
        self.random_state = random_state
        self.device = device
        self.mixed_precision = mixed_precision
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.progress = progress
        self.distributed = distributed

    def settings(self) -> TrainSettings:
        """The validated settings (a clear error naming every bad one)."""
        names = TrainSettings.model_fields
        return validated(TrainSettings, {k: getattr(self, k) for k in names}, "Trainer")

    # ------------------------------------------------------------------ fit
    def fit(self, model: torch.nn.Module, loss, train, validation=None, metric=None,
            param_groups=None) -> TrainResult:
        """Train ``model`` in place on ``train``; returns a :class:`TrainResult`.

        ``loss(model, batch) -> scalar tensor``; ``train``/``validation``: a
        torch ``Dataset`` or a tuple of arrays; ``metric(model, batch) ->
        float`` on the whole validation set as one batch tuple (greater is
        better); ``param_groups``: dicts with ``params`` and optionally ``lr``
        and ``weight_decay``.
        """
        s = self.settings()
        if not isinstance(model, torch.nn.Module):
            raise TransferKitInputError(
                f"model must be a torch.nn.Module, got {type(model).__name__}.")
        if not callable(loss):
            raise TransferKitInputError("loss must be a function loss(model, batch) -> tensor.")
        dataset = as_dataset(train)
        held_out = None if validation is None else as_dataset(validation)
        if s.patience is not None and held_out is None:
            raise TransferKitInputError(
                "patience (early stopping) needs validation data; pass validation=... or "
                "patience=None.")
        world = start(s.distributed, select_device(s.device))
        device = world.device
        model.to(device)
        amp = autocast_dtype(device) if (s.mixed_precision is True or (
            s.mixed_precision == "auto" and device.startswith("cuda"))) else None
        if amp is not None and not device.startswith("cuda"):
            amp = None
        optimizer = torch.optim.AdamW(_param_groups(model, param_groups, s.learning_rate,
                                                    s.weight_decay))
        base_lrs = [g["lr"] for g in optimizer.param_groups]
        per_epoch = len(epoch_batches(len(dataset), s.batch_size, s.random_state, 0))
        total = s.epochs * per_epoch
        warm = int(round(s.warmup * total)) if s.warmup < 1 else int(s.warmup)
        scaler = torch.amp.GradScaler("cuda") if amp == "float16" else None
        fingerprint = {"model": model_fingerprint(model), "rows": len(dataset),
                       **{k: getattr(s, k) for k in ("epochs", "batch_size", "learning_rate",
                                                      "weight_decay", "warmup", "grad_clip",
                                                      "random_state", "patience")}}
        if s.distributed:
            fingerprint["processes"] = world.processes
        cuda = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(s.random_state + world.rank)
            run = _Run(s, model, loss, dataset, held_out, metric, optimizer, base_lrs,
                       per_epoch, total, warm, scaler, amp, device, fingerprint, world)
            return run.train()


class _Run:
    """The state of one :meth:`Trainer.fit` call (kept apart so ``Trainer`` stays a
    plain settings holder).  ``module`` is the model being trained, ``model``
    what the loss runs (``module`` itself, or its DDP wrapper in ``world``)."""

    def __init__(self, s, model, loss, dataset, held_out, metric, optimizer,
                 base_lrs, per_epoch, total, warm, scaler, amp, device, fingerprint, world):
        self.s, self.module, self.loss, self.dataset = s, model, loss, dataset
        self.world, self.model = world, world.wrap(model)
        self.held_out, self.metric, self.optimizer = held_out, metric, optimizer
        self.base_lrs, self.per_epoch, self.total, self.warm = base_lrs, per_epoch, total, warm
        self.scaler, self.amp, self.device, self.fingerprint = scaler, amp, device, fingerprint
        self.step = self.epoch = self.position = 0
        self.loss_sum, self.loss_count = 0.0, 0
        self.history: list = []
        self.best_metric = self.best_epoch = None
        self.best_weights = None
        self.bad_epochs = 0
        self.resumed_from = None

    # ---------------------------------------------------------------- state
    def _state(self) -> dict:
        return {"fingerprint": self.fingerprint, "step": self.step, "epoch": self.epoch,
                "position": self.position, "loss_sum": self.loss_sum,
                "loss_count": self.loss_count, "history": self.history,
                "best_metric": self.best_metric, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs,
                "optimizer_groups": optimizer_tensors(self.optimizer)[1],
                "scaler": None if self.scaler is None else {
                    k: (float(v) if isinstance(v, float) else v)
                    for k, v in self.scaler.state_dict().items()}}

    def _save(self) -> None:
        if self.s.checkpoint_dir is None:
            return
        rng = {"cpu": torch.get_rng_state()}
        if self.device.startswith("cuda"):
            rng.update({f"cuda.{i}": t for i, t in enumerate(torch.cuda.get_rng_state_all())})
        rng = self.world.gather_rng(rng)
        if self.world.main:
            save_checkpoint(self.s.checkpoint_dir, {
                "model": self.module.state_dict(), "best": self.best_weights,
                "optimizer": optimizer_tensors(self.optimizer)[0], "rng": rng}, self._state())
        self.world.barrier()

    def _restore(self) -> None:
        folder = self.s.checkpoint_dir
        if folder is None or not has_checkpoint(folder):
            return
        if not self.s.resume:
            raise TransferKitInputError(
                f"{folder} already holds a training checkpoint. Pass resume=True to continue "
                f"that run, or choose another checkpoint_dir (it is not overwritten).")
        saved = load_checkpoint(folder, self.fingerprint)
        state, rng = saved["state"], self.world.own_rng(saved.get("rng", {}))
        try:
            self.module.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(optimizer_state(saved.get("optimizer", {}),
                                                           state["optimizer_groups"]))
            torch.set_rng_state(rng["cpu"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise TransferKitInputError(
                f"The checkpoint in {folder} does not fit this model ({exc}).") from None
        if self.device.startswith("cuda"):
            cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda.")]
            if cuda:
                torch.cuda.set_rng_state_all(cuda)
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        for key in ("step", "epoch", "position", "loss_sum", "loss_count", "history",
                    "best_metric", "best_epoch", "bad_epochs"):
            setattr(self, key, state[key])
        self.best_weights = saved.get("best")
        self.resumed_from = self.step

    # ---------------------------------------------------------------- steps
    def _autocast(self):
        if self.amp is None:
            return nullcontext()
        return torch.autocast("cuda", dtype=getattr(torch, self.amp))

    def _train_step(self, batch, weight) -> float:
        """One optimizer step on ``batch``; ``weight``: the loss weight of a shard
        (:func:`~transferkit.deep.distributed.shard`), None in one process."""
        factor = warmup_cosine(self.step, self.total, self.warm)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor
        with self._autocast():
            value = self.loss(self.model, batch)
        reported = self.world.mean_loss(value.detach(), weight)
        if not torch.isfinite(reported).all():
            raise TransferKitInputError(
                f"The training loss became {float(reported)} at step {self.step + 1} "
                f"(epoch {self.epoch + 1}). The likely cause is a learning rate too high for "
                f"this model (learning_rate={self.s.learning_rate}); lower it, or check that "
                f"the inputs are on a sensible scale and the targets suit the loss.")
        if weight is not None:
            value = value * weight
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(value).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            value.backward()
        if self.s.grad_clip is not None:      # after DDP's all-reduce: the global norm
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.step += 1
        return float(reported)

    def _score(self) -> float:
        was_training = self.module.training
        self.module.eval()
        with torch.no_grad(), self._autocast():
            rows = torch.arange(len(self.held_out))
            batch = _move(collate(self.held_out, rows), self.device)
            value = (self.metric(self.module, batch) if self.metric is not None
                     else -float(self.loss(self.module, batch)))
        self.module.train(was_training)
        return float(value)

    def _validate(self) -> float | None:
        if self.held_out is None:
            return None
        value = self.world.from_main(self._score)
        if not math.isfinite(value):
            raise TransferKitInputError(
                f"The validation metric is {value} after epoch {self.epoch + 1}; the model "
                f"diverged (lower learning_rate) or the metric cannot score these rows.")
        return value

    def _end_epoch(self, started: float) -> bool:
        """Book-keeping after an epoch; True when early stopping ends the run."""
        value = self._validate()
        self.history.append({
            "epoch": self.epoch + 1,
            "train_loss": self.loss_sum / max(1, self.loss_count),
            **({} if value is None else {"metric": value}),
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": time.monotonic() - started})
        if value is not None:
            if self.best_metric is None or value > self.best_metric:
                self.best_metric, self.best_epoch, self.bad_epochs = value, self.epoch + 1, 0
                self.best_weights = {k: v.detach().to("cpu", copy=True)
                                     for k, v in self.module.state_dict().items()}
            else:
                self.bad_epochs += 1
        self.epoch += 1
        self.position, self.loss_sum, self.loss_count = 0, 0.0, 0
        return self.s.patience is not None and self.bad_epochs >= self.s.patience

    def train(self) -> TrainResult:
        from tqdm.auto import tqdm

        from transferkit.autopilot.budget import parse_duration

        self._restore()
        budget = parse_duration(self.s.time_budget)
        started = time.monotonic()
        stopped, first_step = None, self.step
        bar = tqdm(total=self.total, initial=self.step,
                   disable=not (self.s.progress and self.world.main),
                   file=sys.stderr, leave=False, desc="training")
        self.model.train()
        try:
            while self.epoch < self.s.epochs and stopped is None:
                epoch_started = time.monotonic()
                batches = epoch_batches(len(self.dataset), self.s.batch_size,
                                        self.s.random_state, self.epoch)
                while self.position < len(batches):
                    rows, weight = self.world.shard(batches[self.position])
                    batch = _move(collate(self.dataset, rows), self.device)
                    self.loss_sum += self._train_step(batch, weight)
                    self.loss_count += 1
                    self.position += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{self.loss_sum / self.loss_count:.4f}",
                                    metric=self.best_metric)
                    elapsed = time.monotonic() - started
                    per_step = elapsed / (self.step - first_step)
                    if budget is not None and self.world.anyone(elapsed + per_step > budget):
                        stopped = "time budget"
                        break
                    every = self.s.checkpoint_every
                    if every and self.step % every == 0 and self.position < len(batches):
                        self._save()
                if stopped is None or self.position >= len(batches):
                    if self._end_epoch(epoch_started) and stopped is None:
                        stopped = "early stopping"
                self._save()
        finally:
            bar.close()
        if self.best_weights is not None:
            self.module.load_state_dict(self.best_weights)
        return TrainResult(steps=self.step, epochs=self.epoch, best_metric=self.best_metric,
                           best_epoch=self.best_epoch, history=self.history, stopped=stopped,
                           resumed_from_step=self.resumed_from,
                           seconds=time.monotonic() - started, device=self.device,
                           precision=self.amp or "float32", processes=self.world.processes)
