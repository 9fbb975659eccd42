"""Benchmark: hyper-parameters chosen by the target protocol, against the fixed defaults.

Run from the repository root::

    python benchmarks/bench_target_tuning.py            # about 6 minutes on 2 cores

The autopilot's instance-weighting strategies choose the flattening
exponent of their weights (``ImportanceWeighted(flattening="auto")``: 0, 0.5
or 1 by 3-fold target CV), instance selection chooses its rule for how many
source rows to keep (``n_keep`` in ("auto", 0.5, 1.0)) and subspace
alignment its share of target variance kept (``TargetGridSearch``: 0.9, 0.7
or 0.99).  This script measures each of them (suffix ``[fixed]``: the
same strategy with its fixed default: flattening 1, the full weights;
``n_keep="auto"``; variance kept 0.9), and also TCA and JDA with their
dimension chosen the same way (suffix ``[tuned]``: 20, 5 or 50 components,
via ``TargetGridSearch``), which the autopilot does *not* do.

Protocol: :class:`~transferkit.autopilot.Autopilot` with its defaults
(5-fold x 3 repeated target cross-validation, seed 0) on two real tasks:

* ``lending_club``: the demo task (``lending_club_task``: 4,143 source loans,
  250 labelled target loans, 5.8% defaults), balanced accuracy;
* ``ames``: ``ames_task`` (source neighbourhoods with >= 150 sales, 100
  labelled target sales from the small ones), RMSE of log sale price.

Every variant of a dataset runs in one autopilot call, so all see the same
folds.  Recorded per variant: the cross-validated mean of the primary metric
with its 95% interval, ROC AUC (classification), mean fit seconds per fold,
the score on the held-out target rows of a fit on all labelled rows, and
the hyper-parameter that fit chose.  Results are printed and saved to
``benchmarks/results/bench_target_tuning.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sklearn.pipeline import Pipeline

from transferkit.autopilot import Autopilot, Strategy, get_strategy
from transferkit.baselines import Pooled
from transferkit.datasets import ames_task, lending_club_task
from transferkit.evaluation import TargetGridSearch, classification_metrics, regression_metrics
from transferkit.feature_based import JDA, TCA, SubspaceAlignment
from transferkit.instance_based import ImportanceWeighted, InstanceSelection
from transferkit.preprocessing import TabularPreprocessor

RESULTS = Path(__file__).resolve().parent / "results" / "bench_target_tuning.json"
INSTANCE = ("kmm", "kliep", "ulsif", "rulsif", "nn_weights", "pooled_importance_weighted",
            "instance_selection")
KERNEL_DIMENSIONS = [20, 5, 50]


def _fixed(name: str) -> Strategy:
    """The registered instance strategy with its fixed default: flattening 1 (the full
    weights) or, for instance selection, the rule ``n_keep="auto"`` alone."""
    registered = get_strategy(name)

    def build(task, seed):
        model = registered.build(task, seed)
        if isinstance(model, InstanceSelection):
            return model.set_params(n_keep="auto")
        return model.set_params(flattening=1.0)
    return Strategy(f"{name}[fixed]", registered.family, registered.description, build)


def _feature(name: str, adapter_factory, grid=None) -> Strategy:
    """``[adapter, Pooled]``, optionally wrapped in a target grid search."""
    def build(task, seed):
        pipeline = Pipeline([("adapt", adapter_factory(seed)),
                             ("model", Pooled(task=task.task, random_state=seed))])
        if grid is None:
            return pipeline
        return TargetGridSearch(pipeline, grid, task=task.task, random_state=seed)
    return Strategy(name, "feature", name, build)


def _variants(classification: bool) -> list:
    variants = []
    for name in INSTANCE:
        variants += [get_strategy(name), _fixed(name)]
    variants += [get_strategy("subspace_alignment"),
                 _feature("subspace_alignment[fixed]", lambda seed: SubspaceAlignment())]
    variants += [get_strategy("tca"),
                 _feature("tca[tuned]", lambda seed: TCA(random_state=seed),
                          {"adapt__n_components": KERNEL_DIMENSIONS})]
    if classification:
        variants += [get_strategy("jda"),
                     _feature("jda[tuned]", lambda seed: JDA(random_state=seed),
                              {"adapt__n_components": KERNEL_DIMENSIONS})]
    return variants


def _chosen(model) -> dict:
    strategy = model.named_steps["strategy"]
    if isinstance(strategy, ImportanceWeighted):
        return {"flattening": strategy.flattening_}
    if isinstance(strategy, InstanceSelection):
        return {"n_keep": strategy.n_keep_, "n_selected": strategy.n_selected_}
    if isinstance(strategy, TargetGridSearch):
        return strategy.best_params_
    return {}


def _holdout(model, task, classification: bool) -> dict:
    predicted = model.predict(task.X_holdout)
    if classification:
        proba = model.predict_proba(task.X_holdout)[:, list(model.classes_).index(
            task.positive_label)]
        scores = classification_metrics(task.y_holdout, predicted, y_score=proba,
                                        positive_label=task.positive_label)
        return {k: scores[k] for k in ("balanced_accuracy", "roc_auc")}
    return {"rmse": regression_metrics(task.y_holdout, predicted)["rmse"]}


def run(dataset: str, task) -> dict:
    classification = task.positive_label is not None
    variants = _variants(classification)
    autopilot = Autopilot(strategies=variants, positive_label=task.positive_label,
                          random_state=0)
    start = time.perf_counter()
    result = autopilot.run(task.X, task.y)
    seconds = time.perf_counter() - start
    metric = result.metric
    board = result.leaderboard.set_index("strategy")
    rows = []
    for strategy in variants:
        model = Pipeline([("preprocess", TabularPreprocessor()),
                          ("strategy", strategy.build(result.task, 0))]).fit(task.X, task.y)
        entry = board.loc[strategy.name]
        row = {
            "variant": strategy.name,
            f"{metric}_mean": float(entry[f"{metric}_mean"]),
            f"{metric}_ci": [float(entry[f"{metric}_ci_low"]), float(entry[f"{metric}_ci_high"])],
            "fit_seconds": float(entry["fit_seconds"]),
            "holdout": _holdout(model, task, classification),
            "chosen_on_all_rows": {k: (v.item() if hasattr(v, "item") else v)
                                   for k, v in _chosen(model).items()},
        }
        if classification:
            row["roc_auc_mean"] = float(entry["roc_auc_mean"])
        rows.append(row)
    baseline = board.loc[result.baseline]
    return {"dataset": dataset, "description": task.description, "metric": metric,
            "baseline": {result.baseline: float(baseline[f"{metric}_mean"])},
            "autopilot_seconds": seconds, "variants": rows}


def main() -> None:
    report = {"script": "benchmarks/bench_target_tuning.py",
              "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
              "cpus": os.cpu_count(), "datasets": []}
    for dataset, make in (("lending_club", lending_club_task), ("ames", ames_task)):
        outcome = run(dataset, make())
        report["datasets"].append(outcome)
        metric = outcome["metric"]
        print(f"\n{dataset} ({metric}; baseline {outcome['baseline']}; "
              f"{outcome['autopilot_seconds']:.0f} s)")
        for row in outcome["variants"]:
            low, high = row[f"{metric}_ci"]
            print(f"  {row['variant']:<34} {row[f'{metric}_mean']:.4f} [{low:.3f}, {high:.3f}]"
                  f"  fit {row['fit_seconds']:.2f} s  hold-out {row['holdout']}"
                  f"  chosen {row['chosen_on_all_rows']}")
    RESULTS.parent.mkdir(exist_ok=True)
    temporary = RESULTS.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n")
    temporary.replace(RESULTS)
    print(f"\nsaved {RESULTS}")


if __name__ == "__main__":
    main()
