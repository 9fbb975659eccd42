"""Registration of the feature-based strategies (CORAL, SA, TCA, JDA) with the autopilot.

Each strategy is ``Pipeline([("adapt", <adapter>), ("model", Pooled(...))])``:
the adapter maps source and target rows into a shared space during ``fit``
(each row by its own domain) and maps new rows as target rows at
``predict`` time; :class:`~transferkit.baselines.Pooled` then trains on every
labelled row, source and target.  The autopilot puts its own
preprocessing step in front.  TCA and JDA switch to their Nystroem path by
themselves above 1,000 training rows.  JDA is registered for
classification only.

Hyper-parameters.  Where target labels exist, subspace alignment's share of
target variance kept (``variance_kept`` in (0.9, 0.7, 0.99), which sets its
dimension) is chosen by the target protocol
(:class:`~transferkit.evaluation.tuning.TargetGridSearch`: 3-fold
cross-validation over the labelled target rows, scored by the autopilot's
metric, the default listed first so that it wins ties, kept when there are fewer
than 10 labelled target rows).  TCA and JDA keep their defaults (20
components, mu = 1, the median bandwidth).  Choosing their dimension from
(20, 5, 50) the same way made each fit 4-10x slower and did not help
reliably: cross-validated balanced accuracy on the lending-club demo task
0.784 -> 0.743 (TCA) and 0.784 -> 0.775 (JDA), RMSE on the Ames task
0.224 -> 0.214 (TCA), all within the folds' noise
(``benchmarks/bench_target_tuning.py``).  Wrap them in
``TargetGridSearch`` to search anyway.
CORAL has nothing to tune: its one parameter, the covariance shrinkage, is
estimated in closed form (Ledoit-Wolf).
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from transferkit.autopilot.registry import Strategy, TaskInfo, register_strategy
from transferkit.baselines import Pooled
from transferkit.evaluation.tuning import TargetGridSearch
from transferkit.feature_based import CORAL, JDA, TCA, SubspaceAlignment

#: Shares of target variance kept searched for subspace alignment, the default first.
SUBSPACE_VARIANCE_KEPT = (0.9, 0.7, 0.99)


def _pipeline(adapter, task: TaskInfo, seed, grid=None):
    """``[adapter, Pooled]``, its ``grid`` searched by target CV where target labels exist."""
    pipeline = Pipeline([("adapt", adapter), ("model", Pooled(task=task.task, random_state=seed))])
    if grid is None or not task.has_target_labels:
        return pipeline
    return TargetGridSearch(pipeline, {f"adapt__{name}": list(values)
                                       for name, values in grid.items()},
                            task=task.task, random_state=seed, **task.search_scoring())


def _is_classification(task: TaskInfo) -> bool:
    return task.task == "classification"


FEATURE_STRATEGIES = (
    Strategy("coral", "feature",
             "CORAL: source covariance re-coloured to the target's (Ledoit-Wolf), then pooled.",
             lambda task, seed: _pipeline(CORAL(), task, seed)),
    Strategy("subspace_alignment", "feature",
             "Subspace alignment: source PCA basis aligned to the target's, then pooled "
             "(variance kept by target CV).",
             lambda task, seed: _pipeline(SubspaceAlignment(), task, seed,
                                          {"variance_kept": SUBSPACE_VARIANCE_KEPT})),
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
