"""Fine-tuning on the domain convention: raw rows and a tagged ``y``.

:class:`FineTuneTransfer` reads the tagged ``y`` (:mod:`transferkit.domains`)
like every other transfer strategy, so the autopilot can evaluate it on the
same folds:

* ``stages="target"``: the network is fine-tuned on the labelled target rows
  only (the pretrained backbone is the transfer);
* ``stages="source_then_target"``: two-stage transfer (Yosinski et al. 2014,
  "How transferable are features in deep neural networks?"; the
  intermediate-task recipe of Phang et al. 2018, STILTs): the backbone is first
  fine-tuned on the labelled source rows (at most ``max_source_rows``, a
  stratified random subsample by domain and class,
  :func:`~transferkit.autopilot.source_subsample.source_subsample`, for
  ``source_epochs`` epochs), then fine-tuned
  again on the target rows from those weights, with a new head.

``time_budget`` (seconds) bounds the whole fit; the two stages share it
equally, and a stage that runs out stops cleanly (``stopped_`` names it).

Example
-------
>>> import numpy as np, torch
>>> from transferkit.domains import stack_domains
>>> from transferkit.deep.finetune import FineTuneClassifier
>>> rng = np.random.default_rng(0)
>>> Xs, Xt = rng.normal(size=(60, 4)).astype("float32"), rng.normal(size=(20, 4)).astype("float32")
>>> ys, yt = (Xs[:, 0] > 0).astype(int), (Xt[:, 0] > 0).astype(int)
>>> X, y = stack_domains(Xs, ys, Xt, yt)
>>> body = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
>>> model = FineTuneTransfer(FineTuneClassifier(body, method="full", epochs=3),
...                          stages="source_then_target").fit(X, y)
>>> model.predict(Xt[:4]).shape
(4,)
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from transferkit.autopilot.source_subsample import source_subsample
from transferkit.deep.finetune import MIN_STAGE_BUDGET
from transferkit.domains import DomainAwareMixin, read_domains
from transferkit.validation import TransferKitInputError

__all__ = ["FineTuneTransfer", "STAGES"]

STAGES = ("target", "source_then_target")


def _take(X, rows):
    """Rows of an array, a Series, or a list of texts, image paths or images."""
    if isinstance(X, np.ndarray):
        return X[rows]
    if hasattr(X, "iloc"):
        return X.iloc[rows].to_numpy()
    items = list(X)
    return [items[i] for i in rows]


class FineTuneTransfer(DomainAwareMixin, BaseEstimator):
    """A fine-tuning estimator trained on target rows, optionally after the source.

    Parameters
    ----------
    estimator : FineTuneClassifier or FineTuneRegressor
        The unfitted template (backbone, method, epochs, ...); cloned per stage.
    stages : {"target", "source_then_target"}, default="target"
    source_epochs : int, default=3
        Epochs of the source stage.
    max_source_rows : int, default=2000
        Largest number of source rows the source stage trains on.
    time_budget : float or None, default=None
        Seconds for the whole fit (None: no limit).
    random_state : int, default=0
    """

    def __init__(self, estimator, stages="target", source_epochs=3, max_source_rows=2000,
                 time_budget=None, random_state=0):
        self.estimator = estimator
        self.stages = stages
        self.source_epochs = source_epochs
        self.max_source_rows = max_source_rows
        self.time_budget = time_budget
        self.random_state = random_state

    def fit(self, X, y):
        if self.stages not in STAGES:
            raise TransferKitInputError(
                f"stages must be one of {', '.join(STAGES)}; got {self.stages!r}.")
        info = read_domains(y, n_rows=len(X))
        target = np.flatnonzero(info.labelled_target)
        if target.size == 0:
            raise TransferKitInputError(
                "Fine-tuning on the target needs labelled target rows; none are labelled.")
        started = time.monotonic()
        two_stage = self.stages == "source_then_target"
        share = None if self.time_budget is None else (
            self.time_budget / 2 if two_stage else self.time_budget)
        first, self.stopped_ = None, []
        if two_stage:
            if not info.labelled_source.any():
                raise TransferKitInputError(
                    "stages='source_then_target' needs labelled source rows; none are "
                    "labelled (use stages='target').")
            task = "classification" if hasattr(self.estimator, "predict_proba") else \
                "regression"
            kept = source_subsample(y, int(self.max_source_rows), self.random_state, task)
            source = kept[info.labelled_source[kept]]
            first = clone(self.estimator).set_params(
                epochs=int(self.source_epochs), time_budget=share,
                random_state=self.random_state)
            first.fit(_take(X, source), info.labels_of(source))
            self.stopped_ += [f"source {s}" for s in first.stopped_]
            if share is not None:
                share = max(MIN_STAGE_BUDGET, self.time_budget - (time.monotonic() - started))
        model = clone(self.estimator).set_params(time_budget=share,
                                                 random_state=self.random_state)
        model.fit(_take(X, target), info.labels_of(target), init_from=first)
        self.stopped_ += [f"target {s}" for s in model.stopped_]
        self.estimator_ = model
        if hasattr(model, "classes_"):
            self.classes_ = model.classes_
        self.fit_seconds_ = time.monotonic() - started
        return self

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)
