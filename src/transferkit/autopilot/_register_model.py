"""Autopilot registration of TrAdaBoost and the model-based transfer strategies.

All of them need labelled target rows (TrAdaBoost measures each round's
error on them; regularised transfer and continued boosting fit the target
model on them), so each ``applies`` predicate checks ``has_target_labels``.

* ``tradaboost`` (classification; depth-3 trees with balanced class
  weights, so a rare class is not ignored), ``tradaboost_r2`` and
  ``two_stage_tradaboost_r2`` (regression): boosting with shallow trees.
  TrAdaBoost keeps the class default of 10 rounds; TrAdaBoost.R2 runs
  :data:`TRADABOOST_R2_ROUNDS` = 40.  Measured with
  ``benchmarks/bench_target_tuning.py`` (autopilot protocol, 5-fold x 3):
  on the lending-club demo task 5, 10 and 20 rounds of TrAdaBoost gave the
  same balanced accuracy (0.706; 40 rounds 0.703), so a search over them
  (16x the fit time) cannot help.  TrAdaBoost.R2 improved with more rounds
  on the Ames task: RMSE 0.297, 0.267, 0.264 and 0.250 with 5, 10, 20 and
  40 rounds (held-out sales: 0.309, 0.289, 0.281, 0.232), while choosing
  the rounds from (10, 5, 20, 40) by target CV gave 0.262 at 5x the fit
  time of 40 rounds (its 3 inner folds hold 33 sales each).  More rounds
  lean more on the target: over N rounds a source row's weight decays by
  up to :math:`\\beta^N` with :math:`\\beta = 1/(1 + \\sqrt{2 \\ln n / N})`,
  a total that grows with N.
* ``regularized_transfer``: logistic / linear model pulled towards the
  source model's weights, strength chosen by target cross-validation
  (classification: balanced class weights, so a rare class is not ignored).
* ``continued_boosting``: gradient-boosted trees on the source, further
  trees on the target (their number chosen by 3-fold target CV up to 5,000
  labelled target rows; 50 trees above; classification: balanced class
  weights).

Their searches on the target score each candidate by the model's own loss
(class-weighted log-loss for classification, squared error for regression,
also for two-stage TrAdaBoost.R2's step as in Pardoe & Stone 2010), not by
the autopilot's ``metric`` as the instance and feature strategies do
(:meth:`TaskInfo.search_scoring`): the strength of the pull to the source,
the number of target trees and the step are knobs of one fitted model,
judged by the loss that model is trained with.
"""

from __future__ import annotations

from sklearn.tree import DecisionTreeClassifier

from transferkit.autopilot.registry import Strategy, TaskInfo, register_strategy
from transferkit.instance_based.tradaboost import (
    TrAdaBoostClassifier,
    TrAdaBoostR2,
    TwoStageTrAdaBoostR2,
)
from transferkit.model_based import (
    ContinuedBoostingClassifier,
    ContinuedBoostingRegressor,
    RegularizedTransferClassifier,
    RegularizedTransferRegressor,
)

_CV_TREES_MAX_ROWS = 5_000
#: Boosting rounds of the ``tradaboost_r2`` strategy (see the module docstring).
TRADABOOST_R2_ROUNDS = 40


def _labelled_classification(task: TaskInfo) -> bool:
    return task.has_target_labels and task.task == "classification"


def _labelled_regression(task: TaskInfo) -> bool:
    return task.has_target_labels and task.task == "regression"


def _two_labelled(task: TaskInfo) -> bool:
    return task.n_labelled_target >= 2


def _regularized(task: TaskInfo, seed):
    if task.task == "classification":
        return RegularizedTransferClassifier(class_weight="balanced", random_state=seed)
    return RegularizedTransferRegressor(random_state=seed)


def _continued(task: TaskInfo, seed):
    cv = 3 if 6 <= task.n_labelled_target <= _CV_TREES_MAX_ROWS else None
    if task.task == "classification":
        return ContinuedBoostingClassifier(n_target_trees=50, cv=cv, class_weight="balanced",
                                           random_state=seed)
    return ContinuedBoostingRegressor(n_target_trees=50, cv=cv, random_state=seed)


MODEL_STRATEGIES = (
    Strategy("tradaboost", "instance",
             "TrAdaBoost: boosted shallow trees; misleading source rows lose weight.",
             lambda task, seed: TrAdaBoostClassifier(
                 estimator=DecisionTreeClassifier(max_depth=3, class_weight="balanced"),
                 random_state=seed),
             _labelled_classification),
    Strategy("tradaboost_r2", "instance",
             "TrAdaBoost.R2: TrAdaBoost for regression (AdaBoost.R2 errors, shallow trees).",
             lambda task, seed: TrAdaBoostR2(n_estimators=TRADABOOST_R2_ROUNDS,
                                             random_state=seed),
             _labelled_regression),
    Strategy("two_stage_tradaboost_r2", "instance",
             "Two-stage TrAdaBoost.R2: source weight shifted to the target step by step, "
             "step chosen by target CV.",
             lambda task, seed: TwoStageTrAdaBoostR2(random_state=seed),
             _labelled_regression),
    Strategy("regularized_transfer", "model",
             "Linear/logistic model pulled towards the source model's weights (L2-SP), "
             "strength by target CV.",
             _regularized, _two_labelled),
    Strategy("continued_boosting", "model",
             "Gradient-boosted trees fitted on the source, then more trees fitted on the target.",
             _continued, lambda task: task.has_target_labels),
)

for _strategy in MODEL_STRATEGIES:
    register_strategy(_strategy, replace=True)
