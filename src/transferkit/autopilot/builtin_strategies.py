"""Registration of transferkit's own strategies with the autopilot registry.

Adding a method to the autopilot means adding one ``register_strategy`` call
here (or in user code); the runner does not change.
"""

from __future__ import annotations

import inspect

from sklearn.linear_model import LogisticRegressionCV, RidgeCV

from transferkit.autopilot.registry import TARGET_ONLY, Strategy, TaskInfo, register_strategy
from transferkit.baselines import Pooled, SourceOnly, TargetOnly
from transferkit.instance_based import ImportanceWeighted


def _needs_target_labels(task: TaskInfo) -> bool:
    return task.has_target_labels


#: LogisticRegressionCV settings that scikit-learn >= 1.8 asks for explicitly (the
#: same L2 model and accuracy-based choice of C; the new fitted attributes), passed
#: only where that version's signature has them.
_NEW_LOGISTIC_CV_DEFAULTS = {"l1_ratios": (0.0,), "use_legacy_attributes": False}


def _logistic_cv(**params):
    """``LogisticRegressionCV(**params)``, without the installed version's FutureWarnings."""
    accepted = inspect.signature(LogisticRegressionCV).parameters
    if "use_legacy_attributes" in accepted:
        params = {**_NEW_LOGISTIC_CV_DEFAULTS, **params}
    return LogisticRegressionCV(scoring="accuracy", **params)


def _linear_probe(task: TaskInfo, seed):
    """A linear head on frozen backbone features, its L2 strength tuned by 3-fold CV
    (Newton-CG, as :func:`~transferkit.base.default_estimator`)."""
    if task.task == "classification":
        head = _logistic_cv(Cs=8, cv=3, class_weight="balanced", max_iter=3000,
                            solver="newton-cg")
    else:
        head = RidgeCV(alphas=(0.01, 0.1, 1.0, 10.0, 100.0))
    return TargetOnly(estimator=head, task=task.task, random_state=seed)


def _backbone_task_with_labels(task: TaskInfo) -> bool:
    return task.modality != "tabular" and task.n_labelled_target >= 6


BUILTIN_STRATEGIES = (
    Strategy(TARGET_ONLY, "baseline", "Trained on the labelled target rows only (no transfer).",
             lambda task, seed: TargetOnly(task=task.task, random_state=seed),
             _needs_target_labels),
    Strategy("source_only", "baseline", "Trained on the source rows only (no adaptation).",
             lambda task, seed: SourceOnly(task=task.task, random_state=seed)),
    Strategy("pooled", "baseline", "Trained on source and labelled target rows together.",
             lambda task, seed: Pooled(task=task.task, random_state=seed),
             _needs_target_labels),
    Strategy("pooled_importance_weighted", "instance",
             "Pooled, source rows weighted by p_t(x)/p_s(x) from a domain classifier, "
             "flattened by target CV.",
             lambda task, seed: ImportanceWeighted(task=task.task, random_state=seed,
                                                   **task.search_scoring())),
    Strategy("linear_probe", "model",
             "Frozen pretrained backbone + linear/logistic head (CV-tuned) on the target rows.",
             _linear_probe, _backbone_task_with_labels),
)

for _strategy in BUILTIN_STRATEGIES:
    register_strategy(_strategy, replace=True)

# Each method family registers its strategies in its own module.
import transferkit.autopilot._register_instance  # noqa: E402,F401
import transferkit.autopilot._register_feature  # noqa: E402,F401
import transferkit.autopilot._register_model  # noqa: E402,F401
import transferkit.autopilot._register_trees  # noqa: E402,F401
import transferkit.autopilot._register_deep  # noqa: E402,F401
