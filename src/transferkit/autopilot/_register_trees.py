"""Autopilot registration of gradient-boosted-tree versions of the row-choosing strategies.

The strategies of :mod:`~transferkit.autopilot.builtin_strategies` and
:mod:`~transferkit.autopilot._register_instance` train a linear model; a task
whose target concept is non-linear (interactions, thresholds, the usual case
in credit tables) needs trees.  These strategies train scikit-learn's
:class:`~sklearn.ensemble.HistGradientBoostingClassifier` /
``Regressor`` (Ke et al. 2017's histogram algorithm) on the same rows:

* ``source_only_hgb``: the labelled source rows;
* ``pooled_hgb``: every labelled row, source and target;
* ``importance_weighted_hgb``: pooled, source rows weighted by the domain
  classifier's :math:`p_t(x)/p_s(x)` with the flattening exponent fixed at
  1/2 (a search over it would triple the cost of a tree fit);
* ``target_only_hgb``: the labelled target rows, when there are at least
  :data:`MIN_TARGET_ROWS_FOR_TREES` of them (fewer cannot grow a useful tree).

They apply to tabular tasks only: on backbone embeddings (hundreds of dense
dimensions) trees are slow and the linear probe is the stronger cheap model.
Whether trees or linear models win is decided like everything else, by the
autopilot's selection on the labelled target rows and its bias-corrected
estimate.  Settings: 100 rounds, learning rate 0.1, 15 leaves, L2 penalty 1,
balanced class weights (a rare class is not ignored), no early stopping (the
protocol's folds judge the fit), bins at the unweighted quantiles
(:class:`~transferkit.model_based.binned_trees.UnweightedBins`: scikit-learn's
weighted binning made a class-weighted fit of 3,000 x 30 rows 9x slower).
"""

from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from transferkit.autopilot.registry import Strategy, TaskInfo, register_strategy
from transferkit.baselines import Pooled, SourceOnly, TargetOnly
from transferkit.instance_based import ImportanceWeighted
from transferkit.model_based.binned_trees import UnweightedBins

__all__ = ["TREE_STRATEGIES", "MIN_TARGET_ROWS_FOR_TREES", "boosted_trees"]

#: Labelled target rows needed before ``target_only_hgb`` is tried.
MIN_TARGET_ROWS_FOR_TREES = 200


def boosted_trees(task: TaskInfo, seed):
    """The histogram gradient-boosted trees these strategies train."""
    params = dict(max_iter=100, learning_rate=0.1, max_leaf_nodes=15, l2_regularization=1.0,
                  early_stopping=False, random_state=seed)
    if task.task == "classification":
        return UnweightedBins(HistGradientBoostingClassifier(class_weight="balanced", **params))
    return UnweightedBins(HistGradientBoostingRegressor(**params))


def _tabular(task: TaskInfo) -> bool:
    return task.modality == "tabular"


def _tabular_labelled(task: TaskInfo) -> bool:
    return task.modality == "tabular" and task.has_target_labels


def _tabular_many_labels(task: TaskInfo) -> bool:
    return task.modality == "tabular" and task.n_labelled_target >= MIN_TARGET_ROWS_FOR_TREES


TREE_STRATEGIES = (
    Strategy("source_only_hgb", "baseline",
             "Gradient-boosted trees trained on the source rows only (no adaptation).",
             lambda task, seed: SourceOnly(estimator=boosted_trees(task, seed), task=task.task,
                                           random_state=seed), _tabular),
    Strategy("pooled_hgb", "baseline",
             "Gradient-boosted trees trained on source and labelled target rows together.",
             lambda task, seed: Pooled(estimator=boosted_trees(task, seed), task=task.task,
                                       random_state=seed), _tabular_labelled),
    Strategy("importance_weighted_hgb", "instance",
             "Gradient-boosted trees on pooled rows, source rows weighted by sqrt(p_t/p_s) "
             "from a domain classifier.",
             lambda task, seed: ImportanceWeighted(estimator=boosted_trees(task, seed),
                                                   flattening=0.5, task=task.task,
                                                   random_state=seed), _tabular),
    Strategy("target_only_hgb", "baseline",
             "Gradient-boosted trees trained on the labelled target rows only.",
             lambda task, seed: TargetOnly(estimator=boosted_trees(task, seed), task=task.task,
                                           random_state=seed), _tabular_many_labels),
)

for _strategy in TREE_STRATEGIES:
    register_strategy(_strategy, replace=True)
