"""Registration of the feature-based strategies (CORAL, SA, TCA, JDA) with the autopilot.

Each strategy is ``Pipeline([("adapt", <adapter>), ("model", Pooled(...))])``:
the adapter maps source and target rows into a shared space during ``fit``
(each row by its own domain) and maps new rows as target rows at
``predict`` time; :class:`~transferkit.baselines.Pooled` then trains on every
labelled row, source and target.  The autopilot puts its own
preprocessing step in front.  TCA and JDA switch to their Nystroem path by
themselves above 1,000 training rows.  JDA is registered for
classification only.
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from transferkit.autopilot.registry import Strategy, TaskInfo, register_strategy
from transferkit.baselines import Pooled
from transferkit.feature_based import CORAL, JDA, TCA, SubspaceAlignment


def _pipeline(adapter, task: TaskInfo, seed) -> Pipeline:
    return Pipeline([("adapt", adapter), ("model", Pooled(task=task.task, random_state=seed))])


def _is_classification(task: TaskInfo) -> bool:
    return task.task == "classification"


FEATURE_STRATEGIES = (
    Strategy("coral", "feature",
             "CORAL: source covariance re-coloured to the target's (Ledoit-Wolf), then pooled.",
             lambda task, seed: _pipeline(CORAL(), task, seed)),
    Strategy("subspace_alignment", "feature",
             "Subspace alignment: source PCA basis aligned to the target's, then pooled.",
             lambda task, seed: _pipeline(SubspaceAlignment(), task, seed)),
    Strategy("tca", "feature",
             "TCA: shared kernel embedding with small MMD (Nystroem for large n), then pooled.",
             lambda task, seed: _pipeline(TCA(random_state=seed), task, seed)),
    Strategy("jda", "feature",
             "JDA: TCA plus class-conditional MMD with target pseudo-labels, then pooled.",
             lambda task, seed: _pipeline(JDA(random_state=seed), task, seed),
             _is_classification),
)

for _strategy in FEATURE_STRATEGIES:
    register_strategy(_strategy, replace=True)
